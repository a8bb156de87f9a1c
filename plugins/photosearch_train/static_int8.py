"""Static int8 of a bundle's image graph (ONNX Runtime QDQ quantisation: int8 weights with one
scale per output channel, uint8 activations whose ranges are calibrated on the run's own
training photos, decoded exactly as the app decodes them).

Why: dynamic int8 (``export.quantize_bundle``) leaves convolutions in float, and a convolutional
image tower is nearly all convolutions. Statically quantised ones run on the CPU's int8 dot
products: the EfficientNet-Lite0 student at 160 px took 86 instead of 195 ms a batch of 16 (one
thread, a CPU with AVX512-VNNI; docs/training.md). A CPU without fast int8 may gain nothing or
lose, so ``try_static_visual`` keeps the static graph only where it is both close to the float
student and faster on the machine the run is on. Needs no torch.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from photosearch.errors import UnsupportedImage
from photosearch.files.imaging import decode_for_model
from photosearch.models.bundle import (
    VISUAL_MODEL,
    Preprocessing,
    read_bundle_config,
    rewrite_bundle_config,
)
from photosearch.models.runtime import Encoder
from photosearch_train.config import ExportConfig
from photosearch_train.metrics import mean_cosine
from photosearch_train.report import encode_in_batches

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

STATIC = "static"  # export.int8_visual's value that tries it
HELD_OUT_LIMIT = 100  # held-out photos the cosine is measured on (evenly spread)
TIMED_PHOTOS = 64  # photos per timing pass (4 batches of 16, as the report's speed figures)
TIMING_ROUNDS = 3  # best of this many passes per graph, the graphs timed in turn
METHOD = "onnxruntime static int8 (QDQ; per-channel int8 weights, uint8 activations)"


def evenly_spaced(photos: Sequence[Path], count: int) -> list[Path]:
    """At most ``count`` of ``photos``, spread over the listing (which spans the folders)."""
    if count <= 0 or not photos:
        return []
    if len(photos) <= count:
        return list(photos)
    step = len(photos) / count
    return [photos[int(i * step)] for i in range(count)]


def model_inputs(photos: Sequence[Path], pre: Preprocessing) -> np.ndarray:
    """The image graph's input for each photo that decodes (as the app decodes it for the
    model); a photo that does not is logged and left out."""
    pixels = []
    for path in photos:
        try:
            pixels.append(decode_for_model(path, pre).pixels)
        except UnsupportedImage as exc:
            log.warning("int8 calibration leaves out %s: %s", path, exc)
    if not pixels:
        return np.zeros((0, 3, pre.size, pre.size), np.float32)
    return np.stack(pixels).astype(np.float32)


def quantize_visual_static(source: Path, target: Path, calibration: np.ndarray) -> None:
    """Write the static int8 (QDQ) copy of the image graph ``source`` to ``target``, its
    activation ranges calibrated (min/max) on the ``calibration`` pixels, one photo per run.
    Shape inference and ORT's graph fusions (``quant_pre_process``) run first, so batch norms
    are folded into the convolutions they follow before their weights are quantised."""
    import onnx
    import onnxruntime as ort
    from onnxruntime.quantization import (
        CalibrationDataReader,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    session = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"])
    spec = session.get_inputs()[0]
    batch = spec.shape[0] if isinstance(spec.shape[0], int) and spec.shape[0] > 0 else 1
    del session

    class Photos(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches: Iterator[np.ndarray] = _fixed_batches(calibration, batch)

        def get_next(self) -> dict[str, np.ndarray] | None:
            rows = next(self.batches, None)
            return None if rows is None else {spec.name: rows}

    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="static-int8-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(source), str(prepared), skip_symbolic_shape=True)
        model = onnx.load(str(prepared))
        if fold_zero_pads_into_convs(model):
            onnx.save(model, str(prepared))
        quantize_static(
            str(prepared),
            str(target),
            Photos(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,  # symmetric int8 activations ran 2x slower
            weight_type=QuantType.QInt8,
        )


def fold_zero_pads_into_convs(model: onnx.ModelProto) -> int:
    """Fold each Pad of zeros on the spatial axes that feeds one Conv alone into that Conv's
    own ``pads`` (the same output: a convolution pads with zeros too); returns how many.

    Why: TensorFlow-style "same" padding (EfficientNet-Lite's stride-2 convolutions) exports
    as a separate Pad, which static int8 leaves in float between a DequantizeLinear and a
    QuantizeLinear of the whole feature map; on the Lite0 student at 160 px those three took
    two thirds of the int8 graph's time."""
    from onnx import helper, numpy_helper

    graph = model.graph
    constants = {t.name: t for t in graph.initializer}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}
    folded = []
    for pad in [n for n in graph.node if n.op_type == "Pad"]:
        users = consumers.get(pad.output[0], [])
        if len(users) != 1 or users[0].op_type != "Conv" or pad.output[0] in outputs:
            continue
        conv = users[0]
        attrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        mode = {a.name: helper.get_attribute_value(a) for a in pad.attribute}.get("mode")
        if conv.input[0] != pad.output[0] or attrs.get("auto_pad", b"NOTSET") != b"NOTSET":
            continue
        if mode not in (None, b"constant") or len(pad.input) < 2 or pad.input[1] not in constants:
            continue
        value = pad.input[2] if len(pad.input) > 2 else ""
        if value and (value not in constants or numpy_helper.to_array(constants[value]) != 0):
            continue
        pads = numpy_helper.to_array(constants[pad.input[1]]).tolist()
        rank = len(pads) // 2
        spatial = pads[2:rank] + pads[rank + 2 :]
        if rank < 3 or len(pad.input) > 3 or any(pads[:2] + pads[rank : rank + 2]) or min(pads) < 0:
            continue
        own = list(attrs.get("pads", [0] * len(spatial)))
        if len(own) != len(spatial):
            continue
        conv.input[0] = pad.input[0]
        for attribute in list(conv.attribute):
            if attribute.name == "pads":
                conv.attribute.remove(attribute)
        conv.attribute.append(
            helper.make_attribute("pads", [a + b for a, b in zip(own, spatial, strict=True)])
        )
        folded.append(pad)
    for pad in folded:
        graph.node.remove(pad)
    used = {name for node in graph.node for name in node.input}
    for name in {name for pad in folded for name in pad.input[1:]} - used:
        if name in constants:
            graph.initializer.remove(constants[name])
    return len(folded)


def _fixed_batches(rows: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    """``rows`` in runs of ``batch`` (a graph with a fixed batch axis takes no other); a last
    short run is topped up with copies of its last row, which add no new value range."""
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        if len(chunk) < batch:
            chunk = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
        yield chunk


def static_visual_as_configured(
    fp32: Path,
    int8: Path,
    training_photos: Sequence[Path],
    held_out_photos: Sequence[Path],
    export: ExportConfig,
) -> dict:
    """``try_static_visual`` where ``export`` asks for it (``int8_visual`` "static" and an int8
    image graph in ``int8_towers``); the report's entry either way."""
    if export.int8_visual != STATIC:
        return {"kept": False, "decision": "not tried (export.int8_visual is 'dynamic')"}
    if "visual" not in export.int8_towers:
        return {"kept": False, "decision": "not tried (export.int8_towers has no 'visual')"}
    return try_static_visual(fp32, int8, training_photos, held_out_photos, export)


def try_static_visual(
    fp32: Path,
    int8: Path,
    training_photos: Sequence[Path],
    held_out_photos: Sequence[Path],
    export: ExportConfig,
    threads: int | None = None,
) -> dict:
    """Give the int8 bundle ``int8`` (a copy of ``fp32``) a static int8 image graph, calibrated
    on a sample of ``training_photos``, if on ``held_out_photos`` its vectors stay at mean
    cosine >= ``export.int8_min_cosine`` to the fp32 student's AND it encodes them at least
    ``export.int8_static_min_speedup`` times as fast as the image graph it would replace (timed
    here, through the app's runtime, best of a few interleaved passes). Otherwise ``int8`` is
    left as it was. Returns the decision and its figures, for the run's report."""
    pre = read_bundle_config(fp32).preprocessing
    calibration = model_inputs(evenly_spaced(training_photos, export.int8_calibration_photos), pre)
    held_out = model_inputs(evenly_spaced(held_out_photos, HELD_OUT_LIMIT), pre)
    if len(calibration) == 0 or len(held_out) == 0:
        return {"kept": False, "decision": "not tried (no readable training or held-out photos)"}
    candidate = int8.parent / f"{int8.name}-static-visual"
    shutil.rmtree(candidate, ignore_errors=True)
    shutil.copytree(int8, candidate)
    try:
        try:
            quantize_visual_static(fp32 / VISUAL_MODEL, candidate / VISUAL_MODEL, calibration)
        except Exception as exc:
            # ORT's quantiser raises whatever its passes hit on an unusual graph (ValueError,
            # KeyError, ORT's own Fail...); the run must still export what exists today.
            log.warning("static int8 of the image graph failed: %s", exc)
            return {"kept": False, "decision": f"rejected (static quantisation failed: {exc})"}
        figures = _measure(fp32, int8, candidate, held_out, threads)
        keep = (
            figures["image_cos_to_fp32"] >= export.int8_min_cosine
            and figures["speedup"] >= export.int8_static_min_speedup
        )
        if keep:
            shutil.copyfile(candidate / VISUAL_MODEL, int8 / VISUAL_MODEL)
            _record_static_visual(int8)
    finally:
        shutil.rmtree(candidate, ignore_errors=True)
    return {
        "method": METHOD,
        "calibration_photos": len(calibration),
        "held_out_photos": len(held_out),
        **figures,
        "min_cosine": export.int8_min_cosine,
        "min_speedup": export.int8_static_min_speedup,
        "kept": keep,
        "decision": (
            f"{'kept' if keep else 'rejected, convolutions stay float'} (static int8 image "
            f"graph: cosine to the fp32 student {figures['image_cos_to_fp32']:.4f} on "
            f"{len(held_out)} held-out photos, bound {export.int8_min_cosine}; "
            f"{figures['images_per_s_static']:.1f} vs {figures['images_per_s_replaced']:.1f} "
            f"images/s = x{figures['speedup']:.2f} the graph it replaces, bound "
            f"x{export.int8_static_min_speedup})"
        ),
    }


def _measure(
    fp32: Path, replaced: Path, static: Path, pixels: np.ndarray, threads: int | None
) -> dict[str, float]:
    """The static graph's mean cosine to the fp32 student on ``pixels``, and the images/s of
    it and of the graph it would replace: best of ``TIMING_ROUNDS`` passes over up to
    ``TIMED_PHOTOS`` photos in batches of 16, the two graphs timed in turn."""
    encoders = {
        "replaced": Encoder(replaced, threads=threads),
        "static": Encoder(static, threads=threads),
    }
    cosine = mean_cosine(
        encode_in_batches(encoders["static"], pixels),
        encode_in_batches(Encoder(fp32, threads=threads), pixels),
    )
    encoders["replaced"].encode_images(pixels[:2])  # loaded before it is timed, as the static
    timed = pixels[:TIMED_PHOTOS]
    rates = {name: 0.0 for name in encoders}
    for _ in range(TIMING_ROUNDS):
        for name, encoder in encoders.items():
            started = time.perf_counter()
            encode_in_batches(encoder, timed)
            rates[name] = max(rates[name], len(timed) / (time.perf_counter() - started))
    return {
        "image_cos_to_fp32": cosine,
        "images_per_s_static": rates["static"],
        "images_per_s_replaced": rates["replaced"],
        "speedup": rates["static"] / rates["replaced"],
    }


def _record_static_visual(bundle: Path) -> None:
    """Say in ``bundle``'s config that its image graph is the static int8 one."""
    config = read_bundle_config(bundle)
    quantization = dict(config.provenance.get("quantization", {}))
    quantization["visual"] = METHOD
    rewrite_bundle_config(
        bundle,
        config,
        description=f"{config.description} (image graph: static int8 QDQ)",
        provenance={**config.provenance, "quantization": quantization},
    )
