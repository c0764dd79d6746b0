"""PatchGAN critic with an auxiliary domain classifier (StarGAN's discriminator).

Strided 4×4 convs with LeakyReLU(0.01) and no normalisation (WGAN-GP forbids batch norm). The
number of strided convs is derived from the image size so that the last feature map is
``final_size × final_size`` (4 by default) at every resolution: 64 px gets 4 layers, 128 px gets 5,
256 px 6. Heads: a 3×3 conv giving the real/fake patch map, and a conv spanning the final map
giving the domain logits. With ``group_embed_dim > 0`` that conv gives a ``d``-vector for the group
and the group logits are ``⟨h, E_g⟩ + b_g`` (:class:`~kssgan.models.conditioning.GroupClassifier`),
so the head does not grow with the number of groups; the logits keep the label's layout.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from kssgan.models.conditioning import GroupClassifier, check_conditioning


class Critic(nn.Module):
    def __init__(
        self,
        label_dim: int,
        image_size: int = 128,
        conv_dim: int = 64,
        final_size: int = 4,
        max_dim: int = 1024,
        channels: int = 3,
        num_groups: int = 0,
        group_embed_dim: int = 0,
    ) -> None:
        super().__init__()
        check_conditioning(label_dim, num_groups, group_embed_dim)
        if final_size < 1 or image_size % final_size:
            raise ValueError(f"image_size {image_size} is not a multiple of the critic's final_size {final_size}")
        ratio = image_size // final_size
        if ratio < 2 or ratio & (ratio - 1):
            raise ValueError(
                f"image_size / final_size must be a power of two >= 2, got {image_size}/{final_size}; "
                "use image sizes such as 32, 64, 128, 256"
            )
        self.num_strided = int(math.log2(ratio))
        layers: list[nn.Module] = [nn.Conv2d(channels, conv_dim, 4, 2, 1), nn.LeakyReLU(0.01)]
        curr = conv_dim
        for _ in range(self.num_strided - 1):
            nxt = min(curr * 2, max_dim)
            layers += [nn.Conv2d(curr, nxt, 4, 2, 1), nn.LeakyReLU(0.01)]
            curr = nxt
        self.main = nn.Sequential(*layers)
        self.src_head = nn.Conv2d(curr, 1, 3, 1, 1, bias=False)
        head_dim = label_dim - num_groups + group_embed_dim if group_embed_dim else label_dim
        self.cls_head = nn.Conv2d(curr, head_dim, final_size, 1, 0, bias=False)
        self.group_classifier = GroupClassifier(num_groups, group_embed_dim) if group_embed_dim else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Returns the patch map (B, 1, f, f) and domain logits (B, label_dim)."""
        h = self.main(x)
        cls = self.cls_head(h).flatten(1)
        return self.src_head(h), cls if self.group_classifier is None else self.group_classifier(cls)

    def score(self, x: Tensor) -> Tensor:
        """Only the real/fake patch map (what the gradient penalty differentiates)."""
        return self.src_head(self.main(x))
