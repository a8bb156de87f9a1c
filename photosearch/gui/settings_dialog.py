"""Settings: the model in use, the model that re-ranks the top results, execution provider,
excluded patterns, thumbnail cache size, results per search, reading the text in photos.

Everything applies without a restart: a new model is loaded (built first if a plugin offers it)
and the library re-indexed in the background; the old model's vectors stay for switching back.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from photosearch.models.providers import ModelRegistry
from photosearch.models.runtime import AUTO_PROVIDER, local_providers
from photosearch.search.rerank import DEFAULT_DEPTH, OFF


@dataclass(frozen=True)
class AppSettings:
    model: str
    ignore_patterns: tuple[str, ...]
    thumbnail_cache_mb: int
    max_results: int
    provider: str = AUTO_PROVIDER
    read_text: bool = True  # photosearch.indexing.text_reading: OCR after encoding, when installed
    rerank_model: str = OFF  # photosearch.search.rerank: OFF or an installed bundle's name
    rerank_depth: int = DEFAULT_DEPTH


def model_choices(registry: ModelRegistry) -> list[tuple[str, str]]:
    """(name, label) for every installed bundle and every offer a plugin can build."""
    choices: dict[str, str] = {}
    for model in registry.installed():
        choices[model.name] = f"{model.name} — installed"
    for offer in registry.offers():
        if offer.name in choices:
            continue
        how = "download on first use" if offer.needs_network else "built on first use"
        choices[offer.name] = f"{offer.name} — {how}"
    for offer in registry.offers():  # named by what it is, not only by its id
        if offer.default and not offer.needs_network:
            choices[offer.name] = f"Built-in (offline): {choices[offer.name]}"
    return sorted(choices.items())


def rerank_choices(registry: ModelRegistry, current: str) -> list[tuple[str, str]]:
    """(name, label): off, then every installed bundle (a bigger model re-scores the top
    results of the model in use; LightningDOT's retrieve-then-re-rank)."""
    choices = [(OFF, "Off")]
    choices += [(model.name, model.name) for model in registry.installed()]
    if current not in {name for name, _ in choices}:
        choices.append((current, f"{current} (not installed)"))
    return choices


def provider_choices() -> list[tuple[str, str]]:
    """(name, label) for "auto" and every execution provider that runs on this machine."""
    choices = [(AUTO_PROVIDER, "Automatic (the fastest this computer has)")]
    for name in local_providers():
        short = name.removesuffix("ExecutionProvider")
        where = (
            "This computer's processor"
            if short == "CPU"
            else "This computer's graphics card"
            if short in GRAPHICS
            else "This computer"
        )
        choices.append((name, f"{where} ({short})"))
    return choices


GRAPHICS = {"CUDA", "TensorRT", "ROCm", "MIGraphX", "DML", "CoreML", "OpenVINO", "WebGPU"}


class SettingsDialog(QDialog):
    def __init__(
        self, current: AppSettings, registry: ModelRegistry, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent, windowTitle="Settings")
        self.current = current
        self.registry = registry
        form = QFormLayout()
        self._add_model_rows(form, current)
        self._add_provider_row(form, current)
        self._add_library_rows(form, current)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def _add_model_rows(self, form: QFormLayout, current: AppSettings) -> None:
        """The model in use (and the model manager), and the model that re-ranks, each with
        a line saying what changing it does."""
        self.model = QComboBox(self)
        self._fill_models(current.model)
        self.manage_models = QPushButton("Manage models…", self)
        self.manage_models.clicked.connect(lambda: self.open_model_manager())
        model_row = QHBoxLayout()
        model_row.addWidget(self.model, 1)
        model_row.addWidget(self.manage_models)
        self.rerank = QComboBox(self)
        for name, label in rerank_choices(self.registry, current.rerank_model):
            self.rerank.addItem(label, name)
        self.rerank.setCurrentIndex(self.rerank.findData(current.rerank_model))
        self.rerank_depth = QSpinBox(
            self, minimum=5, maximum=500, singleStep=10, value=current.rerank_depth, prefix="top "
        )
        rerank_row = QHBoxLayout()
        rerank_row.addWidget(self.rerank, 1)
        rerank_row.addWidget(self.rerank_depth)
        form.addRow("Model:", model_row)
        form.addRow(
            "",
            QLabel(
                "Switching re-encodes your photos in the background; "
                "searches use the current model until the new one has them "
                "all, then switch over.",
                self,
                wordWrap=True,
            ),
        )
        form.addRow("Re-rank results with:", rerank_row)
        form.addRow(
            "",
            QLabel(
                "A bigger model re-scores the best results of the model in use "
                "(more accurate, a few milliseconds per search); its view of "
                "your photos is computed while the app is idle.",
                self,
                wordWrap=True,
            ),
        )

    def _add_provider_row(self, form: QFormLayout, current: AppSettings) -> None:
        """Where the models run; a saved provider this machine lacks stays listed."""
        self.provider = QComboBox(self)
        for name, label in provider_choices():
            self.provider.addItem(label, name)
        if self.provider.findData(current.provider) < 0:
            self.provider.addItem(f"{current.provider} (not available here)", current.provider)
        self.provider.setCurrentIndex(self.provider.findData(current.provider))
        form.addRow("Run models on:", self.provider)

    def _add_library_rows(self, form: QFormLayout, current: AppSettings) -> None:
        """What is skipped, cached, shown and read: ignore patterns, thumbnail cache, results
        per search, text in photos."""
        self.patterns = QPlainTextEdit("\n".join(current.ignore_patterns), self)
        self.patterns.setPlaceholderText(
            "One pattern per line (a file or folder name, or a full path), e.g.\n*.tmp\nScreenshots"
        )
        self.patterns.setMaximumHeight(120)
        self.cache_mb = QSpinBox(
            self,
            minimum=50,
            maximum=100_000,
            singleStep=100,
            suffix=" MB",
            value=current.thumbnail_cache_mb,
        )
        self.max_results = QSpinBox(
            self, minimum=20, maximum=100_000, singleStep=100, value=current.max_results
        )
        self.read_text = QCheckBox(
            "Read the text in photos (signs, receipts, screenshots)",
            self,
            checked=current.read_text,
        )
        self.read_text.setToolTip(
            "After encoding, in the background: a search then finds a "
            "photo by the words on it. Needs the OCR plugin."
        )
        form.addRow("Skip files matching:", self.patterns)
        form.addRow("Thumbnail cache:", self.cache_mb)
        form.addRow("Results per search:", self.max_results)
        form.addRow("Text in photos:", self.read_text)

    def _fill_models(self, selected: str) -> None:
        self.model.clear()
        for name, label in model_choices(self.registry):
            self.model.addItem(label, name)
        if self.model.findData(selected) < 0:
            self.model.addItem(selected, selected)
        self.model.setCurrentIndex(self.model.findData(selected))

    def open_model_manager(self, endpoint: str | None = None):  # noqa: ANN201
        """Download, remove or pick models; the pick applies when Settings is accepted."""
        from photosearch.gui.model_manager import ModelManagerDialog

        dialog = ModelManagerDialog(self.registry, self.current.model, endpoint, self)
        dialog.finished.connect(
            lambda _: self._fill_models(dialog.chosen or str(self.model.currentData()))
        )
        dialog.open()
        return dialog

    def chosen(self) -> AppSettings:
        patterns = tuple(
            line.strip() for line in self.patterns.toPlainText().splitlines() if line.strip()
        )
        return AppSettings(
            model=str(self.model.currentData()),
            ignore_patterns=patterns,
            thumbnail_cache_mb=self.cache_mb.value(),
            max_results=self.max_results.value(),
            provider=str(self.provider.currentData()),
            read_text=self.read_text.isChecked(),
            rerank_model=str(self.rerank.currentData()),
            rerank_depth=self.rerank_depth.value(),
        )
