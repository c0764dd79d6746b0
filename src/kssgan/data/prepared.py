"""Reading a *prepared dataset* folder (ARCHITECTURE.md, contract 1).

:class:`PreparedDataset` is the one reader of a prepared folder's ``manifest.csv``,
``embeddings.npz``, ``groups.json``, ``prepare.json`` and crops: the DataModule, the surrogate
bank, the privacy monitor, ``kssgan evaluate`` and ``kssgan prepare --regroup`` all go through it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pandas as pd

from kssgan.data.grouping import GroupAssignment, KSameGrouping
from kssgan.data.labels import LabelSpec, manifest_records

if TYPE_CHECKING:
    import torch

# a file name that is not valid UTF-8 keeps its bytes (the folder reader records such names)
NAME_ERRORS = "surrogateescape"


class DatasetNotPreparedError(FileNotFoundError):
    """The prepared folder is missing or incomplete."""


@dataclass
class PreparedDataset:
    root: Path
    manifest: pd.DataFrame  # only rows with status == "ok"
    groups: GroupAssignment  # None only when opened with groups=None (to build a grouping)
    info: dict
    _lookup: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @classmethod
    def open(
        cls,
        root: str | Path,
        hint: str = "",
        groups: str | Path | None = "groups.json",
        strict: bool = True,
        text: bool = False,
    ) -> PreparedDataset:
        """Open ``root``. ``groups``: the grouping file (a bare name lies in ``root``; None: none, to
        build one). ``strict``: every training identity must be in it. ``text``: every
        manifest column as text (what grouping reads), else pandas' types (identity always text)."""
        root = Path(root)
        groups_path = None if groups is None else Path(groups)
        if groups_path is not None and not groups_path.is_absolute() and groups_path.parent == Path("."):
            groups_path = root / groups_path  # a bare file name lies in the folder
        needed = [root / "manifest.csv"] + ([groups_path] if groups_path is not None else [])
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise DatasetNotPreparedError(
                f"{root} is not a prepared dataset (missing {', '.join(missing)}). "
                + (hint or "Run `kssgan prepare` (or `make prepare DATASET=... DATA_DIR=...`) first.")
            )
        manifest = cls.read_manifest(root / "manifest.csv", text)
        manifest = manifest[manifest["status"] == "ok"].reset_index(drop=True)
        if manifest.empty:
            raise DatasetNotPreparedError(f"{root}/manifest.csv has no usable (status=ok) images")
        assignment = GroupAssignment.load(groups_path) if groups_path is not None else None
        if assignment is not None and strict:
            # every identity that trains is grouped; val/test-only identities (identity-disjoint) are open-set
            training = set(manifest.loc[manifest["split"].astype(str) == "train", "identity"])
            unknown = sorted(training - set(assignment.identity_to_group))
            if unknown:
                raise DatasetNotPreparedError(
                    f"{len(unknown)} training identities of the manifest are not in {groups_path.name} "
                    f"(e.g. {unknown[:3]}); re-run the grouping (`kssgan prepare ... --regroup`)"
                )
        info_path = root / "prepare.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        return cls(root, manifest, assignment, info)  # type: ignore[arg-type]

    @staticmethod
    def read_manifest(path: str | Path, text: bool = True) -> pd.DataFrame:
        """A whole ``manifest.csv`` (every status), for :meth:`open` and the group auditor.
        ``text``: every column as text, else pandas' types (identity always text)."""
        return pd.read_csv(
            path, dtype=str if text else {"identity": str}, keep_default_na=False, encoding_errors=NAME_ERRORS
        )

    # -- what prepare.json records ------------------------------------------------------------
    @property
    def settings(self) -> dict:
        """The crop settings ``kssgan prepare`` used (image_size, margin, detector, recogniser …)."""
        return dict(self.info.get("settings", {}))

    @property
    def margin(self) -> float:
        return float(self.settings.get("margin", 0.0))

    def provenance(self) -> dict:
        """How this dataset framed its faces, for ``checkpoint["kssgan"]["prepare"]``: crop size,
        margin, template, detector, recogniser and its threshold (from ``prepare.json``), the
        dataset's name and the sha256 of its ``manifest.csv``. Inference frames faces from this."""
        settings = self.settings
        digest = hashlib.sha256((self.root / "manifest.csv").read_bytes()).hexdigest()
        return {
            "crop_size": settings.get("image_size"),
            "margin": self.margin,
            "template": self.info.get("template"),
            "detector": settings.get("detector"),
            "recogniser": settings.get("recogniser", self.groups.recogniser),
            "recogniser_threshold": self.info.get("recogniser_threshold"),
            "dataset": self.info.get("name", self.root.resolve().name),
            "manifest_sha256": digest,
        }

    # -- embeddings.npz -----------------------------------------------------------------------
    def has_embeddings(self) -> bool:
        return (self.root / "embeddings.npz").is_file()

    def _embedding_lookup(self) -> dict[str, np.ndarray]:
        if self._lookup is None:
            npz = self.root / "embeddings.npz"
            if not npz.is_file():
                raise DatasetNotPreparedError(f"{npz} is missing; re-run `kssgan prepare`")
            with np.load(npz, allow_pickle=False) as z:
                self._lookup = dict(zip(z["crop"].tolist(), z["embedding"], strict=True))
        return self._lookup

    def embeddings(self, rows: pd.DataFrame | None = None) -> np.ndarray:
        """The recogniser embeddings of ``rows`` (default: every ok row), in their order."""
        rows = self.manifest if rows is None else rows
        lookup = self._embedding_lookup()
        missing = [c for c in rows["crop"] if c not in lookup]
        if missing:
            raise DatasetNotPreparedError(
                f"{len(missing)} ok crops have no embedding in {self.root / 'embeddings.npz'} (e.g. {missing[0]})"
            )
        if not len(rows):
            return np.zeros((0, 1), np.float32)
        return np.stack([lookup[c] for c in rows["crop"]])

    def identity_means(self, rows: pd.DataFrame | None = None) -> dict[str, np.ndarray]:
        """Each identity's mean (L2-normalised) embedding over ``rows`` (default: every ok image):
        what the k-Same grouping is built on."""
        rows = self.manifest if rows is None else rows
        return KSameGrouping.mean_embeddings(rows["identity"].astype(str).tolist(), self.embeddings(rows))

    # -- groups and labels --------------------------------------------------------------------
    def identity_groups(self, identities: Sequence[str] | None = None) -> dict[str, tuple[int, str]]:
        """``identity -> (group, how)``: ``closed`` (in the grouping, a training identity,
        k-anonymous) or ``nearest`` (open-set: not in the grouping, given the group whose centroid
        is nearest its mean embedding; best effort, no k guarantee). ``identities`` defaults to
        every grouped identity plus every ok identity of the manifest."""
        known = self.groups.identity_to_group
        if identities is None:
            wanted = list(known) + sorted(set(self.manifest["identity"].astype(str)) - set(known))
        else:
            wanted = [str(i) for i in identities]
        out = {i: (known[i], "closed") for i in wanted if i in known}
        unseen = [i for i in wanted if i not in known]
        if unseen:
            if not self.has_embeddings():
                raise DatasetNotPreparedError(
                    f"{self.root / 'embeddings.npz'} is needed to give open-set identities their nearest group"
                )
            rows = self.manifest[self.manifest["identity"].astype(str).isin(unseen)]
            means = self.identity_means(rows)
            nearest = self.groups.nearest_groups(np.stack(list(means.values())))
            out.update((ident, (int(g), "nearest")) for ident, g in zip(means, nearest, strict=True))
        return out

    def label_spec(self, onehot_attributes: list[str], binary_attributes: list[str]) -> LabelSpec:
        onehot = {}
        for name in onehot_attributes:
            if name not in self.manifest.columns:
                raise KeyError(f"attribute {name!r} is not a manifest column; columns: {list(self.manifest.columns)}")
            onehot[name] = sorted({str(v) for v in self.manifest[name] if str(v) != ""})
        for name in binary_attributes:
            if name not in self.manifest.columns:
                raise KeyError(f"attribute {name!r} is not a manifest column; columns: {list(self.manifest.columns)}")
        return LabelSpec.build(self.groups.num_groups, onehot, binary_attributes)

    def records(self, spec: LabelSpec) -> list[dict]:
        """One label record per manifest row (:func:`~kssgan.data.labels.manifest_records`); open-set
        identities get their nearest group (:meth:`identity_groups`)."""
        groups = self.identity_groups()
        return manifest_records(spec, self.manifest, lambda ident: groups[ident][0], str(self.root))

    # -- crops --------------------------------------------------------------------------------
    @staticmethod
    def read_crop(root: Path, rel: str, image_size: int | None, enlarge: int = cv2.INTER_CUBIC) -> np.ndarray:
        """One prepared crop as S×S×3 uint8 RGB, resized to ``image_size`` (None: as stored) with
        INTER_AREA when shrinking and ``enlarge`` when enlarging. A static method so that a
        DataLoader worker needs the folder's path only."""
        path = Path(root) / rel
        img = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if img is None:
            raise OSError(f"cannot read prepared crop {path}; re-run `kssgan prepare`")
        return PreparedDataset.fit_crop(cv2.cvtColor(img, cv2.COLOR_BGR2RGB), image_size, enlarge)

    @staticmethod
    def fit_crop(img: np.ndarray, image_size: int | None, enlarge: int = cv2.INTER_CUBIC) -> np.ndarray:
        """A crop resized to ``image_size`` (None: unchanged): INTER_AREA when shrinking, ``enlarge``
        when enlarging — the one rule for every crop a model sees."""
        if image_size and (img.shape[0] != image_size or img.shape[1] != image_size):
            interp = cv2.INTER_AREA if img.shape[0] > image_size else enlarge
            img = cv2.resize(img, (image_size, image_size), interpolation=interp)
        return img

    def read_crops(self, rels: Sequence[str], image_size: int | None) -> np.ndarray:
        """Crops ``rels`` (manifest ``crop`` values) as N×S×S×3 uint8 RGB."""
        return np.stack([self.read_crop(self.root, rel, image_size) for rel in rels])

    def load_crops(self, rels: Sequence[str], image_size: int) -> torch.Tensor:
        """Crops ``rels`` as (N, 3, S, S) float in [-1, 1]."""
        import torch

        out = np.empty((len(rels), image_size, image_size, 3), np.uint8)
        for i, rel in enumerate(rels):
            out[i] = self.read_crop(self.root, rel, image_size)
        return torch.from_numpy(out).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
