"""The model-provider plugin contract and the registry that discovers providers.

A provider is any object with ``offers()`` and ``build()``, exposed through the entry-point group
``photosearch.models`` (the value may be a class or a zero-argument factory). The built-in offline
model registers exactly the same way in pyproject.toml. A provider that fails to load is logged
and skipped: one broken plugin never takes the app down.

Providers must keep heavy imports (torch, network code) inside ``build`` so that listing models
stays cheap and torch-free.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from photosearch.errors import BundleError, ModelBuildError, ModelNotFound, PhotosearchError
from photosearch.models.bundle import CONFIG_FILE, read_bundle_config, verify_bundle
from photosearch.models.installing import install_staged

ENTRY_POINT_GROUP = "photosearch.models"
log = logging.getLogger(__name__)

ProgressCallback = Callable[[str], None]


@dataclass(frozen=True)
class ModelOffer:
    """A bundle a provider can produce (build locally or download), before it is installed."""

    name: str
    description: str
    provider: str
    default: bool = False  # the library's default model when the user chose none
    needs_network: bool = False  # True when build() downloads; the app only does it on request


@runtime_checkable
class ModelProvider(Protocol):
    """What a model plugin implements."""

    def offers(self) -> list[ModelOffer]:
        """The bundles this provider can produce; cheap, no heavy imports."""
        ...

    def build(self, name: str, target_dir: Path, progress: ProgressCallback | None = None) -> None:
        """Write a complete bundle named ``name`` into the empty directory ``target_dir``;
        raise ModelBuildError (photosearch.errors) with a readable reason when it cannot."""
        ...


@dataclass(frozen=True)
class InstalledModel:
    """A bundle present in the models directory."""

    name: str
    path: Path
    description: str


def load_providers() -> dict[str, ModelProvider]:
    """Instantiate every provider registered under the entry-point group, skipping broken ones."""
    from importlib.metadata import entry_points  # 10 ms: only when a provider is asked for

    providers: dict[str, ModelProvider] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        try:
            provider = entry.load()()
        except Exception as exc:  # a plugin's failure must not stop the app
            log.warning("model plugin %r failed to load and is skipped: %s", entry.name, exc)
            continue
        if not isinstance(provider, ModelProvider):
            log.warning("model plugin %r does not implement offers()/build(); skipped", entry.name)
            continue
        providers[entry.name] = provider
    return providers


class ModelRegistry:
    """Installed bundles in one models directory, plus what the providers offer to build."""

    def __init__(self, models_dir: Path, providers: dict[str, ModelProvider] | None = None) -> None:
        self.models_dir = models_dir
        self._providers = providers

    @property
    def providers(self) -> dict[str, ModelProvider]:
        if self._providers is None:
            self._providers = load_providers()
        return self._providers

    def installed(self) -> list[InstalledModel]:
        """Bundles found in the models directory (unreadable ones are logged and left out)."""
        found: list[InstalledModel] = []
        if not self.models_dir.is_dir():
            return found
        for child in sorted(self.models_dir.iterdir()):
            if child.name.startswith(".") or not (child / CONFIG_FILE).is_file():
                continue
            try:
                config = read_bundle_config(child)
            except BundleError as exc:
                log.warning("ignoring unusable model bundle: %s", exc)
                continue
            found.append(InstalledModel(config.name, child, config.description))
        return found

    def offers(self) -> list[ModelOffer]:
        offers: list[ModelOffer] = []
        for provider_name, provider in self.providers.items():
            try:
                offers.extend(provider.offers())
            except Exception as exc:
                log.warning("model plugin %r failed to list its models: %s", provider_name, exc)
        return offers

    def default_model_name(self) -> str:
        """The offer marked default by a provider; raises ModelNotFound when none is."""
        for offer in self.offers():
            if offer.default:
                return offer.name
        installed = self.installed()
        if installed:
            return installed[0].name
        raise ModelNotFound("no model plugin offers a default model and none is installed")

    def path_of(self, name: str) -> Path | None:
        """The installed bundle directory for ``name``, or None."""
        for model in self.installed():
            if model.name == name:
                return model.path
        return None

    def ensure(
        self, name: str, progress: ProgressCallback | None = None, allow_network: bool = False
    ) -> Path:
        """Return the bundle directory for ``name``, building it first when a provider offers it.

        The build goes to a temporary directory beside the final one and is renamed into place
        only once complete and verified, so an interrupted build never leaves a half bundle.
        Bundles whose provider needs the network are only built when ``allow_network`` is True.
        """
        existing = self.path_of(name)
        if existing is not None:
            return existing
        for provider_name, provider in self.providers.items():
            offer = next((o for o in provider.offers() if o.name == name), None)
            if offer is None:
                continue
            if offer.needs_network and not allow_network:
                raise ModelNotFound(
                    f"model {name!r} must be downloaded first: run `photosearch models pull {name}`"
                )
            if progress:
                progress(f"building model {name} with plugin {provider_name!r} (one time)")
            return self._build(provider_name, provider, name, progress)
        raise ModelNotFound(f"no installed model or model plugin provides {name!r}")

    def _build(
        self,
        provider_name: str,
        provider: ModelProvider,
        name: str,
        progress: ProgressCallback | None,
    ) -> Path:
        self.models_dir.mkdir(parents=True, exist_ok=True)
        target = self.models_dir / _safe_dir_name(name)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=self.models_dir))
        try:
            _build_with(provider_name, provider, name, staging, progress)
            config = read_bundle_config(staging)
            verify_bundle(staging, config)
            if config.name != name:
                raise BundleError(
                    f"plugin {provider_name!r} built a bundle named {config.name!r}, not {name!r}"
                )
            # a rebuild swaps the old bundle out only once the new one is good
            install_staged(staging, target, replace=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return target

    def rebuild(
        self, name: str, progress: ProgressCallback | None = None, allow_network: bool = False
    ) -> Path:
        """Build ``name`` again even if installed (e.g. after its plugin was upgraded)."""
        for provider_name, provider in self.providers.items():
            offer = next((o for o in provider.offers() if o.name == name), None)
            if offer is None:
                continue
            if offer.needs_network and not allow_network:
                raise ModelNotFound(f"model {name!r} needs a download; allow the network")
            return self._build(provider_name, provider, name, progress)
        raise ModelNotFound(f"no model plugin provides {name!r}")


def _build_with(
    provider_name: str,
    provider: ModelProvider,
    name: str,
    staging: Path,
    progress: ProgressCallback | None,
) -> None:
    """Run a plugin's build; a third-party plugin's own exception becomes ModelBuildError, so
    callers catch one type (the original stays chained for the log)."""
    try:
        provider.build(name, staging, progress)
    except PhotosearchError:
        raise
    except Exception as exc:
        raise ModelBuildError(
            f"model plugin {provider_name!r} could not build {name!r}: {exc}"
        ) from exc


def _safe_dir_name(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.@" else "_" for ch in name)
