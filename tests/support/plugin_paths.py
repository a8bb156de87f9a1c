"""Where the built-in plugins live, for tests that run them from a plain checkout (an editable
install finds them anyway) and for the subprocesses those tests start."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PLUGINS = ROOT / "plugins"


def add_plugins_to_path() -> None:
    if str(PLUGINS) not in sys.path:
        sys.path.insert(0, str(PLUGINS))


def subprocess_env(**extra: str) -> dict[str, str]:
    """This process's environment with the checkout and its plugins importable."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(PLUGINS), env.get("PYTHONPATH", "")])
    env.update(extra)
    return env
