"""Built-in text-in-photo extractor: RapidOCR (PP-OCR det/rec ONNX models) on ONNX Runtime."""

import photosearch  # noqa: F401 - first: it turns off ONNX Runtime's telemetry
