"""Image throughput of the default model's image tower (EfficientNet-Lite0 + ConSE, plus an
identity projection head reading Lite0's pooled features, as T' and the student have) at
several input sizes, with ONNX Runtime on CPU. The 224 px tower in the same run is the
baseline: the student's resolution is the largest size at >= 2x its images/s.

Sizes are timed in turn (224, 192, ..., 224, 192, ...), best of --rounds, random pixels
(decoding is not the model's cost).

    PYTHONPATH=plugins .venv/bin/python benchmarks/bench_resolution.py
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))


def export_towers(sizes: list[int], folder: Path) -> dict[int, Path]:
    import torch
    from photosearch_train.head_stages import lowres_image_tower
    from photosearch_train.heads import HeadedImageTower, ProjectionHead, extra_dim
    from photosearch_train.teachers import load_conse_teacher

    teacher = load_conse_teacher(folder / "cache")
    head = ProjectionHead(teacher.embed_dim, extra_dim(teacher.visual, teacher.embed_dim))
    paths = {}
    for size in sizes:
        tower = HeadedImageTower(lowres_image_tower(teacher.visual, size), head).eval()
        paths[size] = folder / f"visual-{size}.onnx"
        with torch.no_grad():
            torch.onnx.export(
                tower,
                (torch.zeros(2, 3, size, size),),
                str(paths[size]),
                dynamo=False,
                opset_version=17,
                input_names=["image"],
                output_names=["embedding"],
                dynamic_axes={"image": {0: "batch"}, "embedding": {0: "batch"}},
            )
    return paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="224,192,176,160,144,128")
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    import onnxruntime as ort

    sizes = [int(s) for s in args.sizes.split(",")]
    if 224 not in sizes:
        sizes.insert(0, 224)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_towers(sizes, Path(tmp))
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        sessions = {
            s: ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
            for s, p in paths.items()
        }
        best = dict.fromkeys(sizes, float("inf"))
        for _ in range(args.rounds):
            for size in sizes:
                pixels = rng.standard_normal((args.images, 3, size, size)).astype(np.float32)
                sessions[size].run(None, {"image": pixels[: args.batch]})  # warm
                started = time.perf_counter()
                for i in range(0, args.images, args.batch):
                    sessions[size].run(None, {"image": pixels[i : i + args.batch]})
                best[size] = min(best[size], time.perf_counter() - started)
    print(f"{'px':>4} {'img/s':>7} {'vs 224':>7}  (best of {args.rounds}, {args.threads} threads)")
    for size in sizes:
        print(f"{size:>4} {args.images / best[size]:>7.0f} {best[224] / best[size]:>6.2f}x")


if __name__ == "__main__":
    main()
