"""One training phase: AdamW + warmup/cosine, AMP on CUDA, DDP when launched by torchrun,
checkpoints every N steps with exact resume, JSON-lines log, best weights chosen on val.

A phase trains one module (a tower, or both) with a caller-supplied loss; everything else it
needs (frozen towers' outputs, hard negatives) is cached by the caller. A finished phase leaves
``done.json`` and ``final.pt`` so re-running the recipe skips it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import torch
from torch import nn

from photosearch_train.config import OptimConfig
from photosearch_train.device import (
    Context,
    ShardedForward,
    autocast,
    barrier,
    needs_grad_scaler,
)
from photosearch_train.files import save_json, save_text, save_torch
from photosearch_train.results import PhaseResult

LossFn = Callable[[nn.Module, np.ndarray, int], dict[str, torch.Tensor]]
Validate = Callable[[], dict[str, float]]
DONE_FILE, FINAL_FILE, LAST_FILE, BEST_FILE = "done.json", "final.pt", "last.pt", "best.pt"


@dataclass(frozen=True)
class Phase:
    name: str
    out_dir: Path
    items: int  # dataset size in training units (one unit = one image or one text)
    optim: OptimConfig
    seed: int = 0
    checkpoint_every: int = 50
    eval_every: int = 0  # 0: validate at each epoch end
    progress: bool = True
    select_best: bool = True  # end with the best-on-val weights (else the last step's)
    select_on: str = "rsum"  # the validation score "best" means the highest of

    def steps_per_epoch(self) -> int:
        return max(1, self.items // self.batch_size())

    def batch_size(self) -> int:
        return max(2, min(self.optim.batch_size, self.items))

    def total_steps(self) -> int:
        steps = math.ceil(self.optim.epochs * self.steps_per_epoch())
        return min(steps, self.optim.max_steps) if self.optim.max_steps else steps

    def batch_indices(self, step: int) -> tuple[np.ndarray, int]:
        """The batch for ``step`` and its epoch; a pure function of the step, so a resumed run
        sees exactly the batches an uninterrupted one would. Under DDP every rank gets the
        whole batch: the module it trains encodes only its share (``device.ShardedForward``)."""
        per_epoch, size = self.steps_per_epoch(), self.batch_size()
        epoch, offset = divmod(step, per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(self.items)
        return order[offset * size : (offset + 1) * size], epoch


def trainable(module: nn.Module) -> list[nn.Parameter]:
    return [p for p in module.parameters() if p.requires_grad]


def freeze_batchnorm(module: nn.Module) -> None:
    """BatchNorm keeps its pretrained statistics: small batches would only add noise."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()


def _schedule(optim: OptimConfig, total: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        span = max(1, total - optim.warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - optim.warmup_steps) / span)))

    return factor


def train_phase(
    phase: Phase,
    module: nn.Module,
    loss_fn: LossFn,
    ctx: Context,
    validate: Validate | None = None,
    stop_after: int | None = None,
) -> PhaseResult:
    """Train ``module`` in place: resume, step, validate and select, checkpoint. ``stop_after``
    ends the run early after that many steps in this call (as an interruption would), leaving
    a resumable checkpoint."""
    done = _load_finished(phase, module, ctx)
    if done is not None:
        return done
    phase.out_dir.mkdir(parents=True, exist_ok=True)
    run = _resume(phase, module, ctx)
    wrapped = _distributed(module, ctx)
    total = phase.total_steps()
    if validate is not None and run.step == 0 and run.best is None:
        # The starting weights are a candidate too: training that only hurts val is undone.
        _validate_and_select(phase, run, validate, ctx)
    bar = _progress_bar(phase, total, run.step, ctx)
    started, ran = time.time(), 0
    try:
        while run.step < total and (stop_after is None or ran < stop_after):
            epoch_end = _step(phase, run, wrapped, loss_fn, ctx, bar)
            ran += 1
            due = run.step % phase.eval_every == 0 if phase.eval_every else epoch_end
            if validate is not None and (due or run.step == total):
                _validate_and_select(phase, run, validate, ctx)
            if ctx.is_main and (run.step % phase.checkpoint_every == 0 or run.step == total):
                _save_checkpoint(phase.out_dir / LAST_FILE, run, ctx)
            if run.log:
                run.log.flush()
            barrier(ctx)
    finally:
        if bar is not None:
            bar.close()
        if run.log:
            run.log.close()
    if run.step < total:
        return PhaseResult(phase.name, finished=False, step=run.step, total=total)
    return _finish(phase, run, ctx, round(time.time() - started, 1))


@dataclass
class _Run:
    """A phase in training: the module and what trains it, the step reached, the best
    checkpoint's scores so far, and the JSON-lines log (main process only)."""

    module: nn.Module
    params: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler | None
    step: int = 0
    best: dict | None = None
    log: TextIO | None = None


def _load_finished(phase: Phase, module: nn.Module, ctx: Context) -> PhaseResult | None:
    """A finished phase's result, its final weights loaded into ``module``; None if unfinished."""
    done_file, final_file = phase.out_dir / DONE_FILE, phase.out_dir / FINAL_FILE
    if not (done_file.is_file() and final_file.is_file()):
        return None
    module.load_state_dict(torch.load(final_file, map_location=ctx.device, weights_only=True))
    return PhaseResult.from_dict(json.loads(done_file.read_text(encoding="utf-8")))


def _resume(phase: Phase, module: nn.Module, ctx: Context) -> _Run:
    """Optimiser, schedule and scaler for ``module``; from the last checkpoint when there is
    one (module, optimiser, schedule, scaler and RNG state exactly as saved)."""
    module.to(ctx.device)
    params = trainable(module)
    optimizer = torch.optim.AdamW(params, lr=phase.optim.lr, weight_decay=phase.optim.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(phase.optim, phase.total_steps())
    )
    scaler = torch.amp.GradScaler("cuda") if needs_grad_scaler(ctx.device) else None
    run = _Run(module, params, optimizer, scheduler, scaler)
    last_file = phase.out_dir / LAST_FILE
    resumed = last_file.is_file()
    if resumed:
        state = torch.load(last_file, map_location=ctx.device, weights_only=True)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"].cpu())  # map_location put it on the run's device
        if ctx.device.type == "cuda" and state.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(state["cuda_rng"].cpu(), ctx.device)
        run.step, run.best = state["step"], state["best"]
    if ctx.is_main:
        log_path = phase.out_dir / "log.jsonl"
        _trim_log(log_path, run.step if resumed else None)
        run.log = log_path.open("a", encoding="utf-8")
    return run


def _distributed(module: nn.Module, ctx: Context) -> nn.Module:
    """``module`` as the training loop calls it: under DDP, each rank encoding its share."""
    if not ctx.distributed:
        return module
    ddp = nn.parallel.DistributedDataParallel(
        module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
    )
    return ShardedForward(ddp, ctx)


def _step(
    phase: Phase, run: _Run, wrapped: nn.Module, loss_fn: LossFn, ctx: Context, bar: Any
) -> bool:
    """One optimiser step on the step's batch, logged; whether it ended an epoch (or the
    phase)."""
    wrapped.train()
    freeze_batchnorm(wrapped)
    idx, epoch = phase.batch_indices(run.step)
    with autocast(ctx.device):
        terms = loss_fn(wrapped, idx, epoch)
    loss = terms["loss"]
    run.optimizer.zero_grad(set_to_none=True)
    if run.scaler is not None:
        run.scaler.scale(loss).backward()
        run.scaler.unscale_(run.optimizer)
    else:
        loss.backward()
    if phase.optim.grad_clip:
        nn.utils.clip_grad_norm_(run.params, phase.optim.grad_clip)
    updated = True
    if run.scaler is not None:
        scale = run.scaler.get_scale()
        run.scaler.step(run.optimizer)
        run.scaler.update()
        # fp16: a step whose gradients overflowed is skipped (and the scale lowered); the
        # learning-rate schedule follows the updates that were made
        updated = run.scaler.get_scale() >= scale
    else:
        run.optimizer.step()
    if updated:
        run.scheduler.step()
    run.step += 1
    record = {
        "step": run.step,
        "epoch": epoch,
        "lr": run.scheduler.get_last_lr()[0],
        **{k: float(v.detach()) for k, v in terms.items()},
        **({} if updated else {"skipped": "fp16 overflow"}),
    }
    if bar is not None:
        bar.set_postfix(loss=f"{record['loss']:.4f}")
        bar.update(1)
    if run.log:
        run.log.write(json.dumps(record) + "\n")
    return run.step % phase.steps_per_epoch() == 0 or run.step == phase.total_steps()


def _validate_and_select(phase: Phase, run: _Run, validate: Validate, ctx: Context) -> None:
    """Score the current weights, log the scores, and keep them as ``best.pt`` when they beat
    the best so far on ``phase.select_on``."""
    scores = validate()
    if run.log:
        run.log.write(json.dumps({"step": run.step, "val": scores}) + "\n")
    key = phase.select_on
    if run.best is None or scores[key] > run.best[key]:
        run.best = {"step": run.step, **scores}
        if ctx.is_main:
            save_torch(phase.out_dir / BEST_FILE, run.module.state_dict())


def _finish(phase: Phase, run: _Run, ctx: Context, seconds: float) -> PhaseResult:
    """End a phase that ran all its steps: the chosen weights loaded and saved as
    ``final.pt`` with ``done.json``, the module in eval mode."""
    out = phase.out_dir
    barrier(ctx)
    if phase.select_best and run.best is not None and (out / BEST_FILE).is_file():
        run.module.load_state_dict(
            torch.load(out / BEST_FILE, map_location=ctx.device, weights_only=True)
        )
    result = PhaseResult(
        phase.name,
        finished=True,
        step=phase.total_steps(),
        total=phase.total_steps(),
        best_val=run.best,
        seconds_this_run=seconds,
    )
    if ctx.is_main:
        save_torch(out / FINAL_FILE, run.module.state_dict())
        save_json(out / DONE_FILE, result.to_dict())
    barrier(ctx)
    run.module.eval()
    return result


def _trim_log(path: Path, checkpoint_step: int | None) -> None:
    """Drop what a killed run logged after its last checkpoint (the resumed run logs those
    steps again) and a last line cut off mid-write, so the log reads as one uninterrupted run.
    ``None``: no checkpoint, the phase starts over."""
    if not path.is_file():
        return
    kept = []
    if checkpoint_step is not None:
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if record.get("step", 0) <= checkpoint_step:
                kept.append(line + "\n")
    save_text(path, "".join(kept))


def _save_checkpoint(path: Path, run: _Run, ctx: Context) -> None:
    """Everything a resumed run needs to take the same steps, the GPU's random state too
    (dropout on CUDA draws from it)."""
    cuda = ctx.device.type == "cuda"
    state = {
        "model": run.module.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "scaler": run.scaler.state_dict() if run.scaler else None,
        "rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state(ctx.device) if cuda else None,
        "step": run.step,
        "best": run.best,
    }
    save_torch(path, state)


def _progress_bar(phase: Phase, total: int, step: int, ctx: Context) -> Any:
    """A tqdm bar on the main process when progress is on and tqdm is installed (the train
    extra has it), else None."""
    if not (phase.progress and ctx.is_main):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=step, desc=phase.name, unit="step", leave=False)
