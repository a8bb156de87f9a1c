"""Static int8 of a bundle's image graph (photosearch_train.static_int8) on a small real
convolutional graph: the QDQ graph the app's runtime loads and its closeness to the float
one, the keep rule (cosine to the fp32 student and speed on this machine) both ways, and the
switch that turns it off. Real ONNX Runtime sessions and real photo files throughout."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from photosearch_train.config import ConfigError, ExportConfig, load_config
from photosearch_train.metrics import mean_cosine
from photosearch_train.report import decoded, encode_in_batches
from photosearch_train.static_int8 import (
    evenly_spaced,
    fold_zero_pads_into_convs,
    quantize_visual_static,
    static_visual_as_configured,
    try_static_visual,
)
from PIL import Image

from photosearch.models.bundle import VISUAL_MODEL, read_bundle_config
from photosearch.models.runtime import Encoder
from tests.support.tiny_bundle import TINY_DIM, TINY_SIZE, build_tiny_bundle, opset17_model

QDQ_OPS = {"QuantizeLinear", "DequantizeLinear"}


def _conv_visual_graph(path: Path, seed: int = 0) -> None:
    """Two 3x3 convolutions with ReLU, global pooling and a linear head: the shape of a real
    image tower, small enough to quantise in a fraction of a second."""
    rng = np.random.default_rng(seed)

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        scale = np.sqrt(2.0 / np.prod(shape[1:]))
        return numpy_helper.from_array(
            (rng.standard_normal(shape) * scale).astype(np.float32), name
        )

    initializers = [
        weight("w1", 16, 3, 3, 3),
        numpy_helper.from_array(np.full(16, 0.1, np.float32), "b1"),
        weight("w2", 32, 16, 3, 3),
        numpy_helper.from_array(np.zeros(32, np.float32), "b2"),
        weight("head", 32, TINY_DIM),
        numpy_helper.from_array(np.asarray([0, 0, 0, 0, 0, 0, 1, 1], np.int64), "pads"),
    ]
    nodes = [  # the first convolution padded TensorFlow's "same" way, by a Pad of its own
        helper.make_node("Pad", ["image", "pads"], ["padded"], mode="constant"),
        helper.make_node("Conv", ["padded", "w1", "b1"], ["c1"], strides=[2, 2]),
        helper.make_node("Relu", ["c1"], ["r1"]),
        helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"], pads=[1, 1, 1, 1], strides=[2, 2]),
        helper.make_node("Relu", ["c2"], ["r2"]),
        helper.make_node("GlobalAveragePool", ["r2"], ["pooled"]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "head"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "conv_visual",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 3, 32, 32])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", TINY_DIM])],
        initializers,
    )
    onnx.save(opset17_model(graph), str(path))


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(fp32 bundle with a convolutional image graph, its int8 copy as dynamic int8 leaves
    it: the image graph float)."""
    root = tmp_path_factory.mktemp("bundles")
    fp32 = build_tiny_bundle(root / "conv", name="conv")
    _conv_visual_graph(fp32 / VISUAL_MODEL)
    return fp32, root / "conv-int8"


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out photos): coloured shapes and gradients on varied grounds."""
    folder = tmp_path_factory.mktemp("photos")
    rng = np.random.default_rng(7)
    paths = []
    for n in range(24):
        ground = np.linspace(0, 1, 48)[None, :, None] * rng.integers(0, 255, 3)
        pixels = np.broadcast_to(ground, (40, 48, 3)).copy()
        x, y = rng.integers(0, 24, 2)
        pixels[y : y + 16, x : x + 20] = rng.integers(0, 255, 3)
        path = folder / f"{n:02d}.jpg"
        Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)
        paths.append(path)
    return paths[:16], paths[16:]


def _fresh_int8(fp32: Path, int8: Path) -> Path:
    """The int8 copy before the static step: here the fp32 bundle as it is (its image graph
    has no MatMul worth dynamic int8; what matters is that it is float)."""
    shutil.rmtree(int8, ignore_errors=True)
    shutil.copytree(fp32, int8)
    return int8


def _ops(graph: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(graph)).graph.node}


def test_the_static_graph_is_qdq_int8_loads_in_the_app_and_stays_close(
    bundles: tuple[Path, Path], photos: tuple[list[Path], list[Path]], tmp_path: Path
) -> None:
    fp32, _ = bundles
    train, held_out = photos
    pre = read_bundle_config(fp32).preprocessing
    static = _fresh_int8(fp32, tmp_path / "static")
    quantize_visual_static(fp32 / VISUAL_MODEL, static / VISUAL_MODEL, decoded(train, pre))

    model = onnx.load(str(static / VISUAL_MODEL))
    assert {node.op_type for node in model.graph.node} >= QDQ_OPS
    assert "Pad" not in {node.op_type for node in model.graph.node}  # folded into its Conv
    weights = {t.name: t for t in model.graph.initializer}
    conv_weights = [  # each convolution reads its weight through a DequantizeLinear of int8
        node.input[1] for node in model.graph.node if node.op_type == "Conv"
    ]
    producers = {node.output[0]: node for node in model.graph.node}
    assert len(conv_weights) == 2
    for name in conv_weights:
        dequantize = producers[name]
        assert dequantize.op_type == "DequantizeLinear"
        stored = weights[dequantize.input[0]]
        assert stored.data_type == TensorProto.INT8
        assert len(numpy_helper.to_array(weights[dequantize.input[1]])) > 1  # per channel

    float_vectors = encode_in_batches(Encoder(fp32, threads=1), decoded(held_out, pre))
    int8_vectors = encode_in_batches(Encoder(static, threads=1), decoded(held_out, pre))
    assert int8_vectors.shape == (len(held_out), TINY_DIM)
    assert mean_cosine(int8_vectors, float_vectors) > 0.99
    assert np.abs(int8_vectors - float_vectors).max() > 0  # really computed differently


def test_the_rule_keeps_a_close_and_fast_enough_static_graph(
    bundles: tuple[Path, Path], photos: tuple[list[Path], list[Path]]
) -> None:
    """Speed bound 0: the timing cannot refuse, so only the cosine decides (kept)."""
    fp32, int8 = bundles
    _fresh_int8(fp32, int8)
    export = ExportConfig(int8_min_cosine=0.9, int8_static_min_speedup=0.0)
    result = try_static_visual(fp32, int8, *photos, export, threads=1)
    assert result["kept"] and result["decision"].startswith("kept")
    assert result["calibration_photos"] == 16 and result["held_out_photos"] == 8
    assert result["image_cos_to_fp32"] > 0.99
    assert result["images_per_s_static"] > 0 and result["images_per_s_replaced"] > 0
    assert _ops(int8 / VISUAL_MODEL) >= QDQ_OPS
    provenance = read_bundle_config(int8).provenance
    assert "static int8" in provenance["quantization"]["visual"]
    assert not (int8.parent / f"{int8.name}-static-visual").exists()  # the candidate's folder
    Encoder(int8, threads=1).encode_images(np.zeros((1, 3, TINY_SIZE, TINY_SIZE), np.float32))


@pytest.mark.parametrize(
    ("bounds", "reason"),
    [
        ({"int8_min_cosine": 1.01}, "bound 1.01"),  # no graph is closer than identical
        ({"int8_min_cosine": 0.5, "int8_static_min_speedup": 1000.0}, "bound x1000.0"),
    ],
)
def test_the_rule_falls_back_to_float_convolutions_when_it_fails(
    bundles: tuple[Path, Path],
    photos: tuple[list[Path], list[Path]],
    bounds: dict,
    reason: str,
) -> None:
    fp32, int8 = bundles
    _fresh_int8(fp32, int8)
    before = (int8 / VISUAL_MODEL).read_bytes(), (int8 / "config.json").read_bytes()
    result = try_static_visual(fp32, int8, *photos, ExportConfig(**bounds), threads=1)
    assert not result["kept"]
    assert result["decision"].startswith("rejected, convolutions stay float")
    assert reason in result["decision"]
    assert ((int8 / VISUAL_MODEL).read_bytes(), (int8 / "config.json").read_bytes()) == before


def test_the_switch_and_the_towers_turn_it_off(
    bundles: tuple[Path, Path], photos: tuple[list[Path], list[Path]]
) -> None:
    fp32, int8 = bundles
    dynamic = ExportConfig(int8_visual="dynamic")
    assert (
        "int8_visual is 'dynamic'"
        in static_visual_as_configured(fp32, int8, *photos, dynamic)["decision"]
    )
    text_only = ExportConfig(int8_towers=("textual",))
    assert "no 'visual'" in static_visual_as_configured(fp32, int8, *photos, text_only)["decision"]
    assert load_config(None).export.int8_visual == "static"
    with pytest.raises(ConfigError, match="int8_visual must be 'static' or 'dynamic'"):
        load_config(None, {"export.int8_visual": "fast"})


def test_unreadable_photos_leave_nothing_to_calibrate_on(
    bundles: tuple[Path, Path], tmp_path: Path
) -> None:
    fp32, int8 = bundles
    _fresh_int8(fp32, int8)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    result = try_static_visual(fp32, int8, [broken], [broken], ExportConfig())
    assert not result["kept"] and "no readable" in result["decision"]


def test_calibration_photos_are_spread_over_the_listing() -> None:
    photos = [Path(f"{n}.jpg") for n in range(10)]
    assert evenly_spaced(photos, 4) == [photos[0], photos[2], photos[5], photos[7]]
    assert evenly_spaced(photos, 64) == photos and evenly_spaced(photos, 0) == []


def test_a_run_calibrates_on_its_training_photos_never_on_held_out_ones(
    photos: tuple[list[Path], list[Path]], tmp_path: Path
) -> None:
    pytest.importorskip("torch")
    from photosearch_train.device import setup
    from photosearch_train.photos_only import PHOTOS_ONLY_RECIPE
    from photosearch_train.workspace import Workspace

    folder = photos[0][0].parent
    config = load_config(
        None, {"stage1.images": str(folder), "out_dir": str(tmp_path)}, recipe=PHOTOS_ONLY_RECIPE
    )
    ws = Workspace(config, setup())
    training, held_out = ws.training_photos(), ws.val_images()
    assert len(held_out) == 2 and len(training) == 22  # 24 photos, a tenth held out
    assert not set(training) & set(held_out)


def test_a_pad_of_zeros_folds_into_its_convolution_with_the_same_output(
    bundles: tuple[Path, Path], tmp_path: Path
) -> None:
    import onnxruntime as ort

    fp32, _ = bundles
    pixels = np.random.default_rng(3).standard_normal((2, 3, 32, 32)).astype(np.float32)

    def run(model: onnx.ModelProto) -> np.ndarray:
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        return session.run(None, {"image": pixels})[0]

    model = onnx.load(str(fp32 / VISUAL_MODEL))
    expected = run(model)
    assert fold_zero_pads_into_convs(model) == 1
    assert "Pad" not in {n.op_type for n in model.graph.node}
    assert "pads" not in {t.name for t in model.graph.initializer}
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    assert conv.input[0] == "image"
    assert [list(a.ints) for a in conv.attribute if a.name == "pads"] == [[0, 0, 1, 1]]
    np.testing.assert_allclose(run(model), expected, rtol=1e-5, atol=1e-6)

    ones = onnx.load(str(fp32 / VISUAL_MODEL))  # padding with 1s is not a convolution's own
    pad = next(n for n in ones.graph.node if n.op_type == "Pad")
    ones.graph.initializer.append(numpy_helper.from_array(np.asarray(1.0, np.float32), "one"))
    pad.input.append("one")
    assert fold_zero_pads_into_convs(ones) == 0
