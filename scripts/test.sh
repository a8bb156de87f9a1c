#!/usr/bin/env bash
# Set up (with test tools) and run the whole default test suite; CI runs exactly this.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --dev || exit $?
export QT_QPA_PLATFORM=offscreen
.venv/bin/python -m pytest "$@"
status=$?
if [ "$status" -eq 5 ]; then
    echo "pytest collected no tests" >&2
    exit 1
fi
exit "$status"
