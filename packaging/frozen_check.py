"""Drive a built (frozen) photosearch binary through its CLI: version, index, search.

Shared by benchmarks/bench_frozen.py (real default model, sample photos) and
tests/gui/test_frozen.py (tiny bundle); it needs only the standard library.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FROZEN = ROOT / "dist" / "photosearch" / "photosearch"


@dataclass(frozen=True)
class FrozenRun:
    version: str
    index_s: float
    search_s: float
    results: list[dict]
    index_output: str


def run_cli(
    binary: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(binary), *args], capture_output=True, text=True, env=env, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{binary.name} {' '.join(args)} exited {done.returncode}:\n"
            f"{done.stdout}\n{done.stderr}"
        )
    return done


def index_and_search(
    binary: Path,
    library: Path,
    models_dir: Path,
    photos: Path,
    query: str,
    model: str | None = None,
    env: dict[str, str] | None = None,
    k: int = 5,
) -> FrozenRun:
    """A fresh library in ``library``: add ``photos``, index, search ``query`` (JSON)."""
    common = ["--library", str(library), "--models-dir", str(models_dir)]
    if model:
        common += ["--model", model]
    version = run_cli(binary, "--version", env=env).stdout.strip()
    run_cli(binary, "folders", "add", str(photos), *common, env=env)
    started = time.perf_counter()
    indexed = run_cli(binary, "index", *common, env=env)
    index_s = time.perf_counter() - started
    started = time.perf_counter()
    found = run_cli(binary, "search", query, "--json", "-k", str(k), *common, env=env)
    search_s = time.perf_counter() - started
    return FrozenRun(
        version, index_s, search_s, json.loads(found.stdout), indexed.stdout + indexed.stderr
    )
