"""Group conditioning that does not grow with the number of groups.

The domain label keeps its layout (``LabelSpec``: the group as a one-hot block first, then the
attributes), so data, checkpoints, ``deidentify`` and ONNX exports see the same ``(B, C)`` label
either way. What changes is how G and D use the group block:

* ``onehot`` (the paper's exact form, StarGAN's): the whole label is tiled over the image and the
  critic predicts every group with its own filter. G's input and D's group head grow with the
  number of groups G: at CelebA scale (~3,400 groups at k = 3) that is ~3,400 input channels and a
  ~55 M-parameter head. Kept for small k.
* ``embedding`` (default): the group block selects a learned vector ``E_g`` (``one-hot @ E``, so a
  one-hot picks one row and a soft label mixes rows), and G sees ``E_g ⊕ attributes`` tiled: a
  constant ``d + A`` channels. The critic predicts a ``d``-vector ``h`` and scores group g as
  ``⟨h, E'_g⟩ + b_g`` (an embedding classifier), so its head is ``d`` filters plus a ``G × d`` table.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

GroupConditioning = Literal["embedding", "onehot"]
CONDITIONING_CHOICES = ("embedding", "onehot")


def check_conditioning(label_dim: int, num_groups: int, group_embed_dim: int) -> None:
    """``group_embed_dim > 0`` selects the embedding form; it needs the group block's size."""
    if group_embed_dim < 0:
        raise ValueError(f"group_embed_dim must be >= 0, got {group_embed_dim}")
    if group_embed_dim and not 1 <= num_groups <= label_dim:
        raise ValueError(f"group embedding needs 1 <= num_groups <= label_dim ({label_dim}), got {num_groups}")


class GroupEmbedding(nn.Module):
    """``(B, C)`` label → ``(B, d + C - G)``: the group block replaced by its learned embedding."""

    def __init__(self, num_groups: int, dim: int) -> None:
        super().__init__()
        self.num_groups = num_groups
        self.table = nn.Embedding(num_groups, dim)
        nn.init.normal_(self.table.weight, std=1.0)

    def forward(self, label: Tensor) -> Tensor:
        group, rest = label[:, : self.num_groups], label[:, self.num_groups :]
        # one-hot @ E is the embedding lookup for a one-hot row (and a mix for a soft one); a matmul
        # exports to ONNX and keeps the label a plain float tensor everywhere
        emb = group.to(self.table.weight.dtype) @ self.table.weight
        return torch.cat([emb.to(label.dtype), rest], dim=1)


class GroupClassifier(nn.Module):
    """Critic head output ``(B, d + A)`` → domain logits ``(B, G + A)``: ``⟨h, E_g⟩ + b_g`` for the
    groups, the attribute logits passed through."""

    def __init__(self, num_groups: int, dim: int) -> None:
        super().__init__()
        self.dim = dim
        self.table = nn.Embedding(num_groups, dim)
        nn.init.normal_(self.table.weight, std=dim**-0.5)
        self.bias = nn.Parameter(torch.zeros(num_groups))

    def forward(self, h: Tensor) -> Tensor:
        feat, rest = h[:, : self.dim], h[:, self.dim :]
        logits = feat @ self.table.weight.to(feat.dtype).t() + self.bias.to(feat.dtype)
        return torch.cat([logits, rest], dim=1)
