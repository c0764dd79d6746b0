"""Which label the generator is trained towards: tensor forms of LabelSpec operations.

* :func:`permuted_targets` — StarGAN's (and the paper's) sampler: the labels of the batch in a
  random order. A target takes another sample's group *and* its expression/attributes.
* :func:`release_targets` — what ``kssgan deidentify`` asks for: the source's own attributes, only
  the group changed (to a random other group, or kept with probability ``own_group_share``). Training
  on it practises the release condition, G(x, c_release).
"""

from __future__ import annotations

import torch
from torch import Tensor

from kssgan.data.labels import LabelSpec


def field_index(labels: Tensor, spec: LabelSpec, name: str) -> Tensor:
    """Index of the one-hot field ``name`` in every row (B,)."""
    field = spec.field(name)
    if field.kind != "onehot":
        raise ValueError(f"label field {name!r} is binary, not one-hot")
    return labels[:, spec.slices()[name]].argmax(dim=1)


def set_onehot(labels: Tensor, spec: LabelSpec, name: str, index: Tensor) -> Tensor:
    """Copy of ``labels`` with the one-hot field ``name`` set to ``index`` in every row."""
    sl = spec.slices()[name]
    out = labels.clone()
    out[:, sl] = 0
    out[torch.arange(labels.size(0), device=labels.device), sl.start + index.to(labels.device)] = 1
    return out


def without_field(labels: Tensor, spec: LabelSpec, name: str = "group") -> Tensor:
    """The label with field ``name`` removed (B, dim − size): what is *kept* from the source."""
    sl = spec.slices()[name]
    return torch.cat([labels[:, : sl.start], labels[:, sl.stop :]], dim=1)


def permuted_targets(labels: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """StarGAN's target sampling: the labels of the batch in a random order."""
    perm = torch.randperm(labels.size(0), generator=generator).to(labels.device)
    return labels[perm]


def release_targets(
    labels: Tensor, spec: LabelSpec, own_group_share: float = 0.5, generator: torch.Generator | None = None
) -> Tensor:
    """Keep every attribute; set the group to the row's own with probability ``own_group_share``,
    else to a uniformly drawn *other* group."""
    g = field_index(labels, spec, "group")
    n = spec.num_groups
    if n < 2:
        return labels.clone()
    shift = torch.randint(1, n, (labels.size(0),), generator=generator).to(labels.device)
    other = (g + shift) % n
    own = torch.rand(labels.size(0), generator=generator).to(labels.device) < own_group_share
    return set_onehot(labels, spec, "group", torch.where(own, g, other))
