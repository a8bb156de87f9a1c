"""Re-ranking's recall gain and added latency (photosearch.search.rerank), through the app's search.

A throwaway library is indexed with the STUDENT bundle on one split of a captions.jsonl; every
caption is searched as a query (Library.search: student text vector, hnswlib, filters) without
re-ranking (the same-run baseline), then with the TEACHER re-scoring the top K for each K:
first with an empty re-rank cache ("cold": the teacher's image vectors of the top K computed
on demand), then again with them cached ("warm"). Prints t2i R@1/5/10 (percent), the added
latency p50/p95 per query (ms) and the teacher alone's R@K for reference.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_rerank.py \
        --student conse-distilled --teacher conse-lite0-minilm \
        --captions ../shared/data/flickr8k-1k/captions.jsonl --split val --depths 20,50,100

Tune on val, report test once at the end. Timings on a shared machine are noisy: compare
with the same-run baseline.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosearch.library.evaluation import load_captions, recall_from_ranks  # noqa: E402
from photosearch.library.facade import Library  # noqa: E402
from photosearch.search.query import SearchQuery  # noqa: E402
from photosearch.search.rerank import Reranker  # noqa: E402

KS = (1, 5, 10)


def run_queries(library: Library, captions, owner_of_path: dict[str, int], owners, k: int):
    """(t2i ranks, per-query seconds) for every caption, ranks capped at k."""
    ranks = np.full(len(captions), k, np.int64)
    seconds = np.zeros(len(captions))
    for number, text in enumerate(captions):
        started = time.perf_counter()
        hits = library.search(SearchQuery(text=text, k=k))
        seconds[number] = time.perf_counter() - started
        for rank, hit in enumerate(hits):
            if owner_of_path.get(hit.path) == owners[number]:
                ranks[number] = rank
                break
    return ranks, seconds


def summary(ranks: np.ndarray, seconds: np.ndarray, base: np.ndarray | None = None) -> dict:
    out = {f"t2i_{k}": round(v, 2) for k, v in recall_from_ranks(ranks, KS).items()}
    ms = seconds * 1000
    out["latency_ms_p50"] = round(float(np.percentile(ms, 50)), 1)
    out["latency_ms_p95"] = round(float(np.percentile(ms, 95)), 1)
    if base is not None:
        added = ms - base * 1000
        out["added_ms_p50"] = round(float(np.percentile(added, 50)), 1)
        out["added_ms_p95"] = round(float(np.percentile(added, 95)), 1)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--student", required=True)
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--models-dir", type=Path, default=None)
    flickr = Path("shared") / "data" / "flickr8k-1k" / "captions.jsonl"
    found = [p for p in (ROOT.parent / flickr, ROOT.parents[1] / flickr) if p.is_file()]
    parser.add_argument("--captions", type=Path, default=found[0] if found else flickr)
    parser.add_argument("--split", default="val")
    parser.add_argument("--depths", default="20,50,100")
    parser.add_argument("--max-queries", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if not args.captions.is_file():
        print(f"captions file not found: {args.captions}", file=sys.stderr)
        return 2
    data = load_captions(args.captions, args.split)
    captions = list(data.captions)[: args.max_queries or None]
    owners = data.caption_image[: len(captions)]
    depths = [int(d) for d in args.depths.split(",")]
    k = max(KS)
    report: dict = {"split": args.split, "images": len(data.images), "queries": len(captions)}
    with tempfile.TemporaryDirectory(prefix="bench-rerank-") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        owner_of_path = {}
        for number, image in enumerate(data.images):
            link = photos / f"{number:06d}{image.suffix.lower()}"
            os.symlink(image, link)
            owner_of_path[str(link)] = number
        with Library(
            Path(tmp) / "library",
            models_dir=args.models_dir,
            model=args.student,
            threads=args.threads,
        ) as library:
            library.add_folder(photos)
            indexed = library.index()
            report["student"] = library.encoder.identity
            report["student_images_per_s"] = round(
                indexed.encoding.encoded / max(indexed.encoding.seconds, 1e-9), 1
            )
            # Off for the baseline: a student whose bundle names an installed teacher is
            # re-ranked by it by default (rerank.default_reranker_name).
            library.settings.use_reranker(None)
            library.search(SearchQuery(text="warm up", k=k))
            base_ranks, base_s = run_queries(library, captions, owner_of_path, owners, k)
            given = Path(args.teacher)
            bundle = given if given.is_dir() else library.registry.ensure(args.teacher)
            report["no_rerank"] = summary(base_ranks, base_s)
            for depth in depths:
                # a fresh cache per depth, so the cold pass is cold
                cache = Path(tmp) / f"rerank-cache-{depth}"
                reranker = Reranker(bundle, cache, depth, threads=args.threads)
                library.settings.use_reranker(reranker)
                started = time.perf_counter()
                cold_ranks, cold_s = run_queries(library, captions, owner_of_path, owners, k)
                fill = time.perf_counter() - started
                warm_ranks, warm_s = run_queries(library, captions, owner_of_path, owners, k)
                assert np.array_equal(cold_ranks, warm_ranks)
                report[f"rerank_K{depth}"] = {
                    "warm": summary(warm_ranks, warm_s, base_s),
                    "cold": summary(cold_ranks, cold_s, base_s),
                    "teacher_images_encoded": reranker.encoded,
                    "cold_pass_s": round(fill, 1),
                }
                report["teacher"] = reranker.encoder.identity
                library.settings.use_reranker(None)
                reranker.close()
            # The teacher alone (its vectors of every photo, brute force): the ceiling.
            teacher = Reranker(
                bundle, Path(tmp) / "rerank-cache-all", len(data.images), threads=args.threads
            )
            paths = sorted(owner_of_path, key=owner_of_path.get)
            vectors, _ = teacher.image_vectors(paths)
            text = teacher.encoder.encode_texts(captions)
            scores = text @ vectors.T
            order = np.argsort(-scores, axis=1)
            ranks = np.argmax(order == owners[:, None], axis=1)
            report["teacher_alone"] = {
                f"t2i_{k}": round(v, 2) for k, v in recall_from_ranks(ranks, KS).items()
            }
            teacher.close()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(
            f"{report['split']}: {report['images']} images, {report['queries']} queries; "
            f"student {report['student']}, teacher {report.get('teacher')}"
        )
        print(f"  no re-ranking: {report['no_rerank']}")
        for depth in depths:
            r = report[f"rerank_K{depth}"]
            print(f"  K={depth} warm: {r['warm']}")
            print(
                f"  K={depth} cold: {r['cold']} ({r['teacher_images_encoded']} photos "
                f"encoded by the teacher)"
            )
        print(f"  teacher alone: {report['teacher_alone']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
