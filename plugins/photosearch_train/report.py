"""Measure bundles with the app's own runtime (ONNX Runtime via photosearch's Encoder, app
preprocessing) and write the run's report as JSON and Markdown. Needs no torch: a bundle can
be measured where only the app is installed."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from photosearch.files.imaging import decode_for_model
from photosearch.models.bundle import TEXTUAL_MODEL, VISUAL_MODEL, Preprocessing
from photosearch.models.runtime import Encoder
from photosearch_train.data import Pairs, preprocessing_key
from photosearch_train.metrics import recall_scores


def measure_bundle(bundle: Path, pairs: Pairs, threads: int | None = None) -> dict:
    """Recall both ways on ``pairs`` plus CPU throughput (images/s excludes JPEG decoding)."""
    encoder = Encoder(bundle, threads=threads)
    pixels = decoded(pairs.images, encoder.config.preprocessing)
    encoder.warm_up()
    encoder.encode_images(pixels[:2])
    started = time.perf_counter()
    images = encode_in_batches(encoder, pixels)
    image_s = time.perf_counter() - started
    texts, seconds = encode_texts_timed(encoder, list(pairs.captions))
    return {
        **recall_scores(texts, images, pairs),
        "images_per_s": len(pixels) / image_s,
        **text_speed(seconds),
        "disk_mb": disk_mb(bundle),
        "bundle": str(bundle),
    }


def bundle_vectors(
    bundle: Path, images: Sequence[Path], texts: Sequence[str], threads: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A bundle's vectors of ``images`` (batches of 16, as measured) and of ``texts`` (one at
    a time, as a search encodes them), through the app's runtime."""
    encoder = Encoder(bundle, threads=threads)
    pixels = decoded(images, encoder.config.preprocessing)
    return encode_in_batches(encoder, pixels), encode_texts_timed(encoder, list(texts))[0]


def decoded(images: Sequence[Path], pre: Preprocessing) -> np.ndarray:
    """Model input of every photo, as the app decodes it (JPEG decoding kept out of timings)."""
    return np.stack([decode_for_model(p, pre).pixels for p in images])


def encode_in_batches(encoder: Encoder, pixels: np.ndarray, size: int = 16) -> np.ndarray:
    """Image vectors in batches of ``size``, the batch every speed figure is measured at."""
    return np.concatenate(
        [encoder.encode_images(pixels[i : i + size]) for i in range(0, len(pixels), size)]
    )


def encode_texts_timed(encoder: Encoder, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text on its own, as a search encodes its query: the vectors and seconds per text."""
    vectors, seconds = [], []
    for text in texts:
        started = time.perf_counter()
        vectors.append(encoder.encode_texts([text]))
        seconds.append(time.perf_counter() - started)
    return np.concatenate(vectors), np.asarray(seconds)


def text_speed(seconds: np.ndarray) -> dict[str, float]:
    """Texts per second, and the latency a search box feels: median and 95th percentile."""
    return {
        "texts_per_s": len(seconds) / float(seconds.sum()),
        "query_ms_p50": 1000.0 * float(np.percentile(seconds, 50)),
        "query_ms_p95": 1000.0 * float(np.percentile(seconds, 95)),
    }


def measure_speeds(
    bundles: dict[str, Path],
    images: Sequence[Path],
    texts: Sequence[str],
    rounds: int = 3,
    threads: int | None = None,
) -> dict[str, dict[str, float]]:
    """Best-of-``rounds`` images/s and texts/s per bundle, the bundles timed in turn (A, B, C,
    A, B, C, ...) so a shared machine getting busier or quieter mid-run hits every model alike.

    Images/s excludes JPEG decoding (batches of 16); each photo is decoded once per
    preprocessing. Texts are encoded one at a time, as queries are: texts/s and the median and
    95th-percentile milliseconds per query (the lowest of the passes)."""
    encoders = {name: Encoder(path, threads=threads) for name, path in bundles.items()}
    pixels: dict[tuple, np.ndarray] = {}
    for encoder in encoders.values():
        pre = encoder.config.preprocessing
        key = preprocessing_key(pre)
        if key not in pixels:
            pixels[key] = decoded(images, pre)
        encoder.warm_up()
    best: dict[str, dict[str, float]] = {name: {} for name in encoders}
    captions = list(texts)
    for _ in range(max(1, rounds)):
        for name, encoder in encoders.items():
            batch = pixels[preprocessing_key(encoder.config.preprocessing)]
            started = time.perf_counter()
            encode_in_batches(encoder, batch)
            image_rate = len(batch) / (time.perf_counter() - started)
            text_rates = text_speed(encode_texts_timed(encoder, captions)[1])
            row = best[name]
            row["images_per_s"] = max(row.get("images_per_s", 0.0), image_rate)
            row["texts_per_s"] = max(row.get("texts_per_s", 0.0), text_rates["texts_per_s"])
            for key in ("query_ms_p50", "query_ms_p95"):
                row[key] = min(row.get(key, float("inf")), text_rates[key])
    return best


def disk_mb(bundle: Path) -> float:
    """Megabytes of a bundle's two graphs."""
    files = [bundle / VISUAL_MODEL, bundle / TEXTUAL_MODEL]
    return round(sum(f.stat().st_size for f in files) / 1e6, 2)


def mean_recall(scores: dict) -> float:
    return scores["rsum"] / 6.0


def write_report(out_dir: Path, report: dict) -> tuple[Path, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out_dir / "report.json", out_dir / "report.md"
    json_path.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    md_path.write_text(to_markdown(report), encoding="utf-8")
    return json_path, md_path


def to_markdown(report: dict) -> str:
    if "mode" in report:
        return _photos_only_markdown(report)
    lines = [
        f"# Training report: {report.get('name', '')}",
        "",
        f"Eval split: `{report.get('eval_split')}` ({report.get('eval_images')} images); "
        "choices (checkpoints, int8) made on `val` only.",
        "",
        "| model | t2i R@1 | R@5 | R@10 | i2t R@1 | R@5 | R@10 | R-sum | disk MB | img/s | txt/s "
        "| query ms p50 / p95 |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, m in report.get("models", {}).items():
        ev = m.get("eval")
        if not ev:
            continue
        lines.append(
            f"| {name} | {ev['t2i_R@1']:.1f} | {ev['t2i_R@5']:.1f} | {ev['t2i_R@10']:.1f} "
            f"| {ev['i2t_R@1']:.1f} | {ev['i2t_R@5']:.1f} | {ev['i2t_R@10']:.1f} "
            f"| {ev['rsum']:.1f} | {ev['disk_mb']:.1f} | {ev['images_per_s']:.1f} "
            f"| {ev['texts_per_s']:.0f} | {query_latency(ev)} |"
        )
    lines += [
        "",
        f"int8: {report.get('int8', {}).get('decision', 'not tried')}",
        *_int8_visual_line(report),
        f"speed (ONNX Runtime, CPU): {report.get('speed', 'one pass per model')}",
        f"installed: {report.get('installed')}",
        "",
    ]
    return "\n".join(lines)


def _photos_only_markdown(report: dict) -> str:
    """A run without captions has no recall to show: closeness to the teacher, size, speed."""
    lines = [
        f"# Training report: {report.get('name', '')}",
        "",
        f"Trained on photos alone, without captions; measured on "
        f"{report.get('held_out_photos')} held-out photos and {report.get('sample_queries')} "
        "sample queries. Cosine: mean cosine between a model's and the teacher's vectors of "
        "the held-out photos (1 = the teacher's search results).",
        "",
        "| model | cosine to T | disk MB | img/s | txt/s | query ms p50 / p95 |",
        "|---|---|---|---|---|---|",
    ]
    for name, m in report.get("models", {}).items():
        ev = m["eval"]
        lines.append(
            f"| {name} | {ev['cos_to_teacher']:.4f} | {ev['disk_mb']:.1f} "
            f"| {ev['images_per_s']:.1f} | {ev['texts_per_s']:.0f} | {query_latency(ev)} |"
        )
    lines += [
        "",
        f"int8: {report.get('int8', {}).get('decision', 'not tried')}",
        *_int8_visual_line(report),
        f"speed (ONNX Runtime, CPU): {report.get('speed')}",
        f"installed: {report.get('installed')}",
        "",
    ]
    return "\n".join(lines)


def _int8_visual_line(report: dict) -> list[str]:
    """The static int8 image graph's decision, where the run tried it."""
    if "int8_visual" not in report:
        return []
    return [f"int8 image graph: {report['int8_visual']['decision']}"]


def query_latency(ev: dict) -> str:
    """ "p50 / p95" milliseconds per query, or "-" for results measured before they were."""
    if "query_ms_p50" not in ev:
        return "-"
    return f"{ev['query_ms_p50']:.1f} / {ev['query_ms_p95']:.1f}"
