"""Built-in text-in-photo extractor: RapidOCR (PP-OCR det/rec ONNX models) on ONNX Runtime."""
