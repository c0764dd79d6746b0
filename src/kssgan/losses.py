"""kSS-GAN losses, plain PyTorch (equations refer to Pan et al.).

- :func:`gradient_penalty`: WGAN-GP, computed in fp32 even under autocast.
- :func:`siamese_similarity`: eq. (2), S = ½(1 + f_aᵀ f_b) of L2-normalised features.
- :func:`contrastive_loss`: trains the Siamese net (Hadsell et al. 2006 form).
- :func:`domain_classification_loss`: eqs. (5)/(6), per label field: cross-entropy for one-hot
  fields, binary cross-entropy for binary attributes.
- :func:`similarity_hinge`: max(0, S − τ), the identity term that does not reward the antipode.
- :func:`group_consistency`: k-Same consistency, the spread of a group's output embeddings.
- :func:`low_frequency_l1`: L1 between block means (what keeps a surrogate's identity).
- :func:`edge_l1`: L1 between Laplacians (photographic edges where a plain L1 regresses to a blur).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from kssgan.data.labels import LabelSpec


def gradient_penalty(critic: Callable[[Tensor], Tensor], real: Tensor, fake: Tensor) -> Tensor:
    """E[(‖∇_x̂ D(x̂)‖₂ − 1)²] on random interpolates x̂ = εx + (1−ε)x̃ (Gulrajani et al., 2017).

    Autocast is disabled and inputs are promoted to fp32, so that the penalty — a second-order
    term — is exact under ``16-mixed``/``bf16-mixed`` training. The gradient is taken of the raw
    critic output (never of a scaled loss), so a GradScaler does not distort it.
    """
    real, fake = real.detach().float(), fake.detach().float()
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device, dtype=real.dtype)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    with torch.autocast(device_type=real.device.type, enabled=False):
        out = critic(x_hat).float()
        (grad,) = torch.autograd.grad(out, x_hat, grad_outputs=torch.ones_like(out), create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


def siamese_similarity(f_a: Tensor, f_b: Tensor) -> Tensor:
    """Eq. (2): S(f_a, f_b) = ½(1 + f_aᵀ f_b) for L2-normalised features; one value per row, in [0, 1]."""
    return 0.5 * (1.0 + (f_a.float() * f_b.float()).sum(dim=-1))


def contrastive_loss(f_a: Tensor, f_b: Tensor, same: Tensor, margin: float = 1.0) -> Tensor:
    """y·d² + (1−y)·max(0, m − d)², d the Euclidean distance of the (normalised) features."""
    d = (f_a.float() - f_b.float()).norm(dim=-1)
    same = same.float()
    return (same * d.pow(2) + (1 - same) * F.relu(margin - d).pow(2)).mean()


def domain_classification_loss(logits: Tensor, target: Tensor, spec: LabelSpec, skip: Sequence[str] = ()) -> Tensor:
    """Sum over label fields (except ``skip``) of the mean per-field loss (CE for one-hot, BCE for
    binary). Zero when no field is left."""
    logits, target = logits.float(), target.float()
    total = logits.new_zeros(())
    for f, sl in zip(spec.fields, spec.slices().values(), strict=True):
        if f.name in skip:
            continue
        if f.kind == "onehot":
            total = total + F.cross_entropy(logits[:, sl], target[:, sl].argmax(dim=1))
        else:
            total = total + F.binary_cross_entropy_with_logits(logits[:, sl], target[:, sl])
    return total


def domain_accuracy(logits: Tensor, target: Tensor, spec: LabelSpec, field: str = "group") -> Tensor:
    """Share of rows whose predicted value of ``field`` equals the target's."""
    sl = spec.slices()[field]
    if spec.field(field).kind == "onehot":
        return (logits[:, sl].argmax(1) == target[:, sl].argmax(1)).float().mean()
    return ((logits[:, sl] > 0).float() == target[:, sl]).float().mean()


def similarity_hinge(f_a: Tensor, f_b: Tensor, margin: float) -> Tensor:
    """max(0, S(f_a, f_b) − τ) per row: push the output's identity below the similarity ``margin``
    τ, and no further (minimising S itself drives features to −f(x), an "anti-face" that is still a
    one-to-one function of the source)."""
    return F.relu(siamese_similarity(f_a, f_b) - margin)


def group_consistency(embeddings: Tensor, groups: Tensor) -> Tensor:
    """k-Same consistency: mean squared distance of each L2-normalised embedding to its group's mean
    embedding (groups with one row in the batch contribute 0). 0 iff all members' outputs embed
    identically."""
    f = F.normalize(embeddings.float(), dim=-1)
    uniq, inv = torch.unique(groups, return_inverse=True)
    sums = torch.zeros(len(uniq), f.size(1), device=f.device).index_add_(0, inv, f)
    counts = torch.zeros(len(uniq), device=f.device).index_add_(0, inv, torch.ones_like(inv, dtype=f.dtype))
    means = sums / counts.unsqueeze(1)
    return (f - means[inv]).pow(2).sum(dim=1).mean()


def low_frequency_l1(a: Tensor, b: Tensor, size: int) -> Tensor:
    """L1 between ``size``×``size`` block means of two image batches: ties the coarse structure
    (where identity lives in a mean face) and leaves fine detail free."""
    return (F.adaptive_avg_pool2d(a.float(), size) - F.adaptive_avg_pool2d(b.float(), size)).abs().mean()


def edge_l1(a: Tensor, b: Tensor) -> Tensor:
    """L1 between the 3×3 Laplacians of two image batches (the edge loss of image restoration,
    e.g. MPRNet). A paired L1 alone is minimised by the conditional median, which is soft where the
    input is ambiguous; this term charges the missing edges of ``a`` against those of ``b``."""
    lap = kornia.filters.laplacian
    return (lap(a.float(), 3, normalized=False) - lap(b.float(), 3, normalized=False)).abs().mean()
