#!/usr/bin/env bash
# Set up (with test tools) and run the whole default test suite; CI runs exactly this.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || exit $?
export QT_QPA_PLATFORM=offscreen
# Style first: the lint rules in pyproject.toml hold for the whole tree (import contracts are
# checked by tests/test_architecture.py).
.venv/bin/ruff check . || exit $?
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$status"
