"""What every reader shares: the layout error, deterministic splits, file discovery."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from kssgan.data.readers.image_io import sniff_format

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".ppm", ".pbm", ".pnm", ".tif", ".tiff", ".webp"}
)
PROTOCOLS = ("closed_set", "identity_disjoint")


class DatasetLayoutError(ValueError):
    """The raw folder does not look like the dataset it was declared to be.

    The message always says what was expected and what was found.
    """

    def __init__(self, dataset: str, root: str | Path, expected: str, found: str) -> None:
        self.dataset, self.root, self.expected, self.found = dataset, Path(root), expected, found
        super().__init__(f"{dataset} layout not recognised under {str(root)!r}: expected {expected}; found {found}.")


def _key(seed: int, text: str) -> str:
    return hashlib.sha1(f"{seed}:{text}".encode()).hexdigest()


#: The split of identities held out of training and grouping altogether (``open_set_fraction``):
#: their photos are released the way a stranger's would be, and ``kssgan evaluate --open-set``
#: attacks them.
STRANGER_SPLIT = "stranger"


def hold_out_strangers(df: pd.DataFrame, fraction: float, seed: int = 0) -> pd.DataFrame:
    """Move ``round(n · fraction)`` whole identities (a seeded hash order, independent of the
    train/val/test split) to the split :data:`STRANGER_SPLIT`; the rest keep their split.

    Strangers never train and are never grouped: the open-set evaluation releases and attacks them.
    """
    if not 0.0 <= float(fraction) < 1.0:
        raise ValueError(f"open_set_fraction must be in [0, 1), got {fraction}")
    if df.empty or fraction == 0:
        return df
    ids = sorted(df["identity"].astype(str).unique(), key=lambda i: _key(seed, f"stranger:{i}"))
    n = round(len(ids) * float(fraction))
    if n and len(ids) - n < 1:
        raise ValueError(f"open_set_fraction {fraction} leaves no identity to train on ({len(ids)} identities)")
    strangers = set(ids[:n])
    out = df.copy()
    out.loc[out["identity"].astype(str).isin(strangers), "split"] = STRANGER_SPLIT
    return out


def assign_splits(
    df: pd.DataFrame,
    protocol: str = "closed_set",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
) -> pd.Series:
    """Deterministic train/val/test split (a function of ``seed`` and the file names only).

    * ``closed_set`` (stratified per identity): every identity keeps most of its images in
      ``train``; an identity with n ≥ 3 images gives ``max(1, round(n·f))`` images each to ``val``
      and ``test``; with n = 2, one goes to ``test``; a single image stays in ``train``.
    * ``identity_disjoint``: whole identities go to one split (≈ the given fractions of the
      identities, at least one identity each for val and test when there are ≥ 3 identities), so
      no person appears in two splits.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"unknown split protocol {protocol!r}; choose one of {PROTOCOLS}")
    split = pd.Series("train", index=df.index, dtype=object)
    if df.empty:
        return split
    if protocol == "identity_disjoint":
        ids = sorted(df["identity"].astype(str).unique(), key=lambda i: _key(seed, i))
        n = len(ids)
        n_val = max(1, round(n * val_fraction)) if n >= 3 else 0
        n_test = max(1, round(n * test_fraction)) if n >= 3 else 0
        which = {i: "val" for i in ids[:n_val]} | {i: "test" for i in ids[n_val : n_val + n_test]}
        return df["identity"].astype(str).map(lambda i: which.get(i, "train")).astype(object)
    for _, rows in df.groupby(df["identity"].astype(str), sort=True):
        order = sorted(rows.index, key=lambda ix: _key(seed, str(df.at[ix, "source"])))
        n = len(order)
        if n >= 3:
            n_val = max(1, round(n * val_fraction))
            n_test = max(1, round(n * test_fraction))
            if n - n_val - n_test < 1:
                n_val, n_test = 1, 1
        elif n == 2:
            n_val, n_test = 0, 1
        else:
            n_val, n_test = 0, 0
        for ix in order[:n_val]:
            split[ix] = "val"
        for ix in order[n_val : n_val + n_test]:
            split[ix] = "test"
    return split


def candidate_images(folder: Path) -> Iterable[Path]:
    """Files under ``folder`` that are images by extension *or* by content (e.g. Yale's GIFs with
    no extension). A file with an image extension but other content is still yielded, so that the
    preparation records it as ``not_an_image`` instead of silently dropping it."""
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.name.startswith("."):
            continue
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            yield path
            continue
        try:
            with open(path, "rb") as fh:
                if sniff_format(fh.read(16)) is not None:
                    yield path
        except OSError:
            continue


def finish(df: pd.DataFrame, skipped: list[tuple[str, str]] | None = None) -> pd.DataFrame:
    """Common column order, string identities, and the reader's own skip list in ``df.attrs``."""
    df = df.copy()
    df["identity"] = df["identity"].astype(str)
    df["source"] = df["source"].astype(str)
    first = ["source", "identity", "split"]
    df = df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)
    df.attrs["skipped"] = list(skipped or [])
    return df


def rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def is_utf8_name(name: str) -> bool:
    """False for a file name whose bytes are not UTF-8 (Python holds them as surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    """``name`` with undecodable bytes shown as ``\\xNN`` (valid UTF-8, for manifests and consoles)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def as_binary(values: pd.Series) -> pd.Series:
    """CelebA-style −1/1 (or 0/1, true/false) columns as 0/1 ints."""
    num = pd.to_numeric(values, errors="coerce")
    return pd.Series(np.where(num > 0, 1, 0), index=values.index, dtype=np.int64)
