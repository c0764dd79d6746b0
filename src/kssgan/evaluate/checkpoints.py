"""The checkpoints ``kssgan evaluate`` measures: loading them (each file once, its method named by
its ``rec_loss`` or by ``--method NAME=CKPT``), checking that a release set is framed like their
training crops, and translating a release set with one of them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kssgan.data.grouping import GroupAssignment
from kssgan.data.labels import manifest_records
from kssgan.evaluate.release import ReleaseSet
from kssgan.evaluate.results import CheckpointRecord, file_sha256

__all__ = ["ABLATION", "KSS_GAN", "LoadedModel", "check_framing", "load_checkpoint", "load_models", "translate_release"]

KSS_GAN = "kss-gan"
ABLATION = "stargan-l1"


@dataclass
class LoadedModel:
    path: str
    label: str
    k: int
    groups: GroupAssignment
    model: Any
    sha256: str = ""

    def record(self) -> CheckpointRecord:
        return CheckpointRecord(self.path, self.label, self.k, self.sha256, getattr(self.model, "prepare_info", None))


def load_checkpoint(path: str | Path) -> Any:
    """:func:`kssgan.system.load_kssgan` (``weights_only=True``); a bad file is one-line :class:`CheckpointError`."""
    from kssgan.safe_checkpoint import load_model

    return load_model(path)


def load_models(
    ckpts: Iterable[str], ablation_ckpts: Iterable[str] = (), methods: Iterable[str] = ()
) -> list[LoadedModel]:
    """``path`` or ``k3=path`` entries; the method name follows the checkpoint's ``rec_loss``.
    ``methods`` entries are ``NAME=path``: a row named NAME (e.g. ``kss-gan-paper``).

    One file (by sha256) is evaluated once: listing it again, under the same or another method, is
    an error rather than a report that shows one model as two methods."""
    out: list[LoadedModel] = []
    named = []
    for entry in methods:
        if "=" not in entry:
            raise ValueError(f"--method needs NAME=CHECKPOINT, got {entry!r}")
        name, path = entry.split("=", 1)
        named.append((path, name.strip()))
    for entry, forced in [(c, None) for c in ckpts] + [(c, ABLATION) for c in ablation_ckpts] + named:
        declared_k, path = None, entry
        if "=" in entry and not Path(entry).exists():
            key, path = entry.split("=", 1)
            declared_k = int(key.lstrip("kK"))
        if not Path(path).is_file():
            raise FileNotFoundError(f"checkpoint {path} not found")
        digest = file_sha256(path)
        twin = next((o for o in out if o.sha256 == digest), None)
        model = load_checkpoint(path)
        label = forced or (ABLATION if model.hparams.rec_loss == "l1" else KSS_GAN)
        if twin is not None:
            raise ValueError(
                f"{path} is the same checkpoint (sha256 {digest[:12]}…) as {twin.path}, already listed as {twin.label}"
                + ("" if twin.label == label else f"; one file cannot be evaluated as both {twin.label} and {label}")
            )
        if model.groups is None:
            raise ValueError(f"{path}: the checkpoint carries no groups (contract 2); it cannot be evaluated")
        groups = GroupAssignment.from_dict(model.groups)
        if declared_k is not None and declared_k != groups.k:
            raise ValueError(f"{path} was trained for k={groups.k}, not k={declared_k}")
        if any(o.label == label and o.k == groups.k for o in out):
            raise ValueError(f"two {label} checkpoints for k={groups.k}; give one per method and k")
        out.append(LoadedModel(path, label, groups.k, groups, model, digest))
    return out


def translate_release(model: Any, release: ReleaseSet, groups: GroupAssignment, batch_size: int) -> np.ndarray:
    """Each image translated to its own domain: its identity's group and its own attributes."""
    spec = model.spec
    records = manifest_records(spec, release.manifest, groups.group_of, str(release.root))
    labels = torch.from_numpy(spec.encode_many(records))
    outs = []
    with torch.no_grad():
        for s in range(0, len(release.images), batch_size):
            x = torch.from_numpy(release.images[s : s + batch_size]).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
            y = model.translate(x, labels[s : s + batch_size]).float().clamp(-1, 1)
            outs.append(((y + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy())
    return np.concatenate(outs)


def check_framing(lm: LoadedModel, release: ReleaseSet) -> None:
    """The release crops must be framed like the checkpoint's training crops (its ``prepare`` record)."""
    prep = getattr(lm.model, "prepare_info", None) or {}
    trained = prep.get("margin")
    if trained is not None and abs(float(trained) - release.margin) > 1e-9:
        raise ValueError(
            f"{lm.path} was trained on faces prepared with margin {trained} (dataset {prep.get('dataset', '?')}), "
            f"but {release.root} was prepared with margin {release.margin}; evaluate it on data prepared the same way"
        )
