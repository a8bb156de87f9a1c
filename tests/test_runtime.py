"""The ONNX encoder runtime, and keeping torch out of everyday commands."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from photosearch.models.runtime import Encoder, available_providers
from tests.support.tiny_bundle import COLOUR_RGB, TINY_DIM, build_tiny_bundle, tiny_image_embedding

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def encoder(tmp_path_factory: pytest.TempPathFactory) -> Encoder:
    return Encoder(build_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny"), threads=1)


def test_encode_images_matches_the_reference_and_is_unit_length(encoder: Encoder):
    rgb = COLOUR_RGB["blue"]
    pixels = ((np.asarray(rgb, np.float32) / 255 - 0.5) / 0.5)[:, None, None]
    batch = np.broadcast_to(pixels, (3, 32, 32))[None].repeat(2, axis=0)
    vectors = encoder.encode_images(batch)
    assert vectors.shape == (2, TINY_DIM) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    expected = tiny_image_embedding(rgb)
    assert np.allclose(vectors[0], expected / np.linalg.norm(expected), atol=1e-5)


def test_release_memory_keeps_the_session_working(tmp_path: Path):
    fresh = Encoder(build_tiny_bundle(tmp_path / "tiny"), threads=1)
    fresh.release_memory()  # nothing loaded yet: a no-op, and it does not load the tower
    assert fresh._visual is None
    pixels = np.zeros((8, 3, 32, 32), np.float32)
    before = fresh.encode_images(pixels)
    fresh.release_memory()
    assert np.array_equal(fresh.encode_images(pixels), before)


def test_encode_texts_pads_batches_and_matches_colours(encoder: Encoder):
    vectors = encoder.encode_texts(["red", "a photo of a red car", "blue", "unknownword"])
    assert vectors.shape == (4, TINY_DIM)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert vectors[0] @ vectors[2] < vectors[0] @ vectors[0]
    assert encoder.encode_texts([]).shape == (0, TINY_DIM)
    assert "CPUExecutionProvider" in available_providers()


def test_unoptimised_sessions_give_the_same_vectors(encoder: Encoder):
    """A one-shot search's encoder skips graph optimisation (faster to start): same vectors."""
    plain = Encoder(encoder.bundle_dir, threads=1, optimize_graphs=False)
    texts = ["red", "a photo of a red car", "unknownword"]
    assert np.allclose(plain.encode_texts(texts), encoder.encode_texts(texts), atol=1e-6)
    pixels = np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32)
    assert np.allclose(plain.encode_images(pixels), encoder.encode_images(pixels), atol=1e-6)
    import onnxruntime as ort

    options = plain._textual_graph().session.get_session_options()
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_DISABLE_ALL


def test_long_text_is_truncated_not_an_error(encoder: Encoder):
    assert encoder.encode_texts(["red " * 500]).shape == (1, TINY_DIM)


def _run_python(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def test_everyday_commands_do_not_import_torch(tmp_path: Path):
    models = tmp_path / "models"
    build_tiny_bundle(models / "tiny")
    photos = tmp_path / "photos"
    photos.mkdir()
    from tests.conftest import make_photo

    make_photo(photos / "red.jpg", "red")
    args = (
        f"['--library', {str(tmp_path / 'lib')!r}, '--models-dir', {str(models)!r}, "
        f"'--model', 'tiny']"
    )
    code = (
        "import sys\n"
        "import photosearch.library.facade\n"
        "assert 'torch' not in sys.modules, 'importing the library imported torch'\n"
        "from photosearch.cli.main import main\n"
        f"args = {args}\n"
        "assert main(args + ['folders', 'add', " + repr(str(photos)) + "]) == 0\n"
        "assert main(args + ['index']) == 0\n"
        "assert main(args + ['status', '--json']) == 0\n"
        "assert main(args + ['search', 'red', '--json']) == 0\n"
        "assert 'torch' not in sys.modules, 'a CLI command imported torch'\n"
        "print('TORCH-FREE')\n"
    )
    result = _run_python(code)
    assert result.returncode == 0, result.stderr
    assert "TORCH-FREE" in result.stdout


def test_provider_choices_are_local_and_end_with_cpu():
    from photosearch.models.runtime import local_providers, providers_for

    assert "AzureExecutionProvider" not in local_providers()
    assert local_providers()[-1] == "CPUExecutionProvider"
    assert providers_for("auto") == local_providers()
    assert providers_for("CUDAExecutionProvider") == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert providers_for("CPUExecutionProvider") == ["CPUExecutionProvider"]


def test_a_texts_vector_does_not_depend_on_what_it_is_encoded_with(tmp_path: Path):
    """Dynamic int8 graphs scale activations by the whole batch's range; search encodes a
    query alone, so every text must get the vector it gets alone (or evaluation would measure
    vectors search never sees)."""
    import onnx
    from onnx import helper, numpy_helper
    from onnxruntime.quantization import QuantType, quantize_dynamic

    bundle = build_tiny_bundle(tmp_path / "int8")
    graph_path = bundle / "textual" / "model.onnx"
    model = onnx.load(str(graph_path))  # append a projection, then quantise it dynamically
    model.graph.output[0].name = "projected"
    model.graph.node.append(helper.make_node("MatMul", ["embedding", "proj"], ["projected"]))
    weight = np.random.default_rng(3).standard_normal((TINY_DIM, TINY_DIM)).astype(np.float32)
    model.graph.initializer.append(numpy_helper.from_array(weight, "proj"))
    float_path = tmp_path / "float.onnx"
    onnx.save(model, str(float_path))
    quantize_dynamic(
        str(float_path),
        str(graph_path),
        op_types_to_quantize=["MatMul"],
        weight_type=QuantType.QInt8,
    )
    encoder = Encoder(bundle, threads=1)
    texts = ["red", "a photo of a black dog in the blue sky", "yellow car"]
    together = encoder.encode_texts(texts)
    alone = np.concatenate([encoder.encode_texts([t]) for t in texts])
    np.testing.assert_array_equal(together, alone)
    # The graph really is batch-dependent: one run over the padded batch differs.
    tokenizer = encoder._get_tokenizer()
    encodings = tokenizer.encode_batch(texts)
    batch = encoder._textual_graph().session.run(
        None,
        {
            "input_ids": np.asarray([e.ids for e in encodings], np.int64),
            "attention_mask": np.asarray([e.attention_mask for e in encodings], np.int64),
        },
    )[0]
    batch /= np.linalg.norm(batch, axis=1, keepdims=True)
    assert not np.allclose(batch[0], alone[0], atol=1e-4)
