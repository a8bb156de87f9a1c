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

LossFn = Callable[[nn.Module, np.ndarray, int], dict[str, torch.Tensor]]
Validate = Callable[[], dict[str, float]]


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
) -> dict:
    """Train ``module`` in place; returns a summary. ``stop_after`` ends the run early after
    that many steps in this call (as an interruption would), leaving a resumable checkpoint."""
    out = phase.out_dir
    done_file, final_file, last_file = out / "done.json", out / "final.pt", out / "last.pt"
    if done_file.is_file() and final_file.is_file():
        module.load_state_dict(torch.load(final_file, map_location=ctx.device, weights_only=True))
        return json.loads(done_file.read_text(encoding="utf-8"))
    out.mkdir(parents=True, exist_ok=True)
    module.to(ctx.device)
    params = trainable(module)
    optimizer = torch.optim.AdamW(params, lr=phase.optim.lr, weight_decay=phase.optim.weight_decay)
    total = phase.total_steps()
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(phase.optim, total))
    scaler = torch.amp.GradScaler("cuda") if needs_grad_scaler(ctx.device) else None
    step, best = 0, None
    if last_file.is_file():
        state = torch.load(last_file, map_location=ctx.device, weights_only=True)
        module.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["rng"])
        step, best = state["step"], state["best"]
    wrapped = module
    if ctx.distributed:
        wrapped = ShardedForward(
            nn.parallel.DistributedDataParallel(
                module, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None
            ),
            ctx,
        )
    if ctx.is_main:
        _trim_log(out / "log.jsonl", step if last_file.is_file() else None)
    log = (out / "log.jsonl").open("a", encoding="utf-8") if ctx.is_main else None
    if validate is not None and step == 0 and best is None:
        # The starting weights are a candidate too: training that only hurts val is undone.
        scores = validate()
        best = {"step": 0, **scores}
        if log:
            log.write(json.dumps({"step": 0, "val": scores}) + "\n")
        if ctx.is_main:
            save_torch(out / "best.pt", module.state_dict())
    bar = _progress_bar(phase, total, step, ctx)
    started, ran = time.time(), 0
    try:
        while step < total and (stop_after is None or ran < stop_after):
            wrapped.train()
            freeze_batchnorm(wrapped)
            idx, epoch = phase.batch_indices(step)
            with autocast(ctx.device):
                losses = loss_fn(wrapped, idx, epoch)
            loss = losses["loss"]
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.unscale_(optimizer)
            else:
                loss.backward()
            if phase.optim.grad_clip:
                nn.utils.clip_grad_norm_(params, phase.optim.grad_clip)
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            scheduler.step()
            step, ran = step + 1, ran + 1
            record = {
                "step": step,
                "epoch": epoch,
                "lr": scheduler.get_last_lr()[0],
                **{k: float(v.detach()) for k, v in losses.items()},
            }
            if bar is not None:
                bar.set_postfix(loss=f"{record['loss']:.4f}")
                bar.update(1)
            if log:
                log.write(json.dumps(record) + "\n")
            epoch_end = step % phase.steps_per_epoch() == 0 or step == total
            due = step % phase.eval_every == 0 if phase.eval_every else epoch_end
            if validate is not None and (due or step == total):
                scores = validate()
                if log:
                    log.write(json.dumps({"step": step, "val": scores}) + "\n")
                key = phase.select_on
                if best is None or scores[key] > best[key]:
                    best = {"step": step, **scores}
                    if ctx.is_main:
                        save_torch(out / "best.pt", module.state_dict())
            if ctx.is_main and (step % phase.checkpoint_every == 0 or step == total):
                _save_checkpoint(last_file, module, optimizer, scheduler, scaler, step, best)
            if log:
                log.flush()
            barrier(ctx)
    finally:
        if bar is not None:
            bar.close()
        if log:
            log.close()
    if step < total:
        return {"phase": phase.name, "step": step, "total": total, "finished": False}
    barrier(ctx)
    if phase.select_best and best is not None and (out / "best.pt").is_file():
        module.load_state_dict(
            torch.load(out / "best.pt", map_location=ctx.device, weights_only=True)
        )
    summary = {
        "phase": phase.name,
        "steps": total,
        "finished": True,
        "best_val": best,
        "seconds_this_run": round(time.time() - started, 1),
    }
    if ctx.is_main:
        save_torch(final_file, module.state_dict())
        save_json(done_file, summary)
    barrier(ctx)
    module.eval()
    return summary


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


def _save_checkpoint(path: Path, module, optimizer, scheduler, scaler, step, best) -> None:  # noqa: ANN001
    state = {
        "model": module.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict() if scaler else None,
        "rng": torch.get_rng_state(),
        "step": step,
        "best": best,
    }
    save_torch(path, state)


def _progress_bar(phase: Phase, total: int, step: int, ctx: Context):  # noqa: ANN202
    if not (phase.progress and ctx.is_main):
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=step, desc=phase.name, unit="step", leave=False)
