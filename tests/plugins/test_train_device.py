"""Multi-process training (torchrun, gloo on CPU) trains what one process trains: each rank
encodes its share of the batch, and the contrastive losses see the whole batch. On a machine
with a GPU the same file also trains every phase on CUDA with mixed precision, and with two
GPUs compares NCCL data parallel with one GPU: `pytest tests/plugins/test_train_device.py`."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tests.support.plugin_paths import subprocess_env

torch = pytest.importorskip("torch")
from photosearch_train import losses  # noqa: E402
from photosearch_train.device import Context, sharded  # noqa: E402

# One DDP step of a two-tower model whose clip_loss is over a batch of 5 (odd: rank 1's share
# is padded). Each rank writes the gradients it ends with (DDP has averaged them over ranks)
# and how many rows each tower encoded there.
RANK_SCRIPT = """
import sys
import numpy as np
import torch
from torch import nn
from photosearch_train import losses
from photosearch_train.device import setup, sharded

def towers():
    torch.manual_seed(0)
    return nn.ModuleDict({"a": nn.Linear(6, 4), "b": nn.Linear(3, 4)})

class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.parts = towers()
        self.rows = {"a": 0, "b": 0}
    def forward(self, name, x):
        self.rows[name] += len(x)
        return nn.functional.normalize(self.parts[name](x), dim=-1)

ctx = setup()
gen = torch.Generator().manual_seed(1)
xa, xb = torch.randn(5, 6, generator=gen), torch.randn(5, 3, generator=gen)
model = Pair()
wrapped = sharded(nn.parallel.DistributedDataParallel(model), ctx)
loss = losses.clip_loss(wrapped("a", xa), wrapped("b", xb), 0.1)
loss.backward()
grads = {k: p.grad.numpy() for k, p in model.named_parameters()}
rows = [model.rows["a"], model.rows["b"]]
np.savez(f"{sys.argv[1]}{ctx.rank}.npz", loss=loss.detach().numpy(), rows=rows, **grads)
torch.distributed.barrier()  # no gloo work in flight at teardown (else an occasional abort)
torch.distributed.destroy_process_group()
"""


GPUS = torch.cuda.device_count() if torch.cuda.is_available() else 0


def _env(gpus: bool = False) -> dict[str, str]:
    """The subprocesses' environment. The gloo comparisons check the sharding on the CPU, so
    they hide any GPU (NCCL would need one per process)."""
    return subprocess_env(OMP_NUM_THREADS="1", **({} if gpus else {"CUDA_VISIBLE_DEVICES": ""}))


def _torchrun(
    args: list[str], port: int, processes: int = 2, gpus: bool = False
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes)]
        + ["--master_port", str(port), *args],
        capture_output=True,
        text=True,
        env=_env(gpus),
        timeout=300,
    )


def _stage_losses(out: Path, phase: str) -> list[dict]:
    lines = (out / phase / "log.jsonl").read_text(encoding="utf-8").splitlines()
    return [r for r in map(json.loads, lines) if "loss" in r]


def test_two_ranks_get_the_single_process_gradient_of_a_whole_batch_loss(tmp_path):
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT, encoding="utf-8")
    result = _torchrun([str(script), str(tmp_path / "rank")], 29531)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]

    # The same step in this process, on the whole batch.
    namespace: dict = {}
    exec(RANK_SCRIPT.split("ctx = setup()")[0], namespace)
    model = namespace["Pair"]()
    gen = torch.Generator().manual_seed(1)
    xa, xb = torch.randn(5, 6, generator=gen), torch.randn(5, 3, generator=gen)
    single = sharded(model, Context(torch.device("cpu")))  # one process: the model itself
    assert single is model
    loss = losses.clip_loss(model("a", xa), model("b", xb), 0.1)
    loss.backward()

    for ddp in ranks:
        assert ddp["rows"].tolist() == [3, 3]  # its share (ceil(5 / 2) rows) per tower, no more
        assert float(ddp["loss"]) == pytest.approx(float(loss.detach()), rel=1e-6)
        for name, param in model.named_parameters():
            np.testing.assert_allclose(ddp[name], param.grad.numpy(), rtol=1e-5, atol=1e-7)


CROPS = {  # the head recipe's crop distillation (the student and T' each encode their share)
    "finetune_teacher.towers": False,
    "finetune_teacher.head": True,
    "finetune_teacher.head_optim.epochs": 2,
    "student.image_tower": "teacher",
    "stage2.head_optim.epochs": 2,
    "stage2.crop_optim.epochs": 3,
    "stage2.crop_optim.max_steps": 3,
    "stage2.crop_optim.batch_size": 5,
    "stage2.crop_feature_weight": 1.0,
}


@pytest.mark.parametrize(
    ("stage", "phase", "overrides"),
    [
        ("stage1", "stage1-image", {"stage1.optim.batch_size": 5}),
        ("stage2", "stage2-crops", CROPS),
    ],
)
def test_a_torchrun_phase_logs_the_single_process_losses(tmp_path, stage, phase, overrides):
    """A phase run by 2 processes and by one, from the same seed (and, for stage 2, the same
    T'): the same batches and losses, step after step."""
    from photosearch_train import api

    from tests.plugins.test_train_recipe import make_captions, tiny_config

    captions = make_captions(tmp_path / "data")
    logs = {}
    for runner in ("single", "ddp"):
        out = tmp_path / runner
        config = tiny_config(captions, out, **overrides)
        config.save(tmp_path / f"{runner}.json")
        if stage == "stage2":
            api.run_stage(config, "finetune-teacher")
        args = ["-m", "photosearch_train", stage, "--config", str(tmp_path / f"{runner}.json")]
        if runner == "single":
            result = subprocess.run(
                [sys.executable, *args], capture_output=True, text=True, env=_env(), timeout=300
            )
        else:
            result = _torchrun(args, 29533)
        assert result.returncode == 0, result.stderr[-3000:]
        logs[runner] = _stage_losses(out, phase)
    assert len(logs["ddp"]) == len(logs["single"]) >= 2
    for single, ddp in zip(logs["single"], logs["ddp"], strict=True):
        assert ddp["step"] == single["step"]
        assert ddp["loss"] == pytest.approx(single["loss"], rel=1e-3)


def _train_every_phase(tmp_path: Path) -> dict[str, list[dict]]:
    """Every phase (sequential, joint, crops) of the tiny recipe in this process, on the
    device the trainer picks; the logged steps of each phase."""
    from photosearch_train import api

    from tests.plugins.test_train_recipe import make_captions, tiny_config

    captions = make_captions(tmp_path / "data")
    runs = {
        "sequential": ({}, ("stage1-image", "stage2-image", "stage2-text")),
        "joint": (
            {"finetune_teacher.sequential": False, "stage2.sequential": False},
            ("finetune_teacher-joint", "stage2-joint"),
        ),
        "crops": ({**CROPS, "stage2.crop_optim.batch_size": 4}, ("stage2-crops",)),
    }
    logged = {}
    for name, (overrides, phases) in runs.items():
        config = tiny_config(captions, tmp_path / name, **overrides)
        for stage in ("stage1", "finetune-teacher", "stage2"):
            api.run_stage(config, stage)
        for phase in phases:
            logged[f"{name}: {phase}"] = _stage_losses(tmp_path / name, phase)
    return logged


def _all_steps_finite(logged: dict[str, list[dict]]) -> None:
    for phase, steps in logged.items():
        assert steps, f"{phase} logged no step"
        assert all(np.isfinite(r["loss"]) for r in steps), f"{phase} {steps}"


def test_every_phase_trains_under_bf16_autocast(tmp_path, monkeypatch):
    """The mixed-precision code paths (bf16 outputs meeting float32 cached targets, losses,
    the miner, the crops' feature term) on CPU autocast, the stand-in for CUDA AMP here."""
    from photosearch_train.device import CPU_BF16_ENV, autocast

    monkeypatch.setenv(CPU_BF16_ENV, "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # this test is the CPU's
    with autocast(torch.device("cpu")):
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    _all_steps_finite(_train_every_phase(tmp_path))


@pytest.mark.skipif(GPUS == 0, reason="no CUDA GPU on this machine")
@pytest.mark.parametrize("half", ["bf16", "fp16"])
def test_every_phase_trains_on_a_gpu_with_mixed_precision(tmp_path, monkeypatch, half):
    """Every phase on CUDA under autocast: bf16, and fp16 with a gradient scaler as on GPUs
    without bf16 (told so here). The first steps' losses are the CPU's (float32) to within
    the half precision's error: the same batches, the same model, on another device."""
    from photosearch_train.device import autocast, needs_grad_scaler

    from tests.plugins.test_train_recipe import make_captions, tiny_config

    if half == "fp16":
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: False)
    gpu = torch.device("cuda", 0)
    assert needs_grad_scaler(gpu) == (half == "fp16")
    with autocast(gpu):
        product = torch.ones(2, 3, device=gpu) @ torch.ones(3, 2, device=gpu)
    assert product.dtype == (torch.bfloat16 if half == "bf16" else torch.float16)
    torch.cuda.reset_peak_memory_stats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        logged = _train_every_phase(tmp_path / "gpu")
    assert torch.cuda.max_memory_allocated() > 0  # the models and batches were on the GPU
    _all_steps_finite(logged)
    # fp16 skips the steps whose gradients overflow; the schedule must not run ahead of them
    assert not [w for w in caught if "lr_scheduler.step()" in str(w.message)]
    skipped = sum("skipped" in r for steps in logged.values() for r in steps)
    print(f"{half}: {skipped} steps skipped for overflow")

    # Stage 1's image phase again on the CPU, in a process that sees no GPU.
    captions = make_captions(tmp_path / "cpu-data")
    config = tiny_config(captions, tmp_path / "cpu")
    config.save(tmp_path / "cpu.json")
    args = ["-m", "photosearch_train", "stage1", "--config", str(tmp_path / "cpu.json")]
    result = subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=_env(), timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    cpu = _stage_losses(tmp_path / "cpu", "stage1-image")
    cuda = logged["sequential: stage1-image"]
    assert [r["step"] for r in cuda] == [r["step"] for r in cpu]
    gaps = [abs(g["loss"] - c["loss"]) / abs(c["loss"]) for g, c in zip(cuda, cpu, strict=True)]
    print(f"{half}: relative loss gaps to the CPU, step by step: {gaps}")
    assert gaps[0] < 0.05, gaps


@pytest.mark.skipif(GPUS == 0, reason="no CUDA GPU on this machine")
def test_more_processes_than_gpus_are_refused_with_the_fix(tmp_path):
    from tests.plugins.test_train_recipe import make_captions, tiny_config

    config = tiny_config(make_captions(tmp_path / "data"), tmp_path / "out")
    config.save(tmp_path / "run.json")
    args = ["-m", "photosearch_train", "stage1", "--config", str(tmp_path / "run.json")]
    result = _torchrun(args, 29535, processes=GPUS + 1, gpus=True)
    assert result.returncode != 0
    assert f"use --nproc_per_node {GPUS}" in result.stderr, result.stderr[-3000:]


@pytest.mark.skipif(GPUS < 2, reason="NCCL data parallel needs two GPUs")
def test_two_gpus_under_torchrun_log_the_one_gpu_losses(tmp_path):
    """Stage 1 on one GPU and on two under NCCL: the same batches, and losses within bf16's
    error of each other (each GPU encodes half of every batch)."""
    from tests.plugins.test_train_recipe import make_captions, tiny_config

    captions = make_captions(tmp_path / "data")
    logs = {}
    for runner in ("one", "two"):
        config = tiny_config(captions, tmp_path / runner, **{"stage1.optim.batch_size": 6})
        config.save(tmp_path / f"{runner}.json")
        args = ["-m", "photosearch_train", "stage1", "--config", str(tmp_path / f"{runner}.json")]
        result = _torchrun(args, 29537, processes=1 if runner == "one" else 2, gpus=True)
        assert result.returncode == 0, result.stderr[-3000:]
        logs[runner] = _stage_losses(tmp_path / runner, "stage1-image")
    assert [r["step"] for r in logs["two"]] == [r["step"] for r in logs["one"]]
    for one, two in zip(logs["one"], logs["two"], strict=True):
        assert two["loss"] == pytest.approx(one["loss"], rel=2e-2)


@pytest.mark.parametrize(
    "device",
    ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(GPUS == 0, reason="no CUDA GPU"))],
)
def test_a_phase_interrupted_on_any_device_resumes_with_the_steps_it_would_have_taken(
    tmp_path, device
):
    """Stopped after 3 steps and resumed in what stands for a fresh process (new weights, other
    random states): the same losses and weights as a run never stopped. Dropout draws from the
    device's own generator, so on a GPU its state must come back with the checkpoint."""
    from photosearch_train.config import OptimConfig
    from photosearch_train.trainer import Phase, train_phase
    from torch import nn

    on = torch.device(device, 0) if device == "cuda" else torch.device("cpu")
    gen = torch.Generator().manual_seed(1)
    data = torch.randn(32, 8, generator=gen)
    targets = nn.functional.normalize(torch.randn(32, 4, generator=gen), dim=-1)

    def loss_fn(module, idx, epoch):
        rows = torch.from_numpy(idx)
        out = nn.functional.normalize(module(data[rows].to(on)).float(), dim=-1)
        return {"loss": losses.cosine_distance(out, targets[rows].to(on))}

    def fresh(seed: int) -> nn.Module:
        torch.manual_seed(seed)
        if device == "cuda":
            torch.cuda.manual_seed(seed)
        return nn.Sequential(nn.Linear(8, 32), nn.Dropout(0.5), nn.Linear(32, 4))

    weights = {}
    for name, stops in (("whole", [None]), ("resumed", [3, None])):
        optim = OptimConfig(batch_size=8, epochs=2, warmup_steps=1)
        phase = Phase(name, tmp_path / name, 32, optim, checkpoint_every=1, progress=False)
        phase = dataclasses.replace(phase, select_best=False)
        for n, stop in enumerate(stops):
            module = fresh(0 if n == 0 else 99)
            train_phase(phase, module, loss_fn, Context(on), stop_after=stop)
        weights[name] = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    whole, resumed = _stage_losses(tmp_path, "whole"), _stage_losses(tmp_path, "resumed")
    assert [r["step"] for r in resumed] == [r["step"] for r in whole] == list(range(1, 9))
    for one, other in zip(whole, resumed, strict=True):
        assert other["loss"] == pytest.approx(one["loss"], rel=1e-5)
    for key, value in weights["whole"].items():
        torch.testing.assert_close(weights["resumed"][key], value, rtol=1e-5, atol=1e-6)
