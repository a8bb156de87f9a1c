"""Images per second indexed through the app, a distilled student beside its teacher.

Why interleaved: on a shared machine the load changes from minute to minute, so each round
indexes the same photos into a fresh library with every model in turn, and the ratio to the
first model (the teacher) is taken within each round; the median round is reported. The rate
is the app's own (``Library.index()``: the decode pool, the batched encoder and the catalog
commits, scanning excluded), which is what ``photosearch eval`` reports as images/s. Beside
it, the CPU time spent per photo while indexing (all threads, the decode worker processes
included): on a machine shared with other jobs the wall-clock rate swings with their load,
the CPU time much less.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_student_speed.py \
        --models conse-lite0-minilm,conse-distilled-frozen --models-dir /tmp/distill/models \
        --photos /tmp/distill/photos --limit 300 --rounds 3

Point --photos at photos not used for choosing anything else if the figures are reported.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
from pathlib import Path

from photosearch.library.facade import Library


def _cpu_seconds() -> float:
    """This process's CPU time and its finished children's (the decode workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def index_rate(
    photos: Path, model: str, models_dir: Path | None, work: Path
) -> tuple[float, float]:
    """(photos per second, CPU ms per photo) of one first index of ``photos`` into a fresh
    library."""
    with (
        tempfile.TemporaryDirectory(dir=work) as tmp,
        Library(Path(tmp) / "library", models_dir=models_dir, model=model) as library,
    ):
        library.encoder.warm_up()
        library.add_folder(photos)
        cpu = _cpu_seconds()
        report = library.index()
    cpu = _cpu_seconds() - cpu  # after the library closed: its decode workers have exited
    encoded = report.encoding.encoded
    return encoded / report.encoding.seconds, 1000.0 * cpu / encoded


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
    cpu_ms: dict[str, list[float]] = {m: [] for m in models}
    with tempfile.TemporaryDirectory(prefix="bench-student-speed-") as tmp:
        folder = Path(tmp) / "photos"
        folder.mkdir()
        for path in sources:  # links: the same bytes, no copy
            (folder / path.name).symlink_to(path.resolve())
        for _ in range(args.rounds):
            for model in models:
                rate, cpu = index_rate(folder, model, args.models_dir, Path(tmp))
                rates[model].append(rate)
                cpu_ms[model].append(cpu)
    base = rates[models[0]]
    summary = {
        model: {
            "images_per_s": [round(r, 1) for r in rates[model]],
            "median_images_per_s": round(statistics.median(rates[model]), 1),
            "median_ratio_to_first": round(
                statistics.median(r / b for r, b in zip(rates[model], base, strict=True)), 2
            ),
            "cpu_ms_per_image": [round(c, 1) for c in cpu_ms[model]],
            "cpu_ratio_first_to_this": round(
                statistics.median(cpu_ms[models[0]]) / statistics.median(cpu_ms[model]), 2
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
            f"{row['images_per_s']}), x{row['median_ratio_to_first']} of {models[0]}; "
            f"CPU ms/photo {row['cpu_ms_per_image']} (x{row['cpu_ratio_first_to_this']} less)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
