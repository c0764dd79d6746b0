"""Reading a *prepared dataset* folder (ARCHITECTURE.md, contract 1)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from kssgan.data.grouping import GroupAssignment, KSameGrouping
from kssgan.data.labels import LabelSpec


class DatasetNotPreparedError(FileNotFoundError):
    """The prepared folder is missing or incomplete."""


@dataclass
class PreparedDataset:
    root: Path
    manifest: pd.DataFrame  # only rows with status == "ok"
    groups: GroupAssignment
    info: dict

    @classmethod
    def open(cls, root: str | Path, hint: str = "") -> PreparedDataset:
        root = Path(root)
        missing = [n for n in ("manifest.csv", "groups.json") if not (root / n).is_file()]
        if missing:
            raise DatasetNotPreparedError(
                f"{root} is not a prepared dataset (missing {', '.join(missing)}). "
                + (hint or "Run `kssgan prepare` (or `make prepare DATASET=... DATA_DIR=...`) first.")
            )
        manifest = pd.read_csv(
            root / "manifest.csv", dtype={"identity": str}, keep_default_na=False, encoding_errors="surrogateescape"
        )
        manifest = manifest[manifest["status"] == "ok"].reset_index(drop=True)
        if manifest.empty:
            raise DatasetNotPreparedError(f"{root}/manifest.csv has no usable (status=ok) images")
        groups = GroupAssignment.load(root / "groups.json")
        # every identity that trains is grouped; val/test-only identities (identity-disjoint) are open-set
        training = set(manifest.loc[manifest["split"].astype(str) == "train", "identity"])
        unknown = sorted(training - set(groups.identity_to_group))
        if unknown:
            raise DatasetNotPreparedError(
                f"{len(unknown)} training identities of the manifest are not in groups.json (e.g. {unknown[:3]}); "
                "re-run the grouping (`kssgan prepare ... --regroup`)"
            )
        info_path = root / "prepare.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        return cls(root, manifest, groups, info)

    def provenance(self) -> dict:
        """How this dataset framed its faces, for ``checkpoint["kssgan"]["prepare"]``: crop size,
        margin, template, detector, recogniser and its threshold (from ``prepare.json``), the
        dataset's name and the sha256 of its ``manifest.csv``. Inference frames faces from this."""
        settings = self.info.get("settings", {})
        digest = hashlib.sha256((self.root / "manifest.csv").read_bytes()).hexdigest()
        return {
            "crop_size": settings.get("image_size"),
            "margin": float(settings.get("margin", 0.0)),
            "template": self.info.get("template"),
            "detector": settings.get("detector"),
            "recogniser": settings.get("recogniser", self.groups.recogniser),
            "recogniser_threshold": self.info.get("recogniser_threshold"),
            "dataset": self.info.get("name", self.root.resolve().name),
            "manifest_sha256": digest,
        }

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

    def identity_groups(self) -> dict[str, tuple[int, str]]:
        """``identity -> (group, how)`` for every ok identity: ``closed`` (in groups.json, a training
        identity, k-anonymous) or ``nearest`` (open-set: only in val/test, given the group whose
        centroid is nearest its mean embedding; best effort, no k guarantee)."""
        out = {i: (g, "closed") for i, g in self.groups.identity_to_group.items()}
        rows = self.manifest[~self.manifest["identity"].isin(out)]
        if rows.empty:
            return out
        npz = self.root / "embeddings.npz"
        if not npz.is_file():
            raise DatasetNotPreparedError(f"{npz} is needed to give open-set identities their nearest group")
        with np.load(npz, allow_pickle=False) as z:
            lookup = dict(zip(z["crop"].tolist(), z["embedding"], strict=True))
        missing = [c for c in rows["crop"] if c not in lookup]
        if missing:
            raise DatasetNotPreparedError(f"{len(missing)} ok crops have no embedding in {npz} (e.g. {missing[0]})")
        means = KSameGrouping.mean_embeddings(list(rows["identity"]), np.stack([lookup[c] for c in rows["crop"]]))
        centroids = self.groups.centroids / np.linalg.norm(self.groups.centroids, axis=1, keepdims=True).clip(1e-12)
        for ident, mean in means.items():
            out[ident] = (int(np.argmax(centroids @ mean)), "nearest")
        return out

    def records(self, spec: LabelSpec) -> list[dict]:
        """One label record per manifest row: {"group": g, attr: value, …}; open-set identities get
        their nearest group (:meth:`identity_groups`)."""
        names = [f.name for f in spec.fields[1:]]
        groups = self.identity_groups()
        rows = []
        for ident, *values in self.manifest[["identity", *names]].itertuples(index=False):
            rec = {"group": groups[str(ident)][0]}
            rec.update(zip(names, values, strict=True))
            rows.append(rec)
        return rows
