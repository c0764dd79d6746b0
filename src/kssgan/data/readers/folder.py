"""Generic folder reader: ``<root>/<identity>/*.<image>`` or any layout plus a ``labels.csv``.

``labels.csv`` (path relative to the root) needs a path column (``path``; aliases ``source``,
``file``, ``filename``, ``image``) and an identity column (``identity``; aliases ``subject``,
``person``, ``id``, ``label``). Every other column is kept as an attribute (strings), e.g. Yale's
``condition`` and ``expression``. A ``split`` column, when present, is used as is. ORL
(``orl/labels.csv``) and Yale (``yale/labels.csv``, GIFs without extension) work through it.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from kssgan.data.readers._common import (
    IMAGE_EXTENSIONS,
    DatasetLayoutError,
    assign_splits,
    candidate_images,
    finish,
    is_utf8_name,
    printable,
    rel,
)

PATH_ALIASES = ("path", "source", "file", "filename", "image", "image_path")
IDENTITY_ALIASES = ("identity", "subject", "person", "id", "label", "name")
EXPECTED = (
    "either <root>/<identity>/<image files> (one sub-folder per person) or a labels.csv with a path column "
    f"(one of {list(PATH_ALIASES)}) and an identity column (one of {list(IDENTITY_ALIASES)})"
)


def _pick(columns: list[str], aliases: tuple[str, ...]) -> str | None:
    low = {c.lower().strip(): c for c in columns}
    for a in aliases:
        if a in low:
            return low[a]
    return None


class LabelsError(DatasetLayoutError):
    """A labels.csv that would read outside the data root or count one photo for two people."""

    def __init__(self, root: str | Path, message: str) -> None:
        self.dataset, self.root, self.expected, self.found = "folder", Path(root), EXPECTED, message
        ValueError.__init__(self, message)


def check_labelled_paths(df: pd.DataFrame, root: Path, csv_name: str, allow_outside_root: bool = False) -> None:
    """Refuse (DatasetLayoutError) CSV paths outside ``root`` and a file listed under two identities."""
    base = root.resolve()
    resolved = []
    for source in df["source"]:
        target = Path(os.path.normpath(root / source)).resolve()
        if not allow_outside_root and target != base and base not in target.parents:
            raise LabelsError(
                root,
                f"{csv_name} lists {source!r}, which lies outside the data root {str(root)!r} "
                "(--allow-outside-root reads such paths anyway)",
            )
        resolved.append(str(target))
    seen: dict[str, str] = {}
    for source, ident, key in zip(df["source"], df["identity"].astype(str), resolved, strict=True):
        if key in seen and seen[key] != ident:
            raise LabelsError(
                root, f"{csv_name} lists the photo {source!r} under two identities ({seen[key]!r} and {ident!r})"
            )
        seen.setdefault(key, ident)


def read_folder(
    root: str | Path,
    labels_csv: str | Path | None = None,
    protocol: str = "closed_set",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_identities: int | None = None,
    max_images: int | None = None,
    allow_outside_root: bool = False,
    **_: object,
) -> pd.DataFrame:
    """One row per image: ``source`` (relative to ``root``), ``identity``, ``split`` and attributes.

    ``labels_csv`` is resolved relative to ``root``; when ``None`` a ``<root>/labels.csv`` is used if
    present, else the identity-folder layout. ``labels_csv=""`` forces the folder layout.
    ``max_identities`` keeps the first identities in sorted order (for quick subsets).
    Files listed in the CSV but absent are returned in ``df.attrs["skipped"]`` (reason
    ``missing_file``), never raised. A CSV path that leads outside ``root`` (``..``, an absolute
    path elsewhere) is refused unless ``allow_outside_root``; one file listed under two identities
    is always refused (it would count twice towards k).
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError("folder", root, EXPECTED, "no such directory")
    csv_path: Path | None = None
    if labels_csv:
        csv_path = Path(labels_csv)
        csv_path = csv_path if csv_path.is_absolute() else root / csv_path
        if not csv_path.is_file():
            raise DatasetLayoutError("folder", root, EXPECTED, f"labels_csv {str(csv_path)!r} does not exist")
    elif labels_csv is None and (root / "labels.csv").is_file():
        csv_path = root / "labels.csv"

    skipped: list[tuple[str, str]] = []
    if csv_path is not None:
        table = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        pcol, icol = _pick(list(table.columns), PATH_ALIASES), _pick(list(table.columns), IDENTITY_ALIASES)
        if pcol is None or icol is None:
            raise DatasetLayoutError("folder", root, EXPECTED, f"{csv_path.name} with columns {list(table.columns)}")
        df = table.rename(columns={pcol: "source", icol: "identity"})
        df["source"] = [
            rel(Path(p), root) if Path(p).is_absolute() and Path(p).is_relative_to(root) else Path(p).as_posix()
            for p in df["source"]
        ]
        check_labelled_paths(df, root, csv_path.name, allow_outside_root)
        exists = [(root / s).is_file() for s in df["source"]]
        skipped = [(s, "missing_file") for s, ok in zip(df["source"], exists, strict=True) if not ok]
        df = df[exists]
        if df.empty:
            raise DatasetLayoutError(
                "folder", root, EXPECTED, f"{csv_path.name} lists {len(table)} paths but none exists under the root"
            )
    else:
        subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        rows = []
        for d in subdirs:
            for f in candidate_images(d):
                name = rel(f, root)
                if is_utf8_name(name):
                    rows.append({"source": name, "identity": d.name})
                else:  # recorded, not read: the manifest and pandas hold UTF-8 text only
                    skipped.append((printable(name), "non_utf8_name"))
        if not rows:
            top = [p.name for p in root.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
            found = f"{len(subdirs)} sub-folders without images and {len(top)} images directly in the root"
            if top:
                found += f" (e.g. {top[0]!r}; put them in one folder per identity or add a labels.csv)"
            raise DatasetLayoutError("folder", root, EXPECTED, found)
        df = pd.DataFrame(rows)
    df = df.sort_values(["identity", "source"], kind="stable").reset_index(drop=True)
    if max_identities is not None:
        keep = sorted(df["identity"].astype(str).unique())[: int(max_identities)]
        df = df[df["identity"].astype(str).isin(keep)].reset_index(drop=True)
    if max_images is not None:
        df = df.head(int(max_images)).reset_index(drop=True)
    if "split" not in df.columns or (df["split"] == "").all():
        df["split"] = assign_splits(df, protocol, seed, val_fraction, test_fraction)
    return finish(df, skipped)
