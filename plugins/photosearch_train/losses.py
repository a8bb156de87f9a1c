"""The recipe's losses, each a small function on L2-normalised embeddings [N, D].

Names follow MoTIS (Ren & Zhu, 2022): L_t2v/L_v2t (InfoNCE, eq. 1), L_v2v/L_t2t (intra-modal
contrastive distillation, eqs. 2-3), KD (KL between matching distributions) and L_HN (InfoNCE
whose denominator also holds negatives mined from the whole corpus).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def info_nce(queries: torch.Tensor, keys: torch.Tensor, temperature: float) -> torch.Tensor:
    """-1/N sum_i log softmax_j(q_i . k_j / tau)[i]: row i's positive is key i."""
    logits = queries @ keys.T / temperature
    return F.cross_entropy(logits.float(), torch.arange(len(queries), device=queries.device))


def clip_loss(texts: torch.Tensor, images: torch.Tensor, temperature: float) -> torch.Tensor:
    """L_t2v + L_v2t for a batch of matching (text_i, image_i) pairs."""
    return info_nce(texts, images, temperature) + info_nce(images, texts, temperature)


def intra_modal_contrastive(
    student: torch.Tensor, teacher: torch.Tensor, temperature: float
) -> torch.Tensor:
    """L_v2v / L_t2t: the student's embedding of x_i must pick the teacher's embedding of x_i
    among the teacher's embeddings of the batch."""
    return info_nce(student, teacher, temperature)


def mse_distillation(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Stage-1 ablation: mean over the batch of the squared distance ||s_i - t_i||^2."""
    return (student.float() - teacher.float()).pow(2).sum(dim=-1).mean()


def cosine_distance(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean of 1 - cos(s_i, t_i) over the batch (unit vectors): pulls the student onto the
    teacher's absolute position, which the contrastive terms leave free (they only rank)."""
    return (1.0 - (student.float() * teacher.float()).sum(dim=-1)).mean()


def matching_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float
) -> torch.Tensor:
    """KL(p_teacher || p_student) of the row-wise matching distributions softmax(logits / tau),
    averaged over rows (Hinton-style response distillation)."""
    log_p_student = F.log_softmax(student_logits.float() / temperature, dim=-1)
    log_p_teacher = F.log_softmax(teacher_logits.float() / temperature, dim=-1)
    return (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=-1).mean()


def matching_kd(
    student_texts: torch.Tensor,
    student_images: torch.Tensor,
    teacher_texts: torch.Tensor,
    teacher_images: torch.Tensor,
    temperature: float,
) -> torch.Tensor:
    """KD term: KL of the text->image and image->text matching distributions of the batch."""
    s = student_texts @ student_images.T
    t = teacher_texts @ teacher_images.T
    return matching_kl(s, t, temperature) + matching_kl(s.T, t.T, temperature)


def hard_negative_nce(
    queries: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor, temperature: float
) -> torch.Tensor:
    """L_HN: InfoNCE of query i against the batch's keys plus its own mined negatives.

    ``negatives`` is [N, K, D]: K extra keys for each query (never its positive).
    """
    in_batch = queries @ positives.T  # [N, N]
    mined = torch.einsum("nd,nkd->nk", queries, negatives)  # [N, K]
    logits = torch.cat([in_batch, mined], dim=1) / temperature
    return F.cross_entropy(logits.float(), torch.arange(len(queries), device=queries.device))
