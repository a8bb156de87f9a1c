"""Model plugin API: bundle format, provider registry, ONNX encoder runtime."""
