"""photosearch's trainer plugin: MoTIS-style two-stage compression of a dual encoder.

Stage 1 distils each tower of a teacher into a smaller student on unpaired images and texts
(intra-modal contrastive distillation); stage 2 fine-tunes the teacher on paired captions, then
the student with InfoNCE + knowledge distillation + corpus hard negatives, one tower at a time.
The result is exported as an ordinary ONNX model bundle the app loads.

Importing this package (or ``commands``/``config``) never imports torch; the CLI handlers and
``api.run_recipe`` do, when they run.
"""

import photosearch  # noqa: F401 - first: it turns off ONNX Runtime's telemetry
