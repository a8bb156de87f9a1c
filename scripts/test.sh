#!/usr/bin/env bash
# Set up (with test tools) and run the whole default test suite; CI runs exactly this.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || exit $?
export QT_QPA_PLATFORM=offscreen
# Style and structure first, each failing the run: the lint rules and the import contracts
# (layers, no Qt/torch in the core, plugins through the public API) in pyproject.toml hold for
# the whole tree. tests/test_architecture.py checks the contracts too, for a bare pytest run.
.venv/bin/ruff check . || exit $?
.venv/bin/ruff format --check . || exit $?
.venv/bin/lint-imports || exit $?
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$status"
