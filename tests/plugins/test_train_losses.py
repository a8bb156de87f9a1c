"""The trainer's losses, hard-negative miner and text negatives against hand-computed values."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from photosearch_train import losses  # noqa: E402
from photosearch_train.hard_negatives import HardNegativeMiner  # noqa: E402
from photosearch_train.text_negatives import negatives_for, swap_words  # noqa: E402

E = math.e


def t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_info_nce_by_hand():
    q, k = t([[1, 0], [0, 1]]), t([[1, 0], [0.6, 0.8]])
    # row 0 logits [1, 0.6] -> -log(e/(e+e^.6)); row 1 logits [0, 0.8] -> -log(e^.8/(1+e^.8))
    expected = 0.5 * (-math.log(E / (E + E**0.6)) - math.log(E**0.8 / (1 + E**0.8)))
    assert losses.info_nce(q, k, 1.0).item() == pytest.approx(expected, rel=1e-6)
    # temperature divides the logits
    expected_half = 0.5 * (-math.log(E**2 / (E**2 + E**1.2)) - math.log(E**1.6 / (1 + E**1.6)))
    assert losses.info_nce(q, k, 0.5).item() == pytest.approx(expected_half, rel=1e-6)


def test_clip_loss_is_both_directions():
    text, image = t([[1, 0], [0, 1]]), t([[1, 0], [0.6, 0.8]])
    t2v = losses.info_nce(text, image, 1.0).item()
    v2t = losses.info_nce(image, text, 1.0).item()
    # image->text: row 0 logits [1, 0]; row 1 logits [0.6, 0.8]
    by_hand = 0.5 * (-math.log(E / (E + 1)) - math.log(E**0.8 / (E**0.6 + E**0.8)))
    assert v2t == pytest.approx(by_hand, rel=1e-6)
    assert losses.clip_loss(text, image, 1.0).item() == pytest.approx(t2v + v2t, rel=1e-6)


def test_intra_modal_contrastive_picks_own_teacher_vector():
    student, teacher = t([[1, 0], [0, 1]]), t([[0, 1], [1, 0]])  # every student row is wrong
    expected = -math.log(1 / (1 + E))
    assert losses.intra_modal_contrastive(student, teacher, 1.0).item() == pytest.approx(expected)


def test_mse_distillation_by_hand():
    assert losses.mse_distillation(t([[1, 0], [0, 1]]), t([[0, 1], [0, 1]])).item() == 1.0


def test_matching_kl_by_hand():
    s, te = t([[0.0, 1.0]]), t([[1.0, 0.0]])
    p = np.array([E, 1]) / (E + 1)  # teacher distribution
    q = np.array([1, E]) / (E + 1)  # student distribution
    expected = float((p * np.log(p / q)).sum())
    assert losses.matching_kl(s, te, 1.0).item() == pytest.approx(expected, rel=1e-5)
    assert losses.matching_kl(te, te, 1.0).item() == pytest.approx(0.0, abs=1e-7)


def test_matching_kd_is_zero_when_student_equals_teacher():
    x, y = torch.nn.functional.normalize(torch.randn(4, 3), dim=1), torch.randn(4, 3)
    y = torch.nn.functional.normalize(y, dim=1)
    assert losses.matching_kd(x, y, x, y, 0.1).item() == pytest.approx(0.0, abs=1e-6)
    assert losses.matching_kd(x, y, y, x, 0.1).item() > 0.01


def test_hard_negative_nce_adds_mined_columns():
    q, pos = t([[1, 0]]), t([[1, 0]])
    negs = t([[[0, 1], [0.6, 0.8]]])  # [1, 2, 2]
    expected = -math.log(E / (E + 1 + E**0.6))
    assert losses.hard_negative_nce(q, pos, negs, 1.0).item() == pytest.approx(expected)


def test_miner_returns_true_top_k_without_positives():
    rng = np.random.default_rng(0)
    corpus = rng.standard_normal((60, 8)).astype(np.float32)
    corpus /= np.linalg.norm(corpus, axis=1, keepdims=True)
    owners = np.repeat(np.arange(12), 5)  # 12 images x 5 captions
    queries = corpus[::5] + 0.1 * rng.standard_normal((12, 8)).astype(np.float32)
    mined = HardNegativeMiner(corpus, owners).mine(queries, np.arange(12), k=4)
    for i, row in enumerate(mined):
        scores = corpus @ queries[i]
        scores[owners == i] = -np.inf
        assert list(row) == list(np.argsort(-scores)[:4])
        assert not set(row) & set(np.flatnonzero(owners == i))


def test_miner_refuses_too_small_corpus():
    with pytest.raises(ValueError, match="too small"):
        HardNegativeMiner(np.eye(3, dtype=np.float32), np.array([0, 0, 1])).mine(
            np.eye(3, dtype=np.float32)[:1], np.array([0]), k=2
        )


def test_text_negatives_swap_words_reproducibly():
    caption = "A black dog runs on the beach"
    swapped = swap_words(caption, random.Random(1))
    assert swapped is not None and swapped != caption
    assert len(swapped.split()) == len(caption.split())
    assert negatives_for([caption, "zzz qqq"], seed=3) == negatives_for([caption, "zzz qqq"], 3)
    assert negatives_for(["zzz qqq"], seed=3) == [None]
