"""Issue 20's measurement: search by words and pixels together vs the model alone.

Needs the constructed library of benchmarks/build_hybrid_library.py (run it first). This
script indexes its photos through the app (`photosearch folders add` + `photosearch index`,
subprocesses; reused on a rerun unless --fresh), then, for every query of the chosen split:

- the model alone: the query text's vector against the index (Library.search_vector), the
  app's search before issue 20;
- fused: Library.search, the app's search now (model ranking fused with the word index,
  photosearch.search.fusion, plus whatever the query's words do there: date filters, grouping).

It prints precision@10 and recall@10 per query kind (plain visual queries apart) and, where
those features exist in the app, OCR precision/recall on the rendered words, indexing
throughput with and without the text extractor, and near-duplicate grouping precision/recall
(each says "not available" otherwise).

--choose searches the fusion settings on the VAL split only (offline, from each query's model
ranking and word matches) and prints the best one whose plain visual queries are no worse than
the model alone; photosearch/search/fusion.py's CHOSEN is set from it by hand. Never on test.

--stand-in-terms writes folder/file-name, place and rendered-text words from the manifest
into the word index instead of the app's own extractors (for developing the fusion before
those exist): figures taken with it are labelled as such and are not the app's.

    .venv/bin/python benchmarks/build_hybrid_library.py
    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_hybrid.py --choose      # val
    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_hybrid.py --split test  # report
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from photosearch.catalog import Photo  # noqa: E402
from photosearch.catalog.text_index import TermSource, set_terms, words_of  # noqa: E402
from photosearch.library.facade import Library  # noqa: E402
from photosearch.search import fusion  # noqa: E402
from photosearch.search.query import SearchQuery  # noqa: E402

K = 10
STAND_IN_MARK = "bench-stand-in-terms"  # in a library whose words --stand-in-terms wrote
GRID = (
    [fusion.Fusion("off")]
    + [
        fusion.Fusion("rrf", weight, k0, unknown, power)
        for power, unknown, k0, weight in itertools.product(
            (1.0, 2.0, 3.0), (1.0, 0.5), (5, 20, 60), (1.0, 2.0, 4.0, 8.0, 16.0)
        )
    ]
    + [
        fusion.Fusion("blend", weight, unknown=unknown, power=power)
        for power, unknown, weight in itertools.product(
            (1.0, 2.0, 3.0, 4.0), (1.0, 0.5), (0.5, 1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)
        )
    ]
)


EXTRA_PATHS: list[str] = []  # see register_checkout_extractors


def register_checkout_extractors(data: Path) -> str | None:
    """Make the checkout's text extractors (pyproject's ``photosearch.extractors`` entry
    points) visible when the installed metadata predates them, as `pip install -e .` would:
    a dist-info folder under DATA, put on the path of this process and its subprocesses."""
    import tomllib
    from importlib.metadata import entry_points

    group = "photosearch.extractors"
    declared = (
        tomllib.loads((ROOT / "pyproject.toml").read_text())
        .get("project", {})
        .get("entry-points", {})
        .get(group, {})
    )
    if not declared or entry_points(group=group):
        return None
    folder = data / "entry-points"
    dist = folder / "photosearch_checkout_extractors-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: photosearch-checkout-extractors\nVersion: 0\n"
    )
    (dist / "entry_points.txt").write_text(
        f"[{group}]\n" + "".join(f"{name} = {target}\n" for name, target in declared.items())
    )
    sys.path.insert(0, str(folder))
    EXTRA_PATHS.append(str(folder))
    return ", ".join(declared)


def _photosearch(library: Path, *args: str) -> subprocess.CompletedProcess:
    paths = [str(ROOT), str(ROOT / "plugins"), *EXTRA_PATHS]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    return subprocess.run(
        [sys.executable, "-m", "photosearch", "--library", str(library), *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )


def index_library(data: Path, library: Path, fresh: bool) -> list[str]:
    """Index the photos through the app; lines saying what it cost (none when an index was
    reused). When the app reads text in photos (`index --no-read-text` exists), the photos
    are first encoded without it, then `index` runs again for the reading stage alone, so
    throughput is reported without and with the extractor from one indexing."""
    if fresh and library.exists():
        shutil.rmtree(library)
    if (library / "catalog.sqlite").exists():
        return []
    library.mkdir(parents=True)
    _photosearch(library, "folders", "add", str(data / "photos"))
    reads_text = "--no-read-text" in _photosearch(library, "index", "--help").stdout
    started = time.perf_counter()
    first = json.loads(
        _photosearch(library, "index", "--json", *(["--no-read-text"] if reads_text else [])).stdout
    )
    encoding = time.perf_counter() - started
    files = first["encoded"]
    lines = [
        f"indexing without the text extractor: {files} photos in {encoding:.1f} s "
        f"({files / encoding:.2f} photos/s; shared 2-core machine)"
    ]
    if not reads_text:
        return [*lines, "indexing with the text extractor: not available (no reading stage)"]
    started = time.perf_counter()
    second = json.loads(_photosearch(library, "index", "--json").stdout)
    reading = time.perf_counter() - started
    stage = second.get("text_in_photos")
    if not stage:
        return [*lines, "indexing with the text extractor: not available (no OCR plugin ran)"]
    lines.append(
        f"indexing with the text extractor: {files} photos in "
        f"{encoding + reading:.1f} s ({files / (encoding + reading):.2f} photos/s); "
        f"the reading stage: {reading:.1f} s, {reading / max(1, stage['read']):.3f} s "
        f"per photo, text found in {stage['with_text']} of {stage['read']} "
        f"({stage['with_text'] / max(1, stage['read']):.0%}), {stage['failed']} failed"
    )
    return lines


def stand_in_terms(library: Library, data: Path, manifest: dict) -> None:
    """Words from the manifest in place of the app's extractors (see --stand-in-terms); the
    library is marked so that later runs on it say so too."""
    import reverse_geocode

    (Path(library.directory) / STAND_IN_MARK).write_text("words from the manifest\n")

    root = str((data / "photos").resolve())
    with library.catalog.session() as session:
        ids = {path: pid for pid, path in session.query(Photo.id, Photo.path)}
        for item in manifest["files"]:
            pid = ids.get(f"{root}/{item['path']}")
            if pid is None:
                continue
            name = re.sub(r"([a-z])([A-Z])", r"\1 \2", item["path"].rsplit(".", 1)[0])
            set_terms(session, pid, TermSource.NAME, re.sub(r"[_\-/.()]", " ", name))
            if item["lat"] is not None:
                place = reverse_geocode.get((item["lat"], item["lon"]))
                set_terms(
                    session,
                    pid,
                    TermSource.PLACE,
                    " ".join(place.get(key) or "" for key in ("city", "state", "country")),
                )
            set_terms(session, pid, TermSource.TEXT_IN_PHOTO, item["text"] or "")
        session.commit()


def precision_recall(ranked: list[str], relevant: set[str], k: int = K) -> tuple[float, float]:
    top = ranked[:k]
    hits = sum(1 for path in top if path in relevant)
    return hits / k, hits / len(relevant)


def collect(library: Library, queries: list[dict], root: str) -> dict[int, dict]:
    """Per query: the model's ranking (to fusion.MODEL_DEPTH), its word scores, and the
    similarity of word-matched photos outside the model's list (as the app computes them)."""
    encoder = library.encoder
    store = library.store
    with library.catalog.session() as session:
        path_of = {
            pid: path[len(root) + 1 :]
            for pid, path in session.query(Photo.id, Photo.path)
            if path.startswith(root)
        }
        out = {}
        for query in queries:
            vector = encoder.encode_texts([query["text"]])[0]
            model = [
                (r.photo_id, r.score) for r in library.search_vector(vector, fusion.MODEL_DEPTH)
            ]
            words = fusion.word_evidence(session, query["text"])
            known = dict(model)
            others = [p for p in words if p not in known and p in path_of]
            vectors = store.get_vectors([p for p in others if p in store.live_ids()])
            similarity = {
                p: float(v @ vector)
                for p, v in zip([p for p in others if p in store.live_ids()], vectors, strict=True)
            }
            out[query["id"]] = {"model": model, "words": words, "similarity": similarity}
    return {"path_of": path_of, "per_query": out}


def score_setting(
    collected: dict, queries: list[dict], setting: fusion.Fusion
) -> dict[str, tuple[float, float, int]]:
    """Mean P@10, R@10 and query count per kind for one fusion setting (offline)."""
    path_of = collected["path_of"]
    sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for query in queries:
        got = collected["per_query"][query["id"]]
        ranked = fusion.fuse(got["model"], got["words"], setting, got["similarity"])
        paths = [path_of[pid] for pid, _ in ranked if pid in path_of]
        p, r = precision_recall(paths, set(query["relevant"]))
        entry = sums[query["kind"]]
        entry[0] += p
        entry[1] += r
        entry[2] += 1
    return {kind: (s[0] / s[2], s[1] / s[2], s[2]) for kind, s in sums.items()}


def choose(collected: dict, queries: list[dict]) -> fusion.Fusion:
    """The setting with the best mean of (P@10 + R@10) / 2 over the query kinds, among those
    whose plain visual queries keep the model alone's R@10 and P@10."""
    base = score_setting(collected, queries, fusion.Fusion("off"))
    print(f"{'setting':40s} {'macro':>6s} {'visual R@10':>11s}  per kind (P@10/R@10)")
    best, best_value = fusion.Fusion("off"), -1.0
    for setting in GRID:
        scores = score_setting(collected, queries, setting)
        macro = sum((p + r) / 2 for p, r, _ in scores.values()) / len(scores)
        visual_ok = all(scores["visual"][i] >= base["visual"][i] - 1e-9 for i in (0, 1))
        label = (
            f"{setting.method} w={setting.weight} k0={setting.k0} u={setting.unknown} "
            f"p={setting.power}"
        )
        kinds = " ".join(f"{k}={p:.2f}/{r:.2f}" for k, (p, r, _) in sorted(scores.items()))
        print(
            f"{label:40s} {macro:6.3f} {scores['visual'][1]:11.3f}{'' if visual_ok else '*'}"
            f"  {kinds}"
        )
        if visual_ok and macro > best_value + 1e-9:
            best, best_value = setting, macro
    print("(* plain visual queries worse than the model alone: not eligible)")
    return best


def app_query(text: str) -> SearchQuery:
    """The query as the CLI builds it: with a typed date moved into a filter where the app
    reads dates (photosearch.search.dates). Every copy listed (where the app folds
    near-duplicates), so the ranking of files is measured; folding is measured apart."""
    query = SearchQuery(text=text, k=K)
    if "all_copies" in {f.name for f in dataclasses.fields(SearchQuery)}:
        query = dataclasses.replace(query, all_copies=True)
    from photosearch.search.query import with_dates

    return with_dates(query)


def app_scores(
    library: Library, queries: list[dict], root: str
) -> tuple[dict[str, dict], dict[str, list[float]]]:
    """P@10 and R@10 per kind: the model alone (the search before issue 20), the app's
    search without the word ranking (date filters only, where the app has them), and the
    app's search (Library.search)."""
    sums: dict[str, dict] = {
        label: defaultdict(lambda: [0.0, 0.0, 0]) for label in ("model alone", "no words", "app")
    }
    latencies: dict[str, list[float]] = {label: [] for label in sums}
    chosen = fusion.CHOSEN
    for query in queries:
        relevant = set(query["relevant"])
        started = time.perf_counter()
        vector = library.encoder.encode_texts([query["text"]])[0]
        ranked = {"model alone": [r.path for r in library.search_vector(vector, K)]}
        latencies["model alone"].append(time.perf_counter() - started)
        for label, setting in (("no words", fusion.Fusion("off")), ("app", chosen)):
            fusion.CHOSEN = setting
            started = time.perf_counter()
            ranked[label] = [r.path for r in library.search(app_query(query["text"]))]
            latencies[label].append(time.perf_counter() - started)
        fusion.CHOSEN = chosen
        for label, paths in ranked.items():
            p, r = precision_recall([path[len(root) + 1 :] for path in paths], relevant)
            entry = sums[label][query["kind"]]
            entry[0] += p
            entry[1] += r
            entry[2] += 1
    means = {
        label: {k: (s[0] / s[2], s[1] / s[2], s[2]) for k, s in per_kind.items()}
        for label, per_kind in sums.items()
    }
    best: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    for query in queries:  # the most a ranking can score: few answers cap P@10, many R@10
        n = len(query["relevant"])
        entry = best[query["kind"]]
        entry[0] += min(K, n) / K
        entry[1] += min(K, n) / n
        entry[2] += 1
    means["best possible"] = {k: (s[0] / s[2], s[1] / s[2], s[2]) for k, s in best.items()}
    return means, latencies


def ocr_scores(library: Library, manifest: dict, root: str, stand_in: bool) -> str:
    """Word-level precision and recall of the text the app read, against the rendered words."""
    if stand_in:
        return "OCR: not measured (--stand-in-terms wrote the rendered words themselves)"
    with library.catalog.session() as session:
        ids = {path: pid for pid, path in session.query(Photo.id, Photo.path)}
        read: dict[str, set[str]] = {}
        for item in manifest["files"]:
            pid = ids.get(f"{root}/{item['path']}")
            if pid is not None:
                read[item["path"]] = set(
                    fusion.folded_words(words_of(pid, TermSource.TEXT_IN_PHOTO, session))
                )
    if not any(read.values()):
        return "OCR: not available (no text in photos in the index: no extractor ran)"
    true_positive = false_positive = false_negative = 0
    photos_with_text = extra_photos = 0
    for item in manifest["files"]:
        got = read.get(item["path"], set())
        want = set(fusion.folded_words(item["text"] or ""))
        if want:
            photos_with_text += 1
            true_positive += len(got & want)
            false_positive += len(got - want)
            false_negative += len(want - got)
        elif got:
            extra_photos += 1
    precision = true_positive / max(1, true_positive + false_positive)
    recall = true_positive / max(1, true_positive + false_negative)
    return (
        f"OCR on the {photos_with_text} files with rendered text: word precision "
        f"{precision:.3f}, recall {recall:.3f}; {extra_photos} files without rendered "
        f"text had words read (real text in the Flickr photos, or misreads)"
    )


def duplicate_scores(library_dir: Path, manifest: dict, root: str) -> str:
    """Pairwise precision/recall of `photosearch duplicates --json` against the made copies."""
    try:
        listed = _photosearch(library_dir, "duplicates", "--json").stdout
    except subprocess.CalledProcessError as exc:
        return f"duplicates: not available (`photosearch duplicates` failed: {exc.stderr[-200:]})"
    groups = json.loads(listed)
    groups = groups.get("groups", groups) if isinstance(groups, dict) else groups

    def pairs(members: list[str]) -> set[tuple[str, str]]:
        return {tuple(sorted(p)) for p in itertools.combinations(members, 2)}  # type: ignore[misc]

    found: set[tuple[str, str]] = set()
    for group in groups:
        members = (
            (group.get("photos") or group.get("paths") or []) if isinstance(group, dict) else group
        )
        members = [m["path"] if isinstance(m, dict) else m for m in members]
        found |= pairs([m[len(root) + 1 :] for m in members])
    truth: set[tuple[str, str]] = set()
    for group in manifest["duplicate_groups"]:
        truth |= pairs(group)
    hits = len(found & truth)
    return (
        f"duplicates: {len(groups)} groups found; pairwise precision "
        f"{hits / max(1, len(found)):.3f}, recall {hits / max(1, len(truth)):.3f} "
        f"({len(truth)} true pairs in {len(manifest['duplicate_groups'])} groups)"
    )


def _table(title: str, means: dict[str, dict]) -> None:
    print(f"\n{title}")
    labels = list(means)
    print(f"{'kind':14s} {'n':>4s}" + "".join(f"  {label:>12s} P@10  R@10" for label in labels))
    first = means[labels[0]]
    for kind in sorted(first, key=lambda k: (k == "visual", k)):
        row = f"{kind:14s} {first[kind][2]:4d}"
        for label in labels:
            p, r, _ = means[label][kind]
            row += f"  {'':>12s} {p:.3f} {r:.3f}"
        print(row)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".bench" / "hybrid")
    parser.add_argument(
        "--library", type=Path, default=None, help="library directory (default DATA/library)"
    )
    parser.add_argument("--split", choices=("val", "test"), default="val")
    parser.add_argument(
        "--choose", action="store_true", help="search the fusion settings on the val split"
    )
    parser.add_argument("--fresh", action="store_true", help="index again from scratch")
    parser.add_argument(
        "--stand-in-terms",
        action="store_true",
        help="write the words from the manifest (not the app's extractors)",
    )
    args = parser.parse_args(argv)
    if not (args.data / "queries.json").is_file():
        print(
            f"skipped: no constructed library in {args.data}: run "
            "benchmarks/build_hybrid_library.py first"
        )
        return 0
    if args.choose and args.split != "val":
        parser.error("--choose looks at val only")
    manifest = json.loads((args.data / "manifest.json").read_text())
    queries = [
        q for q in json.loads((args.data / "queries.json").read_text()) if q["split"] == args.split
    ]
    library_dir = args.library or args.data / "library"
    registered = register_checkout_extractors(args.data)
    if registered:
        print(f"text extractors of this checkout registered for the run: {registered}")
    for line in index_library(args.data, library_dir, args.fresh):
        print(line)
    root = str((args.data / "photos").resolve())
    with Library(library_dir) as library:
        if args.stand_in_terms:
            stand_in_terms(library, args.data, manifest)
        stand_in = (library_dir / STAND_IN_MARK).exists()
        if stand_in:
            print("WORDS: stand-in terms from the manifest (not the app's extractors)")
        print(
            f"model: {library.model_name}; {len(queries)} {args.split} queries; "
            f"fusion {fusion.CHOSEN}"
        )
        if args.choose:
            collected = collect(library, queries, root)
            best = choose(collected, queries)
            print(f"\nchosen on val: {best}  (shipped: {fusion.CHOSEN})")
            return 0
        means, latencies = app_scores(library, queries, root)
        _table(
            f"{args.split}: precision@10 / recall@10 (no words: the app's search with fusion off)",
            means,
        )
        for label, seconds in latencies.items():
            seconds.sort()
            print(
                f"search latency, {label}: p50 {seconds[len(seconds) // 2] * 1000:.1f} ms, "
                f"p95 {seconds[int(len(seconds) * 0.95)] * 1000:.1f} ms (shared machine)"
            )
        print(ocr_scores(library, manifest, root, stand_in))
    print(duplicate_scores(library_dir, manifest, root))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
