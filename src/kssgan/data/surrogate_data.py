"""Building a model's surrogate faces from its prepared dataset (see :mod:`kssgan.surrogates`).

The surrogate of a group is built from *every* prepared photo of the group's identities (all
splits: the data holder releases all of them), un-augmented, at the model's resolution. Which
group's mean each group receives is :func:`kssgan.surrogates.assign_surrogates` on the grouping's
recogniser centroids, within the strata of ``surrogate_match`` (e.g. gender).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import cv2
import numpy as np
import torch

from kssgan.surrogates import assign_surrogates, group_means


def load_crops(root: Any, crops: list[str], image_size: int) -> torch.Tensor:
    """Prepared crops as (N, 3, S, S) float in [-1, 1]."""
    out = np.empty((len(crops), image_size, image_size, 3), np.uint8)
    for i, rel in enumerate(crops):
        img = cv2.imread(str(root / rel), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read prepared crop {root / rel}; re-run `kssgan prepare`")
        img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
        if img.shape[0] != image_size:
            interp = cv2.INTER_AREA if img.shape[0] > image_size else cv2.INTER_CUBIC
            img = cv2.resize(img, (image_size, image_size), interpolation=interp)
        out[i] = img
    return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


def group_strata(manifest: Any, identity_to_group: dict[str, int], num_groups: int, column: str) -> list[str]:
    """Majority value of manifest ``column`` among each group's photos."""
    if column not in manifest.columns:
        raise KeyError(f"surrogate_match: {column!r} is not a manifest column; columns: {list(manifest.columns)}")
    votes: list[Counter] = [Counter() for _ in range(num_groups)]
    for ident, value in zip(manifest["identity"].astype(str), manifest[column].astype(str), strict=True):
        votes[identity_to_group[ident]][value] += 1
    return [v.most_common(1)[0][0] if v else "" for v in votes]


def build_surrogate_bank(model: Any, datamodule: Any) -> dict[str, Any]:
    """Fill ``model.surrogates`` from ``datamodule.prepared``; returns what was done (for logs)."""
    if datamodule is None or not hasattr(datamodule, "prepared"):
        raise ValueError(
            "generator_input=surrogate needs a FaceDataModule (its prepared dataset builds the surrogates)"
        )
    data = datamodule.prepared
    spec, size = model.spec, int(model.hparams.image_size)
    groups = data.groups
    manifest = data.manifest[data.manifest["identity"].astype(str).isin(groups.identity_to_group)]
    images = load_crops(data.root, manifest["crop"].tolist(), size)
    group = torch.tensor([groups.group_of(i) for i in manifest["identity"].astype(str)], dtype=torch.long)
    field = model.surrogate_field
    if field:
        values = list(spec.field(field).values)
        value = torch.tensor([values.index(str(v)) for v in manifest[field]], dtype=torch.long)
    else:
        values, value = [""], torch.zeros(len(manifest), dtype=torch.long)
    means, fallbacks = group_means(images, group, value, spec.num_groups, len(values))
    match = model.hparams.surrogate_match
    strata = group_strata(manifest, groups.identity_to_group, spec.num_groups, match) if match else None
    source = assign_surrogates(groups.centroids, model.hparams.surrogate_assignment, strata)
    model.surrogates.fill(means.to(model.surrogates.faces.device), torch.from_numpy(source).to(model.device))
    return {"images": len(manifest), "fallbacks": fallbacks, "source_group": source.tolist(), "strata": strata}
