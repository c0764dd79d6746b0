"""StarGAN generator G(x, c) (Choi et al., 2018), as used by kSS-GAN.

7×7 conv → 2 strided down-sampling convs → N residual blocks → 2 up-sampling stages → 7×7 conv →
tanh. The domain label ``c`` is tiled spatially and concatenated to the image; with
``group_embed_dim > 0`` its group block is first replaced by a learned embedding
(:mod:`kssgan.models.conditioning`), so the input width does not grow with the number of groups.
Instance norm uses ``track_running_stats=False`` so that train and eval modes compute the same thing
(StarGAN's released code tracks running stats, which makes eval-mode outputs drift).

Two documented options beyond StarGAN:

* ``upsample="resize"`` / ``"bilinear"``: nearest-neighbour (or bilinear) resize then a 3×3 conv
  instead of a 4×4 transposed conv.
  Transposed convs whose kernel is not divisible by their stride leave the regular checkerboard
  texture seen in early kSS-GAN outputs (Odena et al., 2016); resize-convolution cannot.
* ``residual=True``: the output is ``clamp(x + r)``, with the last conv initialised to zero, so the
  generator starts as the identity map and learns an *edit* of its input. With a face as input, the
  output is a face from step 0 and training only has to add what makes it natural.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from kssgan.models.conditioning import GroupEmbedding, check_conditioning


def _norm(channels: int) -> nn.InstanceNorm2d:
    return nn.InstanceNorm2d(channels, affine=True, track_running_stats=False)


class ResidualBlock(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _norm(channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False),
            _norm(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.body(x)


def tile_label(label: Tensor, height: int, width: int) -> Tensor:
    """(B, C) label → (B, C, H, W) constant maps."""
    return label.view(label.size(0), label.size(1), 1, 1).expand(-1, -1, height, width)


UPSAMPLING = ("transposed", "resize", "bilinear")


def _upsample(cin: int, cout: int, mode: str) -> list[nn.Module]:
    if mode == "transposed":
        return [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)]
    interp = nn.Upsample(scale_factor=2, mode="nearest" if mode == "resize" else "bilinear", align_corners=None)
    return [interp, nn.Conv2d(cin, cout, 3, 1, 1, bias=False)]


class Generator(nn.Module):
    """StarGAN generator.

    Args:
        label_dim: length of the domain label vector (0: unconditional).
        conv_dim: channels of the first layer (64 in StarGAN).
        repeat_num: number of residual blocks (6 in StarGAN).
        image_size: side of the square input; must be divisible by 4.
        channels: image channels.
        upsample: ``transposed`` (StarGAN), ``resize`` (nearest resize + conv, no checkerboard) or
            ``bilinear`` (bilinear resize + conv: no checkerboard and no blocky edits).
        residual: learn an edit of the input (``clamp(x + r)``, zero-initialised ``r``).
        num_groups: size of the label's leading group block (needed by the embedding form).
        group_embed_dim: 0 (default) tiles the whole label, the paper's form; ``d > 0`` tiles a
            learned ``d``-vector of the group instead of its one-hot block.
    """

    def __init__(
        self,
        label_dim: int,
        conv_dim: int = 64,
        repeat_num: int = 6,
        image_size: int = 128,
        channels: int = 3,
        upsample: str = "transposed",
        residual: bool = False,
        num_groups: int = 0,
        group_embed_dim: int = 0,
    ) -> None:
        super().__init__()
        if label_dim < 0:
            raise ValueError(f"label_dim must be >= 0, got {label_dim}")
        if upsample not in UPSAMPLING:
            raise ValueError(f"upsample must be one of {UPSAMPLING}, got {upsample!r}")
        if image_size % 4 or image_size < 8:
            raise ValueError(f"image_size must be a multiple of 4 and >= 8 (two down-samplings), got {image_size}")
        check_conditioning(label_dim, num_groups, group_embed_dim)
        self.label_dim, self.image_size, self.residual = label_dim, image_size, residual
        self.group_embedding = GroupEmbedding(num_groups, group_embed_dim) if group_embed_dim else None
        cond_dim = label_dim - num_groups + group_embed_dim if group_embed_dim else label_dim
        layers: list[nn.Module] = [
            nn.Conv2d(channels + cond_dim, conv_dim, 7, 1, 3, bias=False),
            _norm(conv_dim),
            nn.ReLU(inplace=True),
        ]
        curr = conv_dim
        for _ in range(2):
            layers += [nn.Conv2d(curr, curr * 2, 4, 2, 1, bias=False), _norm(curr * 2), nn.ReLU(inplace=True)]
            curr *= 2
        layers += [ResidualBlock(curr) for _ in range(repeat_num)]
        for _ in range(2):
            layers += [*_upsample(curr, curr // 2, upsample), _norm(curr // 2), nn.ReLU(inplace=True)]
            curr //= 2
        last = nn.Conv2d(curr, channels, 7, 1, 3, bias=False)
        if residual:
            nn.init.zeros_(last.weight)
            layers += [last]
        else:
            layers += [last, nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: Tensor, label: Tensor) -> Tensor:
        if label.dim() != 2 or label.size(1) != self.label_dim:
            raise ValueError(f"label must be (B, {self.label_dim}), got {tuple(label.shape)}")
        if self.label_dim == 0:  # unconditional (surrogate mode without kept attributes)
            out = self.main(x)
        else:
            cond = label.to(x.dtype) if self.group_embedding is None else self.group_embedding(label.to(x.dtype))
            out = self.main(torch.cat([x, tile_label(cond, x.size(2), x.size(3))], dim=1))
        return (x + out).clamp(-1.0, 1.0) if self.residual else out
