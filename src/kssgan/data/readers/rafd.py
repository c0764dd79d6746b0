"""Radboud Faces Database (RaFD) reader.

File names follow ``Rafd<angle>_<subject>_<ethnicity>_<gender>_<expression>_<gaze>.<ext>``, e.g.
``Rafd090_01_Caucasian_female_angry_frontal.jpg``: camera angle (000, 045, 090, 135, 180; 090 is
frontal), subject number, ethnicity, gender, one of 8 expressions, gaze (frontal, left, right).
Images may sit anywhere under the root. Files whose names do not follow the convention are
reported in ``df.attrs["skipped"]`` (reason ``unparsed_name``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from kssgan.data.readers._common import IMAGE_EXTENSIONS, DatasetLayoutError, assign_splits, finish, rel

RAFD_EXPRESSIONS = ("angry", "contemptuous", "disgusted", "fearful", "happy", "neutral", "sad", "surprised")
RAFD_GAZES = ("frontal", "left", "right")
RAFD_ANGLES = (0, 45, 90, 135, 180)
RAFD_PATTERN = re.compile(
    r"^Rafd(?P<angle>\d{3})_(?P<subject>\d+)_(?P<ethnicity>[A-Za-z]+)_(?P<gender>female|male)_"
    r"(?P<expression>[a-z]+)_(?P<gaze>frontal|left|right)$",
    re.IGNORECASE,
)
EXPECTED = (
    "image files named like Rafd090_01_Caucasian_female_angry_frontal.jpg "
    "(angle_subject_ethnicity_gender_expression_gaze)"
)


def parse_rafd_name(name: str) -> dict[str, object] | None:
    """Fields of one RaFD file name (with or without extension), or None if it does not match."""
    m = RAFD_PATTERN.match(Path(name).stem if Path(name).suffix.lower() in IMAGE_EXTENSIONS else name)
    if m is None:
        return None
    d = m.groupdict()
    expression = d["expression"].lower()
    if expression not in RAFD_EXPRESSIONS:
        return None
    gender = d["gender"].lower()
    return {
        "angle": int(d["angle"]),
        "subject": int(d["subject"]),
        "ethnicity": d["ethnicity"].lower(),
        "gender": gender,
        "male": int(gender == "male"),
        "expression": expression,
        "gaze": d["gaze"].lower(),
    }


def read_rafd(
    root: str | Path,
    angles: Sequence[int] | None = (90,),
    gazes: Sequence[str] | None = None,
    expressions: Sequence[str] | None = None,
    protocol: str = "closed_set",
    seed: int = 0,
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    max_identities: int | None = None,
    **_: object,
) -> pd.DataFrame:
    """RaFD images: ``source``, ``identity`` (``"01"``…), ``split``, ``angle``, ``ethnicity``,
    ``gender``, ``male`` (0/1), ``expression`` (8 values), ``gaze``.

    Defaults keep the frontal camera (angle 90) and every gaze. ``angles=None`` keeps all.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError("rafd", root, EXPECTED, "no such directory")
    files = [p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    rows, skipped = [], []
    for p in files:
        fields = parse_rafd_name(p.name)
        if fields is None:
            skipped.append((rel(p, root), "unparsed_name"))
            continue
        rows.append({"source": rel(p, root), "identity": f"{fields['subject']:02d}", **fields})
    if not rows:
        sample = ", ".join(repr(p.name) for p in files[:3]) or "no image files"
        raise DatasetLayoutError("rafd", root, EXPECTED, f"{len(files)} image files, none matching (e.g. {sample})")
    df = pd.DataFrame(rows).drop(columns=["subject"])
    keep = pd.Series(True, index=df.index)
    if angles is not None:
        keep &= df["angle"].isin([int(a) for a in angles])
    if gazes is not None:
        keep &= df["gaze"].isin([g.lower() for g in gazes])
    if expressions is not None:
        keep &= df["expression"].isin([e.lower() for e in expressions])
    df = df[keep].sort_values(["identity", "source"], kind="stable").reset_index(drop=True)
    if df.empty:
        raise DatasetLayoutError(
            "rafd",
            root,
            f"RaFD images with angle in {list(angles or RAFD_ANGLES)}",
            f"{len(rows)} RaFD images, none kept by the filters",
        )
    if max_identities is not None:
        ids = sorted(df["identity"].unique())[: int(max_identities)]
        df = df[df["identity"].isin(ids)].reset_index(drop=True)
    df["split"] = assign_splits(df, protocol, seed, val_fraction, test_fraction)
    return finish(df, skipped)
