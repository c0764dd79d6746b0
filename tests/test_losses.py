import math

import pytest
import torch

from kssgan.data.labels import LabelSpec
from kssgan.losses import (
    contrastive_loss,
    domain_accuracy,
    domain_classification_loss,
    gradient_penalty,
    siamese_similarity,
)


class LinearCritic(torch.nn.Module):
    """D(x) = <w, x>: its input gradient is w everywhere, so GP = (‖w‖ − 1)² exactly."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1)


@pytest.mark.parametrize("scale", [0.5, 1.0, 3.0])
def test_gradient_penalty_matches_analytic_value(scale: float) -> None:
    torch.manual_seed(0)
    w = torch.randn(1, 3, 8, 8)
    w = w / w.norm() * scale
    critic = LinearCritic(w)
    gp = gradient_penalty(critic, torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8))
    assert gp.item() == pytest.approx((scale - 1) ** 2, rel=1e-5, abs=1e-6)


def test_gradient_penalty_is_exact_under_bf16_autocast() -> None:
    torch.manual_seed(0)
    w = torch.randn(1, 3, 16, 16) * 0.37  # a norm that bf16 could not represent exactly
    critic = LinearCritic(w)
    real, fake = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    expected = (w.norm().item() - 1) ** 2
    with torch.autocast("cpu", dtype=torch.bfloat16):
        gp = gradient_penalty(critic, real.bfloat16(), fake.bfloat16())
    assert gp.dtype == torch.float32
    assert gp.item() == pytest.approx(expected, rel=1e-5)


def test_gradient_penalty_reaches_the_critic_parameters() -> None:
    critic = LinearCritic(torch.full((1, 3, 4, 4), 0.5))  # ‖w‖ = 0.5·√48 ≈ 3.46
    gp = gradient_penalty(critic, torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4))
    gp.backward()
    norm = math.sqrt(48) * 0.5
    # d/dw (‖w‖ − 1)² = 2(‖w‖ − 1) w/‖w‖
    expected = 2 * (norm - 1) * 0.5 / norm
    assert torch.allclose(critic.w.grad, torch.full_like(critic.w, expected), rtol=1e-5)


def test_siamese_similarity_bounds_and_gradient() -> None:
    f = torch.nn.functional.normalize(torch.randn(5, 8), dim=1)
    assert torch.allclose(siamese_similarity(f, f), torch.ones(5))
    assert torch.allclose(siamese_similarity(f, -f), torch.zeros(5), atol=1e-6)
    g = torch.nn.functional.normalize(torch.randn(5, 8), dim=1).requires_grad_(True)
    s = siamese_similarity(f, g)
    assert ((s >= 0) & (s <= 1)).all()
    s.sum().backward()
    assert torch.allclose(g.grad, 0.5 * f)  # ∂S/∂f_b = ½ f_a


def test_contrastive_loss_pulls_same_and_pushes_different() -> None:
    a = torch.tensor([[1.0, 0.0]])
    b = torch.tensor([[0.0, 1.0]])  # distance √2
    assert contrastive_loss(a, a, torch.ones(1)).item() == 0.0
    assert contrastive_loss(a, b, torch.ones(1)).item() == pytest.approx(2.0)
    assert contrastive_loss(a, b, torch.zeros(1), margin=1.0).item() == 0.0  # beyond the margin
    assert contrastive_loss(a, a, torch.zeros(1), margin=1.0).item() == pytest.approx(1.0)


def test_domain_loss_is_ce_per_onehot_field_plus_bce_for_binary() -> None:
    spec = LabelSpec.build(3, {"expression": ["happy", "sad"]}, ["male"])
    target = torch.from_numpy(spec.encode_many([{"group": 2, "expression": "sad", "male": 1}]))
    logits = torch.tensor([[0.1, 0.2, 0.3, 1.0, -1.0, 0.5]])
    ce = torch.nn.functional.cross_entropy
    expected = (
        ce(logits[:, :3], torch.tensor([2]))
        + ce(logits[:, 3:5], torch.tensor([1]))
        + torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 5:], torch.ones(1, 1))
    )
    assert domain_classification_loss(logits, target, spec).item() == pytest.approx(expected.item(), rel=1e-6)
    assert domain_accuracy(logits, target, spec).item() == 1.0
    assert domain_accuracy(logits, target, spec, "expression").item() == 0.0


def test_edge_l1_charges_missing_edges_and_ignores_a_brightness_shift() -> None:
    import kornia

    from kssgan.losses import edge_l1

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert edge_l1(x, x).item() == 0.0
    assert edge_l1(x + 0.3, x).item() < 1e-5  # a constant offset has no edges
    blurred = kornia.filters.gaussian_blur2d(x, (5, 5), (1.5, 1.5))
    assert edge_l1(blurred, x).item() > 1.0  # the blur lost the pixel-level edges of noise
