"""Reading a *prepared dataset* folder (ARCHITECTURE.md, contract 1)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from kssgan.data.grouping import GroupAssignment
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
        unknown = sorted(set(manifest["identity"]) - set(groups.identity_to_group))
        if unknown:
            raise DatasetNotPreparedError(
                f"{len(unknown)} identities of the manifest are not in groups.json (e.g. {unknown[:3]}); "
                "re-run the grouping (`kssgan prepare ... --regroup`)"
            )
        info_path = root / "prepare.json"
        info = json.loads(info_path.read_text()) if info_path.is_file() else {}
        return cls(root, manifest, groups, info)

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
        """One label record per manifest row: {"group": g, attr: value, …}."""
        names = [f.name for f in spec.fields[1:]]
        rows = []
        for ident, *values in self.manifest[["identity", *names]].itertuples(index=False):
            rec = {"group": self.groups.group_of(ident)}
            rec.update(zip(names, values, strict=True))
            rows.append(rec)
        return rows
