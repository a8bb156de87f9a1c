"""Images per second indexed through the app, a distilled student beside its teacher.

Why interleaved: on a shared machine the load changes from minute to minute, so each round
indexes the same photos into a fresh library with every model in turn, and the ratio to the
first model (the teacher) is taken within each round; the median round is reported. The rate
is the app's own (``Library.index()``: the decode pool, the batched encoder and the catalog
commits, scanning excluded), which is what ``photosearch eval`` reports as images/s.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_student_speed.py \
        --models conse-lite0-minilm,conse-distilled-frozen --models-dir /tmp/distill/models \
        --photos /tmp/distill/photos --limit 300 --rounds 3

Point --photos at photos not used for choosing anything else if the figures are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
from pathlib import Path

from photosearch.library.facade import Library


def index_rate(photos: Path, model: str, models_dir: Path | None, work: Path) -> float:
    """Photos per second of one first index of ``photos`` into a fresh library."""
    with (
        tempfile.TemporaryDirectory(dir=work) as tmp,
        Library(Path(tmp) / "library", models_dir=models_dir, model=model) as library,
    ):
        library.encoder.warm_up()
        library.add_folder(photos)
        report = library.index()
    return report.encoding.encoded / report.encoding.seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", required=True, help="comma-separated; the first is the base")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    models = args.models.split(",")
    sources = sorted(p for p in args.photos.iterdir() if p.is_file())[: args.limit]
    if not sources:
        raise SystemExit(f"no photos in {args.photos}")
    rates: dict[str, list[float]] = {m: [] for m in models}
    with tempfile.TemporaryDirectory(prefix="bench-student-speed-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for path in sources:  # links: the same bytes, no copy
            (folder / path.name).symlink_to(path.resolve())
        for _ in range(args.rounds):
            for model in models:
                rates[model].append(index_rate(folder, model, args.models_dir, Path(tmp)))
    base = rates[models[0]]
    summary = {
        model: {
            "images_per_s": [round(r, 1) for r in rates[model]],
            "median_images_per_s": round(statistics.median(rates[model]), 1),
            "median_ratio_to_first": round(
                statistics.median(r / b for r, b in zip(rates[model], base, strict=True)), 2
            ),
        }
        for model in models
    }
    load = os.getloadavg()
    if args.json:
        print(json.dumps({"photos": len(sources), "load_average": load, "models": summary}))
        return 0
    print(f"{len(sources)} photos, {args.rounds} rounds, load average {load[0]:.1f} (1 min)")
    for model, row in summary.items():
        print(
            f"{model:32s} {row['median_images_per_s']:7.1f} images/s (rounds "
            f"{row['images_per_s']}), x{row['median_ratio_to_first']} of {models[0]}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
