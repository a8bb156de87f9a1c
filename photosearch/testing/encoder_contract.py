"""The encoder-plugin contract: what any model bundle must do for photosearch to use it.

A model plugin (built-in or third-party) registers a provider under the ``photosearch.models``
entry-point group; the bundles it builds are run by ``photosearch.models.runtime.Encoder``.
These checks run a plugin's real provider and real bundles through the app's own code paths
and raise ``ContractViolation`` (an AssertionError, so pytest shows it as a failure) with one
sentence saying what is wrong. Use them from your plugin's tests::

    from photosearch.testing.encoder_contract import check_offers_are_cheap, check_provider

    def test_my_plugin_keeps_the_contract(tmp_path):
        check_offers_are_cheap("myplugin")        # listing offers imports no torch
        check_provider("myplugin", tmp_path)      # builds every offer, checks each bundle

or ``check_bundle(path)`` for a bundle you already have. What is checked, and why:

- the provider loads through the entry-point group and lists unique offers cheaply;
- the bundle's config (and manifest.json, when present) validates and its recorded file
  hashes match, so the app can refuse a damaged copy;
- both towers return ``[N, embed_dim]``, finite and not zero before normalisation (a zero row
  has no direction), unit length after, and not the same vector for different inputs;
- batches of 1 and of several photos give the same vectors (graphs with a fixed batch are run
  in slices, a last slice topped up): an index must not depend on how photos were grouped;
- the bundle identity (which vectors belong to which model) is the same for two encoders and
  for a copy of the bundle elsewhere, and two encoders give the same vectors.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from importlib.metadata import entry_points
from pathlib import Path

import numpy as np
from PIL import Image

from photosearch.files.imaging import to_model_input
from photosearch.models.bundle import read_bundle_config, verify_bundle
from photosearch.models.providers import (
    ENTRY_POINT_GROUP,
    ModelOffer,
    ModelProvider,
    ModelRegistry,
)
from photosearch.models.runtime import Encoder

# Flat colours and two simple patterns: inputs any image tower tells apart.
SAMPLE_COLOURS = ((230, 20, 20), (20, 200, 20), (20, 20, 230), (250, 250, 250), (240, 230, 20))
SAMPLE_TEXTS = ("a photo of a dog", "red", "a blue sky over the sea", "two people at a table")
# cosine below which two vectors of the same input count as different
SAME_VECTOR_COSINE = 0.9999
UNIT_TOLERANCE = 1e-3


class ContractViolation(AssertionError):
    """A provider or bundle breaks the encoder-plugin contract."""


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ContractViolation(message)


def load_provider(entry_name: str) -> ModelProvider:
    """The provider registered as ``entry_name`` under the ``photosearch.models`` group."""
    found = [e for e in entry_points(group=ENTRY_POINT_GROUP) if e.name == entry_name]
    _require(
        len(found) == 1,
        f"{len(found)} entry points named {entry_name!r} in the "
        f"{ENTRY_POINT_GROUP!r} group (expected 1)",
    )
    provider = found[0].load()()
    _require(
        isinstance(provider, ModelProvider),
        f"entry point {entry_name!r} gives {type(provider).__name__}, which lacks offers()/build()",
    )
    return provider


def check_offers(provider: ModelProvider) -> list[ModelOffer]:
    """``offers()`` returns ModelOffers with unique, non-empty names; returns them."""
    offers = provider.offers()
    _require(all(isinstance(o, ModelOffer) for o in offers), "offers() must return ModelOffers")
    names = [o.name for o in offers]
    _require(all(names), "an offer has an empty name")
    _require(len(set(names)) == len(names), f"offer names repeat: {names}")
    return offers


def check_offers_are_cheap(
    entry_name: str,
    heavy: Sequence[str] = ("torch",),
    env: Mapping[str, str] | None = None,
    timeout_s: float = 120,
) -> None:
    """Loading the provider and listing its offers, in a fresh interpreter, imports none of
    ``heavy``: the app lists models at start-up and must stay light. ``env``: the
    interpreter's environment (default: this one's), e.g. a PYTHONPATH that finds the plugin."""
    code = (
        "import sys\n"
        "from photosearch.testing.encoder_contract import check_offers, load_provider\n"
        f"check_offers(load_provider({entry_name!r}))\n"
        f"print(sorted(m for m in {list(heavy)!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=None if env is None else dict(env),
        timeout=timeout_s,
    )
    _require(result.returncode == 0, f"listing {entry_name!r}'s offers failed: {result.stderr}")
    _require(
        result.stdout.strip() == "[]",
        f"listing {entry_name!r}'s offers imported {result.stdout.strip()}",
    )


def check_provider(
    entry_name: str, models_dir: Path, names: Sequence[str] | None = None
) -> list[Path]:
    """Load ``entry_name`` through the entry-point group, build each offer (or ``names``) into
    ``models_dir`` the way the app does (staged, verified, moved into place; an installed one
    is reused), and check every bundle. Offers that need the network are skipped unless named.
    """
    provider = load_provider(entry_name)
    offers = check_offers(provider)
    wanted = list(names) if names is not None else [o.name for o in offers if not o.needs_network]
    registry = ModelRegistry(models_dir, providers={entry_name: provider})
    bundles = []
    for name in wanted:
        bundle = registry.ensure(name, allow_network=True)
        _require(
            read_bundle_config(bundle).name == name,
            f"the bundle built for {name!r} names itself otherwise",
        )
        check_bundle(bundle)
        bundles.append(bundle)
    return bundles


def check_bundle(
    bundle_dir: Path, *, language: str | None = "eng_Latn", batch_sizes: Sequence[int] = (1, 3, 5)
) -> None:
    """Every check on one bundle directory (see the module docstring)."""
    config = read_bundle_config(bundle_dir)  # validates config.json and manifest.json
    verify_bundle(bundle_dir, config)
    _require(config.embed_dim > 0, f"embed_dim is {config.embed_dim}")
    pre = config.preprocessing
    _require(
        pre.size > 0 and len(pre.mean) == 3 and len(pre.std) == 3 and all(s > 0 for s in pre.std),
        f"unusable preprocessing {pre}",
    )
    encoder = Encoder(bundle_dir, threads=1, language=language)
    check_image_tower(encoder, batch_sizes)
    check_text_tower(encoder)
    check_identity(bundle_dir, encoder, language)


def sample_pixels(encoder: Encoder, count: int) -> np.ndarray:
    """``count`` distinct photos through the app's own preprocessing: [count, 3, S, S]."""
    size = max(encoder.config.preprocessing.size, 8)
    images = []
    for i in range(count):
        image = Image.new("RGB", (size + 16, size), SAMPLE_COLOURS[i % len(SAMPLE_COLOURS)])
        if i >= len(SAMPLE_COLOURS):  # a stripe keeps later samples distinct
            image.paste((0, 0, 0), (0, 0, size // 2, size // 4 * (1 + i % 3)))
        images.append(to_model_input(image, encoder.config.preprocessing))
    return np.stack(images)


def _check_vectors(vectors: np.ndarray, count: int, dim: int, tower: str) -> None:
    _require(
        vectors.shape == (count, dim),
        f"{tower} tower gave shape {vectors.shape}, expected ({count}, {dim})",
    )
    _require(bool(np.isfinite(vectors).all()), f"{tower} tower gave NaN or infinite values")
    norms = np.linalg.norm(vectors, axis=1)
    _require(
        bool(np.all(np.abs(norms - 1) < UNIT_TOLERANCE)),
        f"{tower} vectors are not unit length: norms {norms.round(4).tolist()}",
    )


def _check_not_constant(vectors: np.ndarray, tower: str) -> None:
    cosines = vectors @ vectors.T
    off_diagonal = cosines[~np.eye(len(vectors), dtype=bool)]
    _require(
        bool((off_diagonal < SAME_VECTOR_COSINE).any()),
        f"{tower} tower gives the same vector for different inputs",
    )


def check_image_tower(encoder: Encoder, batch_sizes: Sequence[int] = (1, 3, 5)) -> None:
    """Declared dim, unit vectors, raw rows non-zero, batch size does not change a vector."""
    dim = encoder.embed_dim
    pixels = sample_pixels(encoder, max(batch_sizes))
    together = encoder.encode_images(pixels)
    _check_vectors(together, len(pixels), dim, "image")
    _check_not_constant(together, "image")
    raw = _raw_visual(encoder, pixels[:1])
    _require(raw.shape[-1] == dim, f"image graph output has {raw.shape[-1]} values, not {dim}")
    _require(
        bool(np.isfinite(raw).all() and np.linalg.norm(raw) > 1e-6),
        "image graph returns a zero or non-finite vector (no direction to normalise)",
    )
    for batch in batch_sizes:
        parts = [
            encoder.encode_images(pixels[start : start + batch])
            for start in range(0, len(pixels), batch)
        ]
        grouped = np.concatenate(parts)
        cosines = np.sum(grouped * together, axis=1)
        _require(
            bool(np.all(cosines > SAME_VECTOR_COSINE)),
            f"image vectors depend on the batch: in batches of {batch} the cosines to "
            f"one batch of {len(pixels)} are {cosines.round(6).tolist()}",
        )


def _raw_visual(encoder: Encoder, one: np.ndarray) -> np.ndarray:
    """One photo through the image graph itself, before the runtime normalises."""
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(encoder.bundle_dir / "visual" / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    spec = session.get_inputs()[0]
    batch = spec.shape[0] if isinstance(spec.shape[0], int) else 1
    feed = np.repeat(one, batch, axis=0).astype(
        np.float16 if "float16" in spec.type else np.float32
    )
    return np.asarray(session.run(None, {spec.name: feed})[0], np.float32)[:1]


def check_text_tower(encoder: Encoder) -> None:
    """Declared dim, unit vectors, different texts differ, a text alone = in a list."""
    dim = encoder.embed_dim
    together = encoder.encode_texts(list(SAMPLE_TEXTS))
    _check_vectors(together, len(SAMPLE_TEXTS), dim, "text")
    _check_not_constant(together, "text")
    for i, text in enumerate(SAMPLE_TEXTS):
        alone = encoder.encode_texts([text])[0]
        _require(
            float(alone @ together[i]) > SAME_VECTOR_COSINE,
            f"the vector of {text!r} depends on the texts encoded with it",
        )


def check_identity(bundle_dir: Path, encoder: Encoder, language: str | None = None) -> None:
    """The identity depends on the bundle's content only, and encoding is deterministic."""
    again = Encoder(bundle_dir, threads=1, language=language)
    _require(
        again.identity == encoder.identity,
        f"identity changed between loads: {encoder.identity} vs {again.identity}",
    )
    pixels = sample_pixels(encoder, 2)
    _require(
        bool(np.array_equal(again.encode_images(pixels), encoder.encode_images(pixels))),
        "two encoders of one bundle give different image vectors",
    )
    with tempfile.TemporaryDirectory(prefix="photosearch-contract-") as tmp:
        copy = Path(tmp) / bundle_dir.name  # a bundle without a recorded name is its folder's
        shutil.copytree(bundle_dir, copy)
        moved = Encoder(copy, threads=1, language=language).identity
    _require(
        moved == encoder.identity,
        f"a copy of the bundle has another identity ({moved} vs {encoder.identity}): "
        "the identity must come from the model's name and files, not their place",
    )
