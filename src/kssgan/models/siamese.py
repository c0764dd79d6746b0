"""Siamese embedding network (Koch et al., 2015) used as kSS-GAN's similarity arbitrator.

Both branches share one :class:`SiameseNet`; it maps an image to an L2-normalised feature ``f``.
The paper's feature similarity, eq. (2), is ``S(f_a, f_b) = ½ (1 + f_aᵀ f_b)`` (see
:func:`kssgan.losses.siamese_similarity`), in [0, 1]. The net is trained with a contrastive loss.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class SiameseNet(nn.Module):
    def __init__(self, embed_dim: int = 128, conv_dim: int = 32, depth: int = 4, channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        curr_in, curr = channels, conv_dim
        for _ in range(depth):
            layers += [
                nn.Conv2d(curr_in, curr, 4, 2, 1),
                nn.GroupNorm(min(8, curr), curr),
                nn.LeakyReLU(0.2),
            ]
            curr_in, curr = curr, min(curr * 2, 512)
        self.features = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.proj = nn.Linear(curr_in, embed_dim)
        self.embed_dim = embed_dim

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(self.proj(self.features(x)).float(), dim=1)
