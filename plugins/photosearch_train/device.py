"""Where training runs: CUDA with mixed precision when present, else CPU; torchrun DDP from
the environment (RANK/WORLD_SIZE/LOCAL_RANK), nccl on GPUs and gloo on CPUs."""

from __future__ import annotations

import contextlib
import math
import os
import random
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from photosearch.errors import PhotosearchError


class MoreRanksThanGpus(PhotosearchError):
    """torchrun asked for more processes on this machine than it has GPUs."""


@dataclass(frozen=True)
class Context:
    device: torch.device
    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def setup() -> Context:
    """Initialise DDP when launched by torchrun, pick the device; safe to call twice."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available()
    processes_here = int(os.environ.get("LOCAL_WORLD_SIZE", str(local + 1)))
    if cuda and processes_here > torch.cuda.device_count():
        gpus = torch.cuda.device_count()
        raise MoreRanksThanGpus(
            f"torchrun started {processes_here} processes on this machine, which has {gpus} "
            f"GPU(s); NCCL needs a GPU per process: use --nproc_per_node {gpus}, or "
            "CUDA_VISIBLE_DEVICES= to train on the CPU"
        )
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group(backend="nccl" if cuda else "gloo")
    if cuda:
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    else:
        device = torch.device("cpu")
    return Context(device, rank, world)


def barrier(ctx: Context) -> None:
    if ctx.distributed:
        torch.distributed.barrier()


class ShardedForward(nn.Module):
    """Runs ``module`` on this rank's share of a global batch and all-gathers the outputs, with
    their gradient, so every rank's loss sees the whole batch.

    Contrastive losses need it: with each rank's loss over its local batch only, N GPUs would
    train with N small batches' negatives, not one large batch's, and a torchrun run would not
    train the model a single process does. Every rank is given the same global batch; rank r
    encodes rows [r*m, (r+1)*m) (m = ceil(n / world), the last share padded with copies of the
    last row, whose outputs are dropped). The gather's backward sums each rank's gradient for
    the local rows; DDP then averages over ranks, which gives the single-process gradient.
    """

    def __init__(self, module: nn.Module, ctx: Context) -> None:
        super().__init__()
        self.module, self.rank, self.world = module, ctx.rank, ctx.world_size

    def forward(self, *inputs):  # noqa: ANN002, ANN201 - tensors (rows = batch) and options
        n = len(next(x for x in inputs if isinstance(x, torch.Tensor)))
        per = max(1, math.ceil(n / self.world))
        lo, hi = self.rank * per, (self.rank + 1) * per
        out = self.module(*(_rows(x, lo, hi) if isinstance(x, torch.Tensor) else x for x in inputs))
        if isinstance(out, tuple):
            return tuple(self._gather(o, n) for o in out)
        return self._gather(out, n)

    def _gather(self, local: torch.Tensor, n: int) -> torch.Tensor:
        return _GatherRows.apply(local, self.rank, self.world)[:n]


class _GatherRows(torch.autograd.Function):
    """All ranks' equal-sized row blocks, concatenated in rank order. Backward: every rank's
    loss depends on every block, so a block's gradient is the sum over ranks (all-reduce) of
    the gradient of its rows. Written out (rather than torch.distributed.nn's, deprecated in
    recent torch) with the two collectives gloo and nccl have in every supported version."""

    @staticmethod
    def forward(ctx, local: torch.Tensor, rank: int, world: int) -> torch.Tensor:  # noqa: ANN001
        ctx.rank, ctx.rows = rank, len(local)
        blocks = [torch.empty_like(local) for _ in range(world)]
        torch.distributed.all_gather(blocks, local.contiguous())
        return torch.cat(blocks, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: ANN001, ANN205
        grad = grad.contiguous()
        torch.distributed.all_reduce(grad)
        lo = ctx.rank * ctx.rows
        return grad[lo : lo + ctx.rows], None, None


def _rows(x: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
    """Rows [lo, hi) of ``x``, padded with copies of its last row where ``x`` is shorter."""
    part = x[lo:hi]
    missing = (hi - lo) - len(part)
    return torch.cat([part, x[-1:].expand(missing, *x.shape[1:])]) if missing else part


def sharded(module: nn.Module, ctx: Context) -> nn.Module:
    """``module`` itself in a single process, else a ShardedForward around it."""
    return ShardedForward(module, ctx) if ctx.distributed else module


CPU_BF16_ENV = "PHOTOSEARCH_TRAIN_CPU_BF16"


def autocast(device: torch.device):  # noqa: ANN201
    """bf16/fp16 autocast on CUDA (bf16 where supported); on CPU full precision, unless
    PHOTOSEARCH_TRAIN_CPU_BF16=1 asks for bf16 autocast there too (CPUs with bf16 units; and
    the way to run the mixed-precision code paths, their dtype mixing, without a GPU)."""
    if device.type != "cuda":
        if os.environ.get(CPU_BF16_ENV) == "1":
            return torch.autocast("cpu", dtype=torch.bfloat16)
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast("cuda", dtype=dtype)


def needs_grad_scaler(device: torch.device) -> bool:
    return device.type == "cuda" and not torch.cuda.is_bf16_supported()


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
