"""The ConSE default model plugin: real EfficientNet-Lite0 / MiniLM weights, real ONNX export."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photosearch.errors import ModelBuildError
from tests.support.plugin_paths import subprocess_env

FLICKR = Path(os.environ.get("PHOTOSEARCH_FLICKR8K", "/work/shared/data/flickr8k-1k"))
DOG_PHOTO = FLICKR / "images" / "1001773457_577c3a7d70.jpg"  # two dogs playing on a road


def _env() -> dict[str, str]:
    return subprocess_env()


def test_offers_do_not_import_torch():
    code = (
        "import sys\n"
        "from photosearch_conse.provider import ConseProvider\n"
        "offers = ConseProvider().offers()\n"
        "assert len(offers) == 1, offers\n"
        "o = offers[0]\n"
        "assert (o.name, o.provider, o.default, o.needs_network) == "
        "('conse-lite0-minilm', 'conse', True, False), o\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_class_data_file():
    from photosearch_conse.classes import load_classes

    classes = load_classes()
    assert len(classes) == 1000
    assert classes[0].synset == "n01440764" and classes[0].lemmas[0] == "tench"
    assert classes[207].lemmas[0] == "golden retriever"
    assert all(c.lemmas and c.definition for c in classes)


def test_provider_name_matches_builder():
    from photosearch_conse import provider

    conse = pytest.importorskip("photosearch_conse.conse")
    assert provider.MODEL_NAME == conse.MODEL_NAME
    with pytest.raises(ModelBuildError, match="cannot build 'something-else'"):
        provider.ConseProvider().build("something-else", Path("/nonexistent"))


# ---------------------------------------------------------------------------------------------
# Torch-backed tests


@pytest.fixture(scope="session")
def torch():
    return pytest.importorskip("torch")


@pytest.fixture(scope="session")
def minilm(torch):
    from photosearch_conse.minilm import load_minilm, load_tokenizer

    return load_minilm(), load_tokenizer()


@pytest.fixture(scope="session")
def bundle(torch, default_models_dir):
    """The bundle built once per session through the registry (tests/conftest.py), as a user's
    `photosearch models build` would build it."""
    return default_models_dir / "conse-lite0-minilm"


def _ort_session(path: Path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _generated_images(n: int = 3) -> np.ndarray:
    """Deterministic smooth + noisy test images, already normalised like EfficientNet's input."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:224, 0:224] / 223.0
    images = []
    for i in range(n):
        base = np.stack([np.sin(6 * xx + i), np.cos(5 * yy - i), xx * yy * 2 - 1])
        images.append(0.7 * base + 0.3 * rng.standard_normal((3, 224, 224)))
    return np.clip(np.stack(images), -1, 1).astype(np.float32)


def test_minilm_sentence_embeddings(minilm):
    from photosearch_conse.minilm import embed_texts

    model, tokenizer = minilm
    vecs = embed_texts(
        model,
        tokenizer,
        [
            "A dog runs along the beach.",
            "A puppy is running on the sand by the sea.",
            "The quarterly tax report is due on Monday.",
        ],
    ).numpy()
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2] + 0.3


def test_minilm_padding_invariant(torch, minilm):
    from photosearch_conse.minilm import tokenize

    model, tokenizer = minilm
    short, long = "a red car", "two children play football in a park near a lake at sunset"
    ids, mask = tokenize(tokenizer, [short, long])
    alone_ids, alone_mask = tokenize(tokenizer, [short])
    with torch.no_grad():
        batched = model(ids, mask)[0]
        alone = model(alone_ids, alone_mask)[0]
    assert ids.shape[1] > alone_ids.shape[1]
    assert torch.allclose(batched, alone, atol=1e-5)


@pytest.mark.filterwarnings("ignore:.*legacy TorchScript-based ONNX export")
@pytest.mark.filterwarnings("ignore:.*Only steps=1 can be constant folded")
@pytest.mark.filterwarnings("ignore:The feature will be removed:DeprecationWarning")
def test_efficientnet_onnx_parity(torch, tmp_path):
    from photosearch_conse.efficientnet import load_efficientnet_lite0

    net = load_efficientnet_lite0()
    path = tmp_path / "lite0.onnx"
    with torch.no_grad():
        torch.onnx.export(
            net,
            (torch.zeros(1, 3, 224, 224),),
            str(path),
            dynamo=False,
            opset_version=17,
            input_names=["image"],
            output_names=["logits"],
            dynamic_axes={"image": {0: "n"}, "logits": {0: "n"}},
        )
    images = _generated_images(3)
    with torch.no_grad():
        expected = net(torch.from_numpy(images)).numpy()
    got = _ort_session(path).run(["logits"], {"image": images})[0]
    assert np.abs(got - expected).max() < 1e-3


def test_efficientnet_recognises_a_dog(torch):
    if not DOG_PHOTO.is_file():
        pytest.skip(f"{DOG_PHOTO} not available")
    from photosearch_conse.classes import load_classes
    from photosearch_conse.efficientnet import INPUT_MEAN, INPUT_STD, load_efficientnet_lite0

    from photosearch.files.imaging import decode_for_model
    from photosearch.models.bundle import Preprocessing

    pre = Preprocessing(224, (INPUT_MEAN,) * 3, (INPUT_STD,) * 3, "bicubic", "shortest")
    pixels = decode_for_model(DOG_PHOTO, pre).pixels
    with torch.no_grad():
        top = load_efficientnet_lite0()(torch.from_numpy(pixels)[None])[0].topk(3).indices
    # ImageNet-1k classes 151..268 are dog breeds.
    assert all(151 <= int(i) <= 268 for i in top), [load_classes()[int(i)].lemmas for i in top]


def test_bundle_config_and_hashes(bundle):
    from photosearch_conse.conse import ConseSettings

    from photosearch.models.bundle import read_bundle_config, verify_bundle

    config = read_bundle_config(bundle)
    verify_bundle(bundle, config)
    assert config.name == "conse-lite0-minilm"
    assert config.embed_dim == 384 and config.context_length == 128
    assert config.pad_token == "[PAD]"
    assert config.provenance["settings"] == json.loads(json.dumps(ConseSettings().describe()))
    pre = config.preprocessing
    assert (pre.size, pre.interpolation, pre.resize_mode) == (224, "bicubic", "shortest")
    pixels = np.array([0.0, 1.0, 127.0, 128.0, 255.0])
    runtime = (pixels / 255.0 - np.array(pre.mean)[:, None]) / np.array(pre.std)[:, None]
    assert np.allclose(runtime, (pixels - 127.0) / 128.0, atol=1e-6)


def test_bundle_textual_parity(torch, minilm, bundle, tmp_path):
    """The float32 export matches MiniLM in torch and is the file the identity names; the
    bundle's int8 copy of it agrees to cosine 0.98, a query encoded alone as the app does."""
    from photosearch_conse.minilm import tokenize
    from photosearch_conse.onnx_export import export_text_tower

    from photosearch.models.bundle import TEXTUAL_MODEL, read_bundle_config, sha256_file

    model, tokenizer = minilm
    texts = ["a dog", "children playing in the snow next to a small wooden house", "x"]
    ids, mask = tokenize(tokenizer, texts)
    with torch.no_grad():
        expected = model(ids, mask).numpy()
    example = torch.tensor([[101, 1037, 3899, 102, 0, 0], [101, 1037, 4937, 2003, 2652, 102]])
    float32 = tmp_path / "model.onnx"
    export_text_tower(model, example, (example != 0).to(torch.int64), float32)
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    got = _ort_session(float32).run(["embedding"], feeds)[0]
    assert got.shape == (3, 384)
    assert np.abs(got - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    config = read_bundle_config(bundle)
    assert config.identity_hashes == {TEXTUAL_MODEL: sha256_file(float32)}
    assert config.file_hashes[TEXTUAL_MODEL] != sha256_file(float32)

    int8 = _ort_session(bundle / TEXTUAL_MODEL)
    for row, text in enumerate(texts):
        alone = tokenize(tokenizer, [text])
        vector = int8.run(
            ["embedding"], {"input_ids": alone[0].numpy(), "attention_mask": alone[1].numpy()}
        )[0][0]
        assert float(vector @ expected[row]) / np.linalg.norm(vector) >= 0.98, text


def test_class_matrix_logic():
    from photosearch_conse.classes import load_classes
    from photosearch_conse.conse import ConseSettings, class_matrix, texts_needed

    settings = ConseSettings()
    texts = texts_needed(settings, load_classes())
    assert "a photo of a golden retriever." in texts
    assert any(t.startswith("golden retriever: ") for t in texts)
    rng = np.random.default_rng(1)
    vectors = {t: rng.standard_normal(384).astype(np.float32) for t in texts}
    matrix = class_matrix(settings, vectors)
    assert matrix.shape == (1000, 384) and matrix.dtype == np.float32
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(matrix, class_matrix(settings, vectors))  # deterministic


def _bundle_class_matrix(bundle: Path) -> np.ndarray:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(bundle / "visual" / "model.onnx"))
    found = [i for i in model.graph.initializer if i.name == "class_embeddings"]
    assert len(found) == 1
    return numpy_helper.to_array(found[0])


def test_bundle_visual_parity(torch, bundle):
    from photosearch_conse.conse import ConseSettings, image_vectors_np, make_visual_module

    settings = ConseSettings()
    matrix = _bundle_class_matrix(bundle)
    assert matrix.shape == (1000, 384)
    assert np.allclose(np.linalg.norm(matrix, axis=1), 1.0, atol=1e-5)
    module = make_visual_module(matrix, settings)
    images = _generated_images(3)
    with torch.no_grad():
        expected = module(torch.from_numpy(images)).numpy()
        logits = module.logits(torch.from_numpy(images)).numpy()
    got = _ort_session(bundle / "visual" / "model.onnx").run(["embedding"], {"image": images})[0]
    assert got.shape == (3, 384)
    assert np.abs(got - expected).max() < 1e-4
    assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # The numpy twin used by the tuning script computes the same head.
    twin = image_vectors_np(logits, matrix, settings.top_k, settings.temperature)
    assert np.abs(twin - expected).max() < 1e-4


def test_bundle_class_matrix_matches_minilm(minilm, bundle):
    """The baked class matrix agrees with one recomputed from MiniLM (40 classes checked)."""
    from photosearch_conse.classes import load_classes
    from photosearch_conse.conse import (
        ConseSettings,
        class_matrix,
        definition_text,
        embed_texts_dict,
        name_texts,
    )

    settings = ConseSettings(centering=0.0)  # centring couples all rows; checked below instead
    classes = load_classes()[::25]
    texts = sorted(
        {t for c in classes for t in name_texts(c, settings)}
        | {definition_text(c, settings) for c in classes}
    )
    model, tokenizer = minilm
    uncentred = class_matrix(settings, embed_texts_dict(texts, model, tokenizer), classes)
    baked = _bundle_class_matrix(bundle)[::25].astype(np.float64)
    # Centring subtracts one shared vector v from every row, then renormalises, so each
    # uncentred row must equal s_i * baked_i + v with s_i > 0: solve for (s, v) by least squares.
    n, d = baked.shape
    system = np.zeros((n * d, n + d))
    for i in range(n):
        system[i * d : (i + 1) * d, i] = baked[i]
        system[i * d : (i + 1) * d, n:] = np.eye(d)
    solution, *_ = np.linalg.lstsq(system, uncentred.astype(np.float64).ravel(), rcond=None)
    residual = system @ solution - uncentred.ravel()
    assert np.abs(residual).max() < 1e-4
    assert (solution[:n] > 0).all()
    assert np.linalg.norm(solution[n:]) > 0.05  # centring did happen


def test_bundle_end_to_end_retrieval(bundle):
    """The app's own runtime (photosearch.models.runtime.Encoder) finds the dogs."""
    if not DOG_PHOTO.is_file():
        pytest.skip(f"{DOG_PHOTO} not available")
    from photosearch.files.imaging import decode_for_model
    from photosearch.models.runtime import Encoder

    encoder = Encoder(bundle, threads=2)
    pixels = decode_for_model(DOG_PHOTO, encoder.config.preprocessing).pixels[None]
    image = encoder.encode_images(pixels)[0]
    queries = ["two dogs playing", "a red sports car", "a plate of food", "a mountain lake"]
    texts = encoder.encode_texts(queries)
    assert texts.shape == (4, 384)
    scores = texts @ image
    assert int(np.argmax(scores)) == 0, dict(zip(queries, scores.tolist(), strict=True))
