"""Building a model's surrogate faces from its prepared dataset (see :mod:`kssgan.surrogates`).

The surrogate of a group is built from *every* prepared photo of the group's identities (all
splits: the data holder releases all of them), un-augmented, at the model's resolution. Which
group's mean each group receives is :func:`kssgan.surrogates.assign_surrogates` on the grouping's
recogniser centroids, within the strata of ``surrogate_match`` (e.g. gender).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import torch

from kssgan.surrogates import assign_surrogates, group_means, medoid_rows

#: How often ``synthetic_pool`` is doubled when too few drawn faces qualify before it is an error.
POOL_DOUBLINGS = 2


def group_strata(manifest: Any, identity_to_group: dict[str, int], num_groups: int, column: str) -> list[str]:
    """Majority value of manifest ``column`` among each group's photos."""
    if column not in manifest.columns:
        raise KeyError(f"surrogate_match: {column!r} is not a manifest column; columns: {list(manifest.columns)}")
    votes: list[Counter] = [Counter() for _ in range(num_groups)]
    for ident, value in zip(manifest["identity"].astype(str), manifest[column].astype(str), strict=True):
        votes[identity_to_group[ident]][value] += 1
    return [v.most_common(1)[0][0] if v else "" for v in votes]


def _grouped_manifest(data: Any) -> Any:
    """The manifest rows of the grouped identities (strangers and ungrouped rows left out)."""
    return data.manifest[data.manifest["identity"].astype(str).isin(data.groups.identity_to_group)]


def group_kind_codes(datamodule: Any, column: str) -> torch.Tensor:
    """Each group's majority value of ``column`` (:func:`group_strata`) as a code, 0.. in sorted
    order of the values (``surrogate_mix: kind``)."""
    if datamodule is None or not hasattr(datamodule, "prepared"):
        raise ValueError("surrogate_mix=kind needs a FaceDataModule (its manifest holds each group's kind)")
    data = datamodule.prepared
    strata = group_strata(_grouped_manifest(data), data.groups.identity_to_group, data.groups.num_groups, column)
    values = sorted(set(strata))
    return torch.tensor([values.index(s) for s in strata], dtype=torch.long)


def build_surrogate_bank(model: Any, datamodule: Any) -> dict[str, Any]:
    """Fill ``model.surrogates`` from ``datamodule.prepared``; returns what was done (for logs)."""
    if datamodule is None or not hasattr(datamodule, "prepared"):
        raise ValueError(
            "generator_input=surrogate needs a FaceDataModule (its prepared dataset builds the surrogates)"
        )
    data = datamodule.prepared
    spec, size = model.spec, int(model.hparams.image_size)
    groups = data.groups
    manifest = _grouped_manifest(data)
    field = model.surrogate_field
    values = list(spec.field(field).values) if field else [""]
    if model.hparams.get("surrogate_images", "all") == "synthetic":  # a drawn face per group: no photo read
        from kssgan.data.synthetic_surrogates import synthetic_surrogates

        match = model.hparams.surrogate_match
        strata = group_strata(manifest, groups.identity_to_group, spec.num_groups, match) if match else None
        pool = int(model.hparams.synthetic_pool)
        for attempt in range(POOL_DOUBLINGS + 1):  # too few qualifying faces: draw twice as many
            try:
                faces, record = synthetic_surrogates(
                    data, spec.num_groups, len(values), size, model.hparams.synthetic_seed, pool << attempt,
                    strata, model.hparams.get("synthetic_choice", "kind"), groups.identity_to_group,
                    model.hparams.get("synthetic_context", "drawn"),
                )  # fmt: skip
                break
            except ValueError as err:
                if attempt == POOL_DOUBLINGS or "raise model.synthetic_pool" not in str(err):
                    raise
        record["pool"] = pool << attempt
        identity = torch.arange(spec.num_groups)
        model.surrogates.fill(faces.to(model.surrogates.faces.device), identity.to(model.device))
        return {"images": len(faces), "fallbacks": [], "source_group": identity.tolist(), "strata": strata} | record
    images = data.load_crops(manifest["crop"].tolist(), size)
    group = torch.tensor([groups.group_of(i) for i in manifest["identity"].astype(str)], dtype=torch.long)
    if field:
        value = torch.tensor([values.index(str(v)) for v in manifest[field]], dtype=torch.long)
    else:
        value = torch.zeros(len(manifest), dtype=torch.long)
    if model.hparams.get("surrogate_images", "all") == "medoid":  # one face per member and value
        rows = medoid_rows(images, manifest["identity"].astype(str).tolist(), value)
        images, group, value = images[rows], group[rows], value[rows]
    means, fallbacks = group_means(images, group, value, spec.num_groups, len(values))
    match = model.hparams.surrogate_match
    strata = group_strata(manifest, groups.identity_to_group, spec.num_groups, match) if match else None
    source = assign_surrogates(groups.centroids, model.hparams.surrogate_assignment, strata)
    model.surrogates.fill(means.to(model.surrogates.faces.device), torch.from_numpy(source).to(model.device))
    return {"images": len(images), "fallbacks": fallbacks, "source_group": source.tolist(), "strata": strata}
