"""Optional converter: an OpenCLIP checkpoint -> a photosearch/Immich bundle (ONNX + tokenizer).

Needs the `convert` extra (open_clip_torch, torch, torchvision). Registered under the
entry-point group ``photosearch.converters``; only `photosearch models import CHECKPOINT`
loads it, so the everyday app never imports torch.
"""

import photosearch  # noqa: F401 - first: it turns off ONNX Runtime's telemetry
