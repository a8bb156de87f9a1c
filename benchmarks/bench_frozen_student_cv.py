"""Choosing the frozen student's input size, JPEG draft margin and residual scale without the
test split: 5-fold cross-validation over a folder of photos (issue 19 item 4).

For each setting, Lite0's frozen ImageNet features of the photos (decoded as the app decodes
them: ``decode_for_model`` with that size and draft margin) are mapped into the teacher's
space by the recipe's rule (ridge strength by cosine on a tenth of the training fold), then
widened around the teacher's mean photo vector by each residual scale; on each held-out fold:
mean cosine to the teacher's vectors, t2i and i2t R@1/5/10 of the held-out photos against
their own captions (text vectors from --student's text tower: only the image side differs),
and two caption-free agreements with the teacher over --corpus-texts shipped corpus texts
(i2t: the teacher's best text for a photo is in the student's top 10; t2i: the teacher's best
photo for a text is in the student's top 10). Captions only evaluate; nothing is trained on
them. Teacher and texts through the app's Encoder. ``--crops 0,8`` also fits with that many
random crops of each training photo as extra rows (``photosearch_train.crop_rows``, the
teacher's vector of each crop through its bundle; cached in --cache); held-out photos are
always scored as the app decodes them.

    PYTHONPATH=.:plugins OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_frozen_student_cv.py \
        --teacher conse-lite0-minilm --student conse-distilled-frozen \
        --models-dir /tmp/distill/models --photos /tmp/distill/photos \
        --captions ../shared/data/flickr8k-1k/captions.jsonl

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

import torch  # noqa: E402
from photosearch_conse import efficientnet  # noqa: E402
from photosearch_train.corpus import distillation_texts  # noqa: E402
from photosearch_train.crop_rows import crop_rows  # noqa: E402
from photosearch_train.onnx_teacher import resolve_bundle  # noqa: E402
from photosearch_train.ridge import fit_ridge, scale_residual  # noqa: E402
from photosearch_train.towers import FrozenImageNetTower  # noqa: E402

from photosearch.files.imaging import decode_for_model  # noqa: E402
from photosearch.models.bundle import Preprocessing  # noqa: E402
from photosearch.models.runtime import Encoder  # noqa: E402

STRENGTHS = (0.1, 0.3, 1.0, 3.0, 10.0)


def normalize(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def student_preprocessing(size: int, margin: int) -> Preprocessing:
    return Preprocessing(
        size=size,
        mean=(efficientnet.INPUT_MEAN,) * 3,
        std=(efficientnet.INPUT_STD,) * 3,
        interpolation="bicubic",
        resize_mode="shortest",
        draft_margin=margin,
    )


def student_features(photos: list[Path], size: int, margin: int) -> np.ndarray:
    tower = FrozenImageNetTower(384, size).eval()
    pre = student_preprocessing(size, margin)
    out = []
    with torch.no_grad():
        for i in range(0, len(photos), 32):
            pixels = np.stack([decode_for_model(p, pre).pixels for p in photos[i : i + 32]])
            out.append(tower.features(torch.from_numpy(pixels)).numpy())
    return np.concatenate(out)


def recall(scores: np.ndarray, own: np.ndarray) -> list[float]:
    """scores [rows, items], own [rows, items] bool -> R@1/5/10 of each row's best own item."""
    best = np.where(own, scores, -np.inf).max(axis=1)
    ranks = (np.where(own, -np.inf, scores) > best[:, None]).sum(axis=1)
    return [100 * float((ranks < k).mean()) for k in (1, 5, 10)]


def agreement(student: np.ndarray, teacher: np.ndarray) -> float:
    """How often the teacher's best item of a row is in the student's top 10."""
    top = teacher.argmax(axis=1)
    ranks = (student > student[np.arange(len(top)), top][:, None]).sum(axis=1)
    return 100 * float((ranks < 10).mean())


def fold_fit(
    features: np.ndarray,
    targets: np.ndarray,
    crops: tuple[np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The recipe's rule: the strength whose held-out tenth comes closest to the teacher,
    fitted on the other photos and (``crops``: [photos, crops, F] and [photos, crops, D])
    their crops; then refitted on every photo and crop."""

    def rows(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if crops is None:
            return features[mask], targets[mask]
        x, y = crops[0][mask], crops[1][mask]
        return (
            np.concatenate([features[mask], x.reshape(-1, x.shape[-1])]),
            np.concatenate([targets[mask], y.reshape(-1, y.shape[-1])]),
        )

    inner = np.arange(len(features)) % 10 == 0
    cosines = {}
    for strength in STRENGTHS:
        w, b = fit_ridge(*rows(~inner), strength)
        cosines[strength] = float(
            (normalize(features[inner] @ w.T + b) * targets[inner]).sum(axis=1).mean()
        )
    return fit_ridge(*rows(np.ones(len(features), bool)), max(cosines, key=cosines.get))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", required=True)
    parser.add_argument("--student", required=True, help="a bundle whose text tower is used")
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--captions", type=Path, required=True)
    parser.add_argument("--settings", default="160:2,160:1,144:1,128:1", help="size:margin,...")
    parser.add_argument("--scales", default="1,1.5,2,3,4")
    parser.add_argument("--corpus-texts", type=int, default=4000)
    parser.add_argument("--crops", default="0", help="crops per training photo, e.g. 0,8,16")
    parser.add_argument("--crop-min-scale", type=float, default=0.35)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/bench-frozen-cv-cache"))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    captions = {}
    for line in args.captions.open(encoding="utf-8"):
        row = json.loads(line)
        if row.get("split") == "test":
            continue
        captions[Path(row["image"]).name] = row["captions"][:5]
    photos = sorted(p for p in args.photos.iterdir() if p.name in captions)
    teacher = Encoder(resolve_bundle(args.teacher, args.models_dir), threads=1)
    student = Encoder(resolve_bundle(args.student, args.models_dir), threads=1)
    pre = teacher.config.preprocessing
    t_img = np.concatenate(
        [
            teacher.encode_images(np.stack([decode_for_model(p, pre).pixels for p in chunk]))
            for chunk in (photos[i : i + 32] for i in range(0, len(photos), 32))
        ]
    )
    texts = [c for p in photos for c in captions[p.name]]
    owner = np.repeat(np.arange(len(photos)), [len(captions[p.name]) for p in photos])
    s_txt = student.encode_texts(texts)
    corpus = teacher.encode_texts(distillation_texts(None, True, args.corpus_texts))
    folds = [np.arange(f, len(photos), 5) for f in range(5)]
    print(f"{len(photos)} photos ({len(texts)} captions), 5 folds; teacher {teacher.identity}")
    rows = [["teacher", "-", 0, 1.0, *_scores(t_img, t_img, folds, owner, s_txt, corpus)]]
    crop_counts = [int(v) for v in args.crops.split(",")]
    for setting in args.settings.split(","):
        size, margin = (int(v) for v in setting.split(":"))
        features = student_features(photos, size, margin)
        all_crops = _crops(teacher, photos, size, margin, max(crop_counts), args)
        for count in crop_counts:
            crops = (all_crops[0][:, :count], all_crops[1][:, :count]) if all_crops else None
            crops = crops if count else None
            fits = []
            for held in folds:
                train = np.setdiff1d(np.arange(len(photos)), held)
                train_crops = (crops[0][train], crops[1][train]) if crops else None
                fits.append(fold_fit(features[train], t_img[train], train_crops))
            for scale in (float(v) for v in args.scales.split(",")):
                vectors = np.zeros_like(t_img)
                for held, (w, b) in zip(folds, fits, strict=True):
                    train = np.setdiff1d(np.arange(len(photos)), held)
                    w, b = scale_residual(w, b, t_img[train].mean(axis=0), scale)
                    vectors[held] = normalize(features[held] @ w.T + b)
                scores = _scores(vectors, t_img, folds, owner, s_txt, corpus)
                rows.append([f"{size} px", f"margin {margin}", count, scale, *scores])
    print("| image tower | decode | crops a photo | residual scale | cosine | t2i R@1/5/10 "
          "| i2t R@1/5/10 | agreement i2t / t2i |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    for name, decode, count, scale, cos, t2i, i2t, a_i2t, a_t2i in rows:
        print(
            f"| {name} | {decode} | {count} | {scale:g} | {cos:.3f} "
            f"| {' / '.join(f'{v:.1f}' for v in t2i)} | {' / '.join(f'{v:.1f}' for v in i2t)} "
            f"| {a_i2t:.1f} / {a_t2i:.1f} |"
        )
    return 0


def _crops(
    teacher: Encoder,
    photos: list[Path],
    size: int,
    margin: int,
    count: int,
    args: argparse.Namespace,
) -> tuple[np.ndarray, np.ndarray] | None:
    """([photos, count, F] student features, [photos, count, D] teacher vectors) of ``count``
    random crops of each photo, as the recipe draws them (seed 0); None for no crops."""
    if not count:
        return None
    tower = FrozenImageNetTower(384, size).eval()
    features, targets = crop_rows(
        photos,
        count,
        (
            lambda x: torch.from_numpy(teacher.encode_images(x.numpy())),
            teacher.config.preprocessing,
            teacher.embed_dim,
        ),
        (tower.features, student_preprocessing(size, margin)),
        args.crop_min_scale,
        0,
        args.cache,
    )
    # crop_rows' rows run crop number by crop number: [count * photos] -> [photos, count]
    return (
        features.reshape(count, len(photos), -1).transpose(1, 0, 2),
        targets.reshape(count, len(photos), -1).transpose(1, 0, 2),
    )


def _scores(
    vectors: np.ndarray,
    t_img: np.ndarray,
    folds: list[np.ndarray],
    owner: np.ndarray,
    s_txt: np.ndarray,
    corpus: np.ndarray,
) -> tuple:
    """Means over the held-out folds (each fold's photos ranked among themselves)."""
    out = []
    for held in folds:
        caps = np.isin(owner, held)
        own = owner[caps][:, None] == held[None, :]
        img, txt = vectors[held], s_txt[caps]
        out.append(
            (
                float((img * t_img[held]).sum(axis=1).mean()),
                recall(txt @ img.T, own),
                recall(img @ txt.T, own.T),
                agreement(img @ corpus.T, t_img[held] @ corpus.T),
                agreement(corpus @ img.T, corpus @ t_img[held].T),
            )
        )
    cos = float(np.mean([o[0] for o in out]))
    t2i = list(np.mean([o[1] for o in out], axis=0))
    i2t = list(np.mean([o[2] for o in out], axis=0))
    return (cos, t2i, i2t, float(np.mean([o[3] for o in out])), float(np.mean([o[4] for o in out])))


if __name__ == "__main__":
    raise SystemExit(main())
