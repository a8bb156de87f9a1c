"""photosearch's built-in offline default model: a ConSE dual encoder (Norouzi et al., 2014).

An ImageNet classifier (EfficientNet-Lite0) and a sentence encoder (all-MiniLM-L6-v2) are joined
without training: a photo's vector is the probability-weighted mix of the sentence embeddings of
its most likely ImageNet classes, so photos and free text land in the sentence encoder's space.

Only ``provider`` is imported by the app; it keeps torch out until a bundle is built.
"""

import photosearch  # noqa: F401 - first: it turns off ONNX Runtime's telemetry
