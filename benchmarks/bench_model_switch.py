"""Model switch figures: search latency (p50/p95) while the library re-encodes for another
model, against the same searches idle; how many of those searches answered exactly as the old
model does (they all should); the re-encode rate against a plain index of the same photos; and
the cost of the per-search check for a switch recorded by another process.

    .venv/bin/python benchmarks/bench_model_switch.py [--photos 200] [--model NAME]
        [--source DIR]

Uses an installed bundle (default: the offline default model from $PHOTOSEARCH_MODELS) and a
renamed copy of it as "the other model": a different identity at exactly the same cost. Photos:
the first N of --source (default ../shared/data/flickr8k-1k/images) when present, else
generated ones.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from photosearch.library.facade import Library, default_models_dir
from photosearch.search.query import SearchQuery

FLICKR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "flickr8k-1k"
QUERIES = [
    "a dog running on grass",
    "children playing",
    "a man on a bicycle",
    "a red car",
    "people at the beach",
    "a snowy mountain",
    "a dog catching a frisbee",
    "a girl in a pink dress",
    "a crowd in the street",
    "a boat on the water",
]


def photos_into(folder: Path, count: int, source: Path) -> str:
    folder.mkdir(parents=True)
    if source.is_dir():
        for path in sorted(source.iterdir())[:count]:
            shutil.copy(path, folder / path.name)
        return f"first {count} photos of {source}"
    rng = np.random.default_rng(0)
    for i in range(count):
        Image.fromarray(rng.integers(0, 255, (375, 500, 3), dtype=np.uint8)).save(
            folder / f"p{i:04d}.jpg"
        )
    return f"{count} generated 500x375 noise photos (no Flickr8k here)"


def other_model(models: Path, name: str) -> str:
    """A copy of bundle ``name`` under another name: same cost, another identity."""
    copy = f"{name}-copy"
    shutil.copytree(models / name, models / copy)
    config_path = models / copy / "config.json"
    config = json.loads(config_path.read_text())
    config["photosearch"]["name"] = copy
    config_path.write_text(json.dumps(config, indent=2))
    return copy


def percentiles(values: list[float]) -> str:
    cuts = statistics.quantiles(values, n=20) if len(values) > 1 else values * 19
    return f"p50 {statistics.median(values) * 1000:.1f} ms, p95 {cuts[18] * 1000:.1f} ms"


def answers(library: Library) -> dict[str, list[tuple[str, float]]]:
    return {
        q: [(r.path, round(r.score, 5)) for r in library.search(SearchQuery(text=q, k=20))]
        for q in QUERIES
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--model", default="conse-lite0-minilm")
    parser.add_argument("--source", type=Path, default=FLICKR / "images")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-switch-"))
    try:
        models = work / "models"
        models.mkdir()
        shutil.copytree(default_models_dir() / args.model, models / args.model)
        copy = other_model(models, args.model)
        described = photos_into(work / "photos", args.photos, args.source)
        print(f"{described}; model {args.model} -> {copy}")
        with Library(work / "lib", models_dir=models) as library:
            library.use_model(args.model)
            library.add_folder(work / "photos")
            started = time.perf_counter()
            first = library.index()
            index_s = time.perf_counter() - started
            print(
                f"plain index: {first.encoding.encoded} photos in {index_s:.1f} s "
                f"({first.encoding.encoded / index_s:.1f} photos/s)"
            )
            old = answers(library)
            idle: list[float] = []
            for _ in range(3):
                for query in QUERIES:
                    t = time.perf_counter()
                    library.search(SearchQuery(text=query, k=20))
                    idle.append(time.perf_counter() - t)
            print(f"search, idle: {percentiles(idle)} ({len(idle)} searches)")

            state = library.use_model(copy)
            assert state.target == copy and state.pending == args.photos, state
            result: dict = {}

            def reencode() -> None:
                t = time.perf_counter()
                result["report"] = library.index()
                result["seconds"] = time.perf_counter() - t

            worker = threading.Thread(target=reencode)
            worker.start()
            during: list[float] = []
            same = differs = 0
            with Library(work / "lib", models_dir=models) as other_view:  # as another process
                while worker.is_alive():
                    for query in QUERIES:
                        t = time.perf_counter()
                        got = [
                            (r.path, round(r.score, 5))
                            for r in other_view.search(SearchQuery(text=query, k=20))
                        ]
                        elapsed = time.perf_counter() - t
                        if other_view.model_name != args.model:
                            break  # switched over: no longer "during"
                        during.append(elapsed)
                        same += got == old[query]
                        differs += got != old[query]
                worker.join()
                follow = []
                for _ in range(1000):
                    t = time.perf_counter()
                    other_view.models.follow_saved()
                    follow.append(time.perf_counter() - t)
            report = result["report"].switch
            encoded, seconds = report.encoding.encoded, report.encoding.seconds
            print(
                f"re-encode for {copy} while searching: {encoded} photos in {seconds:.1f} s "
                f"({encoded / seconds:.1f} photos/s), switched: {report.switched}"
            )
            print(
                f"search during the re-encode: {percentiles(during)} ({len(during)} searches; "
                f"{same} answered exactly as {args.model} before the switch, {differs} not)"
            )
            print(f"per-search switch check (one catalog read): {percentiles(follow)}")
            print(f"after the switch the library uses {library.model_name}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
