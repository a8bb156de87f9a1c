"""Where a distilled student loses recall: its towers paired with the teacher's, on photos it
was distilled on and on photos it never saw (issue 19's diagnosis).

The photo folder is split by the trainer's own rule (photosearch_train.photos_only: every
k-th photo held out), so the held-out photos are the ones a photos-only run never trained
on. Each photo is queried by its captions from a captions.jsonl (evaluation only); every
pairing of image tower (student / teacher) and text tower (student / teacher) gets t2i
R@1/5/10 on the held-out photos and on as many of the trained ones, plus the mean cosine of
the student's vectors to the teacher's. Vectors through the app's Encoder.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_distil_gap.py \
        --teacher conse-lite0-minilm --student conse-distilled-16b \
        --models-dir /tmp/distill/models --photos /tmp/distill/photos

Never point --photos at the test split's photos: this is for choosing, not reporting.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from photosearch_train.data import list_images  # noqa: E402
from photosearch_train.onnx_teacher import resolve_bundle  # noqa: E402
from photosearch_train.photos_only import split_photos  # noqa: E402

from photosearch.files.imaging import decode_for_model  # noqa: E402
from photosearch.models.runtime import Encoder  # noqa: E402


def encode(encoder: Encoder, photos: list[Path], texts: list[str]) -> tuple[np.ndarray, ...]:
    pre = encoder.config.preprocessing
    images = [
        encoder.encode_images(
            np.stack([decode_for_model(p, pre).pixels for p in photos[i : i + 32]])
        )
        for i in range(0, len(photos), 32)
    ]
    return np.concatenate(images), encoder.encode_texts(texts)


def t2i_recall(images: np.ndarray, texts: np.ndarray, per_photo: int) -> list[float]:
    scores = texts @ images.T
    own = np.repeat(np.arange(len(images)), per_photo)
    ranks = (scores > scores[np.arange(len(texts)), own][:, None]).sum(axis=1)
    return [round(100 * float((ranks < k).mean()), 1) for k in (1, 5, 10)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", required=True)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--photos", type=Path, required=True)
    flickr = Path("shared") / "data" / "flickr8k-1k" / "captions.jsonl"
    found = [p for p in (ROOT.parent / flickr, ROOT.parents[1] / flickr) if p.is_file()]
    parser.add_argument("--captions", type=Path, default=found[0] if found else flickr)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)

    captions = {}
    for line in args.captions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row.get("split") == "test":
            continue  # never looked at here
        captions[Path(row["image"]).name] = row["captions"][:5]
    trained, held = split_photos(list_images(args.photos))
    trained = [p for p in trained if p.name in captions]
    held = [p for p in held if p.name in captions]
    step = max(1, len(trained) // max(1, len(held)))
    groups = {"held out": held, "trained on": trained[::step][: len(held)]}
    models = {
        "T": Encoder(resolve_bundle(args.teacher, args.models_dir), threads=args.threads),
        "S": Encoder(resolve_bundle(args.student, args.models_dir), threads=args.threads),
    }
    report = {}
    for group, photos in groups.items():
        texts = [c for p in photos for c in captions[p.name]]
        vectors = {name: encode(enc, photos, texts) for name, enc in models.items()}
        row = {
            f"image {i} + text {t}": t2i_recall(vectors[i][0], vectors[t][1], 5)
            for i in "TS"
            for t in "TS"
        }
        for side, index in (("image", 0), ("text", 1)):
            cosine = (vectors["S"][index] * vectors["T"][index]).sum(axis=1).mean()
            row[f"cosine to T, {side}"] = round(float(cosine), 3)
        report[f"{group} ({len(photos)} photos)"] = row
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
