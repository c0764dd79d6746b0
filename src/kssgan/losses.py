"""kSS-GAN losses, plain PyTorch (equations refer to Pan et al.).

- :func:`gradient_penalty`: WGAN-GP, computed in fp32 even under autocast.
- :func:`siamese_similarity`: eq. (2), S = ½(1 + f_aᵀ f_b) of L2-normalised features.
- :func:`contrastive_loss`: trains the Siamese net (Hadsell et al. 2006 form).
- :func:`domain_classification_loss`: eqs. (5)/(6), per label field: cross-entropy for one-hot
  fields, binary cross-entropy for binary attributes.
"""

from __future__ import annotations

from collections.abc import Callable

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


def domain_classification_loss(logits: Tensor, target: Tensor, spec: LabelSpec) -> Tensor:
    """Sum over label fields of the mean per-field loss (CE for one-hot, BCE for binary)."""
    logits, target = logits.float(), target.float()
    total = logits.new_zeros(())
    for f, sl in zip(spec.fields, spec.slices().values(), strict=True):
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
