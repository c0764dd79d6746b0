"""The k-Same step of ``kssgan prepare``: group the identities the model trains on
(``groups.json``), rebuild that grouping for another k (``--regroup``), and give identities their
group (``closed``, or ``nearest`` for open-set ones)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kssgan.data.grouping import GroupAssignment, GroupingError, KSameGrouping
from kssgan.data.prepare.store import atomic_write_text
from kssgan.data.prepared import PreparedDataset

#: The kind features :func:`kind_features` can group on beside identity.
KIND_FEATURES = ("tone", "age")
#: One unit of each kind feature: ΔE76 10 of mean skin colour, 10 years of age. An L2-normalised
#: embedding's distances run 0–2, so a weight of 0.5 makes 10 ΔE (or 10 years) weigh as a distance
#: of 0.5 between two faces.
TONE_UNIT, AGE_UNIT = 10.0, 10.0


def photo_tones(root: str | Path, rows: pd.DataFrame, image_size: int = 64) -> np.ndarray:
    """N×3 mean CIELAB skin colour of each of ``rows``' crops (the inner-face ellipse of
    :func:`kssgan.data.synthetic_surrogates.skin_tones`), read once."""
    from kssgan.data.synthetic_surrogates import skin_tones

    data = PreparedDataset.open(root, groups=None, text=True)
    crops = data.read_crops(rows["crop"].astype(str).tolist(), image_size)[..., ::-1]  # RGB -> BGR
    return skin_tones(crops, data.margin)


def kind_features(
    root: str | Path, ok: pd.DataFrame, weights: dict[str, float], image_size: int = 64
) -> dict[str, np.ndarray]:
    """identity → weighted kind vector (``weights``: ``tone`` and/or ``age``) of the rows ``ok``:
    ``tone`` the mean CIELAB skin colour of the identity's crops (the inner-face ellipse of
    :func:`kssgan.data.synthetic_surrogates.skin_tones`) in units of :data:`TONE_UNIT`; ``age`` the
    manifest's ``age`` column in units of :data:`AGE_UNIT` (an identity without one: the median)."""
    unknown = sorted(set(weights) - set(KIND_FEATURES))
    if unknown:
        raise GroupingError(f"grouping.kind: unknown feature(s) {unknown}; choose from {list(KIND_FEATURES)}")
    ids = ok["identity"].astype(str).to_numpy()
    names = sorted(set(ids))
    parts: list[np.ndarray] = []
    if weights.get("tone"):
        tones = photo_tones(root, ok, image_size)
        parts.append(np.stack([tones[ids == n].mean(0) for n in names]) / TONE_UNIT * float(weights["tone"]))
    if weights.get("age"):
        if "age" not in ok.columns:
            raise GroupingError("grouping.kind: age needs an 'age' column in the manifest")
        age = pd.to_numeric(ok["age"], errors="coerce").groupby(ids).mean().reindex(names)
        if age.isna().all():
            raise GroupingError("grouping.kind: the manifest's 'age' column holds no number")
        age = age.fillna(age.median()).to_numpy(np.float64)
        parts.append(age[:, None] / AGE_UNIT * float(weights["age"]))
    if not parts:
        return {}
    table = np.concatenate(parts, 1)
    return {n: table[i] for i, n in enumerate(names)}


def fit_groups(
    ok: pd.DataFrame,
    emb: np.ndarray,
    k: int,
    method: str,
    seed: int,
    recogniser: str,
    stratify: str | None = None,
    kind: dict[str, float] | None = None,
    root: str | Path | None = None,
) -> GroupAssignment:
    """Group the identities the model trains on (those with a ``train`` image), and only those: no
    group may exist that the model never saw. Identities seen only in val/test (the identity-disjoint
    protocol) are open-set: they get their nearest group at use (best effort, no k guarantee).
    ``kind`` (with the prepared folder ``root``): weights of :func:`kind_features` to group on beside
    identity, so that group-mates share skin tone and age as well."""
    if len(ok) == 0:
        raise GroupingError(f"no usable face in the dataset, cannot build k={k} groups")
    train = (ok["split"].astype(str) == "train").to_numpy() if "split" in ok.columns else np.ones(len(ok), bool)
    if not train.any():
        raise GroupingError(f"no usable face in the train split, cannot build k={k} groups")
    if stratify and stratify not in ok.columns:
        raise GroupingError(f"grouping.stratify: {stratify!r} is not a manifest column; columns: {list(ok.columns)}")
    kind = {f: float(w) for f, w in (kind or {}).items() if w}
    wanted = ["identity"] + ([stratify] if stratify else []) + (["crop"] if kind.get("tone") else [])
    wanted += ["age"] if kind.get("age") and "age" in ok.columns else []
    ok = ok.loc[train, wanted]  # only the columns grouping reads
    emb = np.asarray(emb)
    rows = emb if train.all() else emb[train]  # no copy when every row trains
    means = KSameGrouping.mean_embeddings(list(ok["identity"].astype(str)), rows)
    del rows
    strata = None
    if stratify:
        strata = dict(zip(ok["identity"].astype(str), ok[stratify].astype(str), strict=True))
    features = None
    if kind:
        if root is None:
            raise GroupingError("grouping.kind needs the prepared folder's crops")
        features = kind_features(root, ok, kind)
    grouping = KSameGrouping(k=int(k), method=method, seed=int(seed), recogniser=recogniser)
    return grouping.fit(means, strata, stratify, features, kind)


def groups_summary(assignment: GroupAssignment, k: int, method: str) -> dict[str, Any]:
    """The ``groups`` entry of prepare.json."""
    return {
        "k": k,
        "method": method,
        "num_groups": assignment.num_groups,
        "group_sizes": assignment.group_sizes,
        "audit": assignment.audit() or "ok",
    }


def regroup(
    prepared_dir: str | Path,
    k: int,
    method: str = "mdav",
    seed: int = 0,
    out: str | Path | None = None,
    stratify: str | None = None,
    kind: dict[str, float] | None = None,
) -> GroupAssignment:
    """Rebuild the k-Same grouping of a prepared folder from ``embeddings.npz`` (no detection).

    Writes ``out`` (default ``<prepared>/groups.json``; pass e.g. ``groups_k5.json`` to keep
    several) and returns the assignment. Same identities and per-identity mean embeddings as
    :func:`~kssgan.data.prepare.prepare_dataset`, so ``regroup(d, k)`` equals what ``prepare``
    with that k writes. Raises :class:`GroupingError` (or ``FileNotFoundError`` for a folder that
    is not prepared).
    """
    root = Path(prepared_dir)
    try:
        data = PreparedDataset.open(root, groups=None, text=True)
        emb = data.embeddings()
    except FileNotFoundError as err:
        if (root / "manifest.csv").is_file() and (root / "embeddings.npz").is_file():
            raise GroupingError(str(err)) from err  # no usable row, or an ok crop without its embedding
        raise
    recogniser = data.settings.get("recogniser", "unknown")
    assignment = fit_groups(data.manifest, emb, k, method, seed, recogniser, stratify, kind, root)
    target = Path(out) if out is not None else root / "groups.json"
    if not target.is_absolute() and target.parent == Path("."):
        target = root / target
    assignment.save(target)
    if target == root / "groups.json" and data.info:
        info = {**data.info, "groups": groups_summary(assignment, k, method)}
        atomic_write_text(root / "prepare.json", json.dumps(info, indent=1))
    return assignment


def identity_groups(
    prepared_dir: str | Path, groups_path: str | Path | None = None, identities: Sequence[str] | None = None
) -> dict[str, tuple[int, str]]:
    """``identity -> (group, how)`` with ``how`` = ``closed`` (in groups.json, k-anonymous) or
    ``nearest`` (an identity outside the grouping, mapped to the nearest centroid of its mean
    embedding: best effort, no guarantee). ``identities`` defaults to every ok identity."""
    data = PreparedDataset.open(prepared_dir, groups=groups_path or "groups.json", strict=False, text=True)
    wanted = sorted(set(data.manifest["identity"])) if identities is None else [str(i) for i in identities]
    return data.identity_groups(wanted)
