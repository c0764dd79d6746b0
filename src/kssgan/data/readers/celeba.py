"""CelebA reader (official layout, flat or with ``Anno/``, ``Eval/``, ``Img/`` sub-folders).

Expected under the root (each file may also sit in ``Anno/``, ``Eval/`` or ``Img/``):

* ``img_align_celeba/`` or ``img_celeba/`` (the aligned set is preferred when both exist),
* ``identity_CelebA.txt``: ``<image> <identity>`` per line (required),
* ``list_attr_celeba.txt`` (optional): a count line, a header of 40 attribute names, then
  ``<image> ±1 …``; attributes become 0/1 columns named as in the header (``Male``, ``Young``…),
* ``list_eval_partition.txt`` (optional): ``<image> 0|1|2`` (train/val/test).

Splits: ``protocol="identity_disjoint"`` (default) never lets a person appear in two splits. The
official partition is used when present *and* identity-disjoint; otherwise (or if it mixes
identities) identities are split by a seeded hash. ``protocol="closed_set"`` stratifies each
identity's images over train/val/test instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from kssgan.data.readers._common import DatasetLayoutError, as_binary, assign_splits, finish

CELEBA_ATTRIBUTES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose Black_Hair "
    "Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee Gray_Hair Heavy_Makeup "
    "High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard Oval_Face Pale_Skin Pointy_Nose "
    "Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair Wavy_Hair Wearing_Earrings Wearing_Hat "
    "Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()
EXPECTED = (
    "img_align_celeba/ (or img_celeba/) and identity_CelebA.txt, optionally list_attr_celeba.txt and "
    "list_eval_partition.txt, in the root or in Anno/, Eval/, Img/"
)
_PARTITION = {"0": "train", "1": "val", "2": "test"}


def _find(root: Path, name: str, kind: str = "file") -> Path | None:
    for base in (root, root / "Anno", root / "Eval", root / "Img"):
        p = base / name
        if (kind == "file" and p.is_file()) or (kind == "dir" and p.is_dir()):
            return p
    return None


def _read_pairs(path: Path, names: tuple[str, str]) -> pd.DataFrame:
    # the C parser (whitespace-separated): the python engine held ~1.3 KB a line of CelebA's 202,599
    return pd.read_csv(path, sep=r"\s+", header=None, names=list(names), dtype=str, engine="c")


def read_attributes(path: Path) -> pd.DataFrame:
    """``list_attr_celeba.txt`` as a frame indexed by image name with 0/1 int columns."""
    lines = path.read_text().splitlines()
    if len(lines) < 2:
        raise DatasetLayoutError(
            "celeba", path.parent, "list_attr_celeba.txt with a count and a header line", f"{len(lines)} lines"
        )
    header = lines[1].split()
    rows = [ln.split() for ln in lines[2:] if ln.strip()]
    bad = [r[0] for r in rows if len(r) != len(header) + 1]
    if bad:
        raise DatasetLayoutError(
            "celeba",
            path.parent,
            f"{len(header)} attribute values per line in {path.name}",
            f"a different count for {bad[0]!r}",
        )
    table = pd.DataFrame([r[1:] for r in rows], index=[r[0] for r in rows], columns=header)
    return table.apply(as_binary)


def read_celeba(
    root: str | Path,
    protocol: str = "identity_disjoint",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    attributes: list[str] | None = None,
    max_identities: int | None = None,
    min_images_per_identity: int = 1,
    prefer_aligned: bool = True,
    **_: object,
) -> pd.DataFrame:
    """CelebA images with ``source``, ``identity``, ``split`` and the 0/1 attribute columns
    (all 40, or only ``attributes``). Images listed in ``identity_CelebA.txt`` but absent from the
    image folder are reported in ``df.attrs["skipped"]`` as ``missing_file``.
    ``max_identities`` keeps the identities with the most images first (ties by id), for subsets.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError("celeba", root, EXPECTED, "no such directory")
    order = ("img_align_celeba", "img_celeba") if prefer_aligned else ("img_celeba", "img_align_celeba")
    img_dir = next((d for d in (_find(root, n, "dir") for n in order) if d is not None), None)
    ident_file = _find(root, "identity_CelebA.txt")
    if img_dir is None or ident_file is None:
        present = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())[:12]
        missing = [n for n, ok in (("an image folder", img_dir), ("identity_CelebA.txt", ident_file)) if ok is None]
        raise DatasetLayoutError("celeba", root, EXPECTED, f"missing {' and '.join(missing)}; root holds {present}")
    ids = _read_pairs(ident_file, ("image", "identity"))
    if ids.empty or ids["identity"].isna().any():
        raise DatasetLayoutError("celeba", root, "identity_CelebA.txt lines '<image> <identity>'", "malformed lines")
    present_files = set(os.listdir(img_dir))  # names only: no Path object per photo
    exists = ids["image"].isin(present_files)
    img_rel = img_dir.relative_to(root).as_posix()
    skipped = [(f"{img_rel}/{n}", "missing_file") for n in ids.loc[~exists, "image"]]
    ids = ids[exists].copy()
    if ids.empty:
        raise DatasetLayoutError(
            "celeba", root, EXPECTED, f"none of the {len(exists)} images of identity_CelebA.txt in {img_rel}/"
        )

    counts = ids["identity"].value_counts()
    keep_ids = counts[counts >= int(min_images_per_identity)]
    if max_identities is not None:
        ranked = sorted(keep_ids.index, key=lambda i: (-int(keep_ids[i]), int(i) if str(i).isdigit() else 0, str(i)))
        keep_ids = keep_ids[ranked[: int(max_identities)]]
    ids = ids[ids["identity"].isin(keep_ids.index)]

    df = pd.DataFrame({"source": [f"{img_rel}/{n}" for n in ids["image"]], "identity": ids["identity"].values})
    df["image"] = ids["image"].values

    attr_file = _find(root, "list_attr_celeba.txt")
    if attr_file is not None:
        attrs = read_attributes(attr_file)
        cols = list(attrs.columns) if attributes is None else list(attributes)
        unknown = [c for c in cols if c not in attrs.columns]
        if unknown:
            raise DatasetLayoutError(
                "celeba", root, f"attributes {unknown} in {attr_file.name}", f"header {list(attrs.columns)}"
            )
        df = df.join(attrs[cols], on="image")
        for c in cols:
            df[c] = df[c].fillna(0).astype(int)

    part_file = _find(root, "list_eval_partition.txt")
    split = None
    if part_file is not None and protocol == "identity_disjoint":
        part = _read_pairs(part_file, ("image", "partition")).set_index("image")["partition"].map(_PARTITION)
        cand = df["image"].map(part)
        if (
            cand.notna().all()
            and (pd.DataFrame({"i": df["identity"], "s": cand}).groupby("i")["s"].nunique() == 1).all()
        ):
            split = cand
    if split is None:
        split = assign_splits(df, protocol, seed, val_fraction, test_fraction)
    df["split"] = split.values
    df = df.drop(columns=["image"]).sort_values(["identity", "source"], kind="stable")
    return finish(df, skipped)
