"""``kssgan audit-groups``: check that a ``groups.json`` really is a k-Same grouping.

Checks (each failure is one line of the report):

* every group holds at least ``k`` distinct identities (the k-anonymity condition) and, for MDAV,
  at most ``2k − 1``;
* ``group_sizes`` and ``num_groups`` stored in the file agree with ``identity_to_group``; group ids
  are ``0 … G−1`` with no empty group; one centroid per group;
* with a manifest (``manifest.csv`` next to it, or given): every identity with a usable (``ok``)
  image is in the grouping, and no grouped identity lacks an image.

Passing the audit guarantees k-anonymity for the *closed set* of identities in the file only.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from kssgan.data.prepared import PreparedDataset

__all__ = ["AuditReport", "audit_groups", "main"]


@dataclass
class AuditReport:
    """Result of :func:`audit_groups`; ``ok`` is True when ``problems`` is empty."""

    path: str
    k: int
    method: str
    num_groups: int
    num_identities: int
    group_sizes: list[int]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "ok": self.ok,
            "k": self.k,
            "method": self.method,
            "num_groups": self.num_groups,
            "num_identities": self.num_identities,
            "min_group_size": min(self.group_sizes) if self.group_sizes else 0,
            "max_group_size": max(self.group_sizes) if self.group_sizes else 0,
            "group_sizes": self.group_sizes,
            "problems": self.problems,
            "warnings": self.warnings,
        }

    def __str__(self) -> str:
        head = "OK" if self.ok else "VIOLATION"
        sizes = f"sizes {min(self.group_sizes)}..{max(self.group_sizes)}" if self.group_sizes else "no groups"
        lines = [
            f"{head}: {self.path}: k={self.k} ({self.method}), {self.num_identities} identities in "
            f"{self.num_groups} groups, {sizes}"
        ]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def audit_groups(groups_json_path: str | Path, manifest: str | Path | pd.DataFrame | None = None) -> AuditReport:
    """Audit one ``groups.json``. ``manifest`` may be a path, a DataFrame, or None (then a
    ``manifest.csv`` beside the file is used if present). Never raises for a bad grouping: the
    problems are in the report (it raises only when the file cannot be read)."""
    path = Path(groups_json_path)
    if path.is_dir():
        path = path / "groups.json"
    data = json.loads(path.read_text())
    problems: list[str] = []
    warnings: list[str] = []
    try:
        k = int(data["k"])
        mapping = {str(i): int(g) for i, g in data["identity_to_group"].items()}
    except (KeyError, TypeError, ValueError) as err:
        return AuditReport(str(path), 0, "?", 0, 0, [], [f"malformed groups.json: {err!r}"])
    method = str(data.get("method", "?"))
    counts = Counter(mapping.values())
    num_groups = max(counts) + 1 if counts else 0
    sizes = [counts.get(g, 0) for g in range(num_groups)]
    if k < 1:
        problems.append(f"k={k} is not a valid anonymity level")
    if not mapping:
        problems.append("no identity is grouped")
    if any(g < 0 for g in counts):
        problems.append(f"negative group ids {sorted(g for g in counts if g < 0)}")
    for g, n in enumerate(sizes):
        if n == 0:
            problems.append(f"group {g} is empty (group ids must be 0..G-1)")
        elif n < k:
            problems.append(f"group {g} holds {n} distinct identities, fewer than k={k}")
        elif method == "mdav" and n > 2 * k - 1:
            warnings.append(f"group {g} holds {n} identities, more than 2k-1={2 * k - 1}")
    if "group_sizes" in data and list(data["group_sizes"]) != sizes:
        problems.append(f"stored group_sizes {data['group_sizes']} disagree with identity_to_group {sizes}")
    if "num_groups" in data and int(data["num_groups"]) != num_groups:
        problems.append(f"stored num_groups {data['num_groups']} but identity_to_group has {num_groups}")
    if "centroids" in data and len(data["centroids"]) != num_groups:
        problems.append(f"{len(data['centroids'])} centroids for {num_groups} groups")

    if manifest is None and (path.parent / "manifest.csv").is_file():
        manifest = path.parent / "manifest.csv"
    if manifest is not None:
        table = manifest if isinstance(manifest, pd.DataFrame) else PreparedDataset.read_manifest(manifest)
        ok = table[table["status"] == "ok"] if "status" in table.columns else table
        if "split" in ok.columns:  # only training identities are grouped; val/test-only ones are open-set
            ok = ok[ok["split"].astype(str) == "train"]
        have = set(ok["identity"].astype(str))
        ungrouped = sorted(have - set(mapping))
        if ungrouped:
            problems.append(
                f"{len(ungrouped)} training identities with usable images are not grouped (e.g. {ungrouped[:3]}); "
                "they would get no k-anonymous group"
            )
        imageless = sorted(set(mapping) - have)
        if imageless:
            warnings.append(
                f"{len(imageless)} grouped identities have no usable image in the manifest (e.g. {imageless[:3]})"
            )
    return AuditReport(str(path), k, method, num_groups, len(mapping), sizes, problems, warnings)


def main(argv: list[str] | None = None) -> int:
    """``kssgan audit-groups PATH [PATH ...]``: exit 0 when every file audits clean, 1 otherwise."""
    from kssgan.job_config import job_parser

    p = job_parser("kssgan audit-groups", __doc__.split("\n\n")[0])
    p.add_argument("paths", nargs="+", type=str, help="groups.json files or prepared folders")
    p.add_argument("--manifest", help="manifest.csv to cross-check (default: the one beside each file)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON")
    args = p.parse_args(argv)
    reports = []
    for path in args.paths:
        try:
            reports.append(audit_groups(path, args.manifest))
        except (OSError, json.JSONDecodeError) as err:
            print(f"kssgan audit-groups: cannot read {path}: {err}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps([r.to_dict() for r in reports], indent=1))
    else:
        for r in reports:
            print(r)
    return 0 if all(r.ok for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
