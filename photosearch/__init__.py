"""photosearch: find your own photos by typing what is in them, offline."""

import os

__version__ = "0.1.0"

# Recent official ONNX Runtime wheels (1.32 here) queue usage telemetry for Microsoft's collector
# and keep a device id under ~/.cache/Microsoft unless this is set before onnxruntime is first
# loaded. photosearch makes no network request the user did not ask for, so every process that
# imports photosearch (the app, the CLI, the plugins, their worker processes) turns it off here,
# before any of its modules can import onnxruntime. tests/test_no_telemetry.py holds it.
os.environ["ORT_DISABLE_TELEMETRY"] = "1"
