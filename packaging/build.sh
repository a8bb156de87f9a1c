#!/usr/bin/env bash
# Build the self-contained one-folder app into dist/photosearch/ (run from anywhere).
#   packaging/build.sh            -> dist/photosearch/photosearch
# Needs the project installed in .venv with the gui extra; installs PyInstaller if missing.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
# not the checkout root: a stale photosearch.egg-info there would shadow the installed
# dist-info that copy_metadata() must bundle (the entry points come from it)
cd "$ROOT/packaging"
if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
    "$PY" -m pip install --quiet "pyinstaller>=6.10"  # the packaging extra
fi
started=$(date +%s)
"$PY" -m PyInstaller --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" "$ROOT/packaging/photosearch.spec"
echo "built $ROOT/dist/photosearch in $(( $(date +%s) - started )) s," \
     "$(du -sh "$ROOT/dist/photosearch" | cut -f1)"
