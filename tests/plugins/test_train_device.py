"""Multi-process training (torchrun, gloo on CPU) trains what one process trains: each rank
encodes its share of the batch, and the contrastive losses see the whole batch."""

from __future__ import annotations

import json
import subprocess
import sys

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


def _env() -> dict[str, str]:
    return subprocess_env(OMP_NUM_THREADS="1")


def _torchrun(args: list[str], port: int) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2"]
        + ["--master_port", str(port), *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=300,
    )


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
        lines = (out / phase / "log.jsonl").read_text(encoding="utf-8").splitlines()
        logs[runner] = [r for r in map(json.loads, lines) if "loss" in r]
    assert len(logs["ddp"]) == len(logs["single"]) >= 2
    for single, ddp in zip(logs["single"], logs["ddp"], strict=True):
        assert ddp["step"] == single["step"]
        assert ddp["loss"] == pytest.approx(single["loss"], rel=1e-3)


def test_every_phase_trains_under_bf16_autocast(tmp_path, monkeypatch):
    """The mixed-precision code paths (bf16 outputs meeting float32 cached targets, losses,
    the miner, the crops' feature term) on CPU autocast, the stand-in for CUDA AMP here."""
    from photosearch_train import api
    from photosearch_train.device import CPU_BF16_ENV, autocast

    from tests.plugins.test_train_recipe import make_captions, tiny_config

    monkeypatch.setenv(CPU_BF16_ENV, "1")
    with autocast(torch.device("cpu")):
        assert (torch.ones(2, 3) @ torch.ones(3, 2)).dtype == torch.bfloat16
    captions = make_captions(tmp_path / "data")
    runs = {
        "sequential": ({}, ("stage1-image", "stage2-image", "stage2-text")),
        "joint": (
            {"finetune_teacher.sequential": False, "stage2.sequential": False},
            ("finetune_teacher-joint", "stage2-joint"),
        ),
        "crops": ({**CROPS, "stage2.crop_optim.batch_size": 4}, ("stage2-crops",)),
    }
    for name, (overrides, phases) in runs.items():
        config = tiny_config(captions, tmp_path / name, **overrides)
        for stage in ("stage1", "finetune-teacher", "stage2"):
            api.run_stage(config, stage)
        for phase in phases:
            lines = (tmp_path / name / phase / "log.jsonl").read_text(encoding="utf-8")
            steps = [r for r in map(json.loads, lines.splitlines()) if "loss" in r]
            assert steps, f"{name}: {phase} logged no step"
            assert all(np.isfinite(r["loss"]) for r in steps), f"{name}: {phase} {steps}"
