"""How alike in kind a prepared folder's group-mates are, for the grouping in its groups.json and
for groupings on kind (``kssgan prepare --grouping.kind``): each photo's skin-tone ΔE76 to its
group's mean tone (the colour a group's surrogate is toned to) and whether its person's age is
within 8 years of the group's mean age (the age a group's surrogate is chosen near). No G, no
release: what the grouping alone allows.

    .venv/bin/python docs/evaluation/diagnosis/kind_groups.py outputs/prepared/london out.json
"""

from __future__ import annotations

import json
import sys
import tempfile

import numpy as np
import pandas as pd

from kssgan.data.grouping import GroupAssignment
from kssgan.data.prepare import regroup
from kssgan.data.prepare.grouping_step import AGE_UNIT, TONE_UNIT, photo_tones
from kssgan.data.prepared import PreparedDataset

WEIGHTS = ({"tone": 0.5}, {"tone": 0.5, "age": 0.5}, {"tone": 1.0, "age": 1.0})


def alike(ok: pd.DataFrame, photos: np.ndarray, assignment: GroupAssignment) -> dict[str, float]:
    """``ok``: the grouped people's rows; ``photos``: their :func:`photo_tones`."""
    ids = ok["identity"].astype(str).to_numpy()
    tone = {n: photos[ids == n].mean(0) for n in set(ids)}  # per person
    age = pd.to_numeric(ok["age"], errors="coerce").groupby(ids).mean() if "age" in ok.columns else None
    de, near = [], []
    for g in range(assignment.num_groups):
        members = assignment.members(g)
        mean_tone = np.mean([tone[m] for m in members], 0)
        for i in np.flatnonzero(np.isin(ids, members)):
            de.append(float(np.linalg.norm(photos[i] - mean_tone)))
        if age is not None:
            known = [float(age[m]) for m in members if np.isfinite(age[m])]
            near += [abs(float(age[ids[i]]) - np.mean(known)) <= 8 for i in np.flatnonzero(np.isin(ids, members))
                     if known and np.isfinite(age[ids[i]])]  # fmt: skip
    out = {
        "delta_e_median": round(float(np.median(de)), 2),
        "share_over_10": round(float(np.mean(np.array(de) > 10)), 3),
    }
    return out | ({"age_within_8_of_group": round(float(np.mean(near)), 3)} if near else {})


def main(root: str, out: str) -> None:
    current = GroupAssignment.load(f"{root}/groups.json")
    data = PreparedDataset.open(root, groups=None, text=True)
    ok = data.manifest[data.manifest["identity"].astype(str).isin(current.identity_to_group)]
    photos = photo_tones(root, ok)  # read once; every grouping below covers the same people
    result = {
        "units": {"tone": TONE_UNIT, "age": AGE_UNIT},
        "groups.json": {"kind": current.kind} | alike(ok, photos, current),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for w in WEIGHTS:
            a = regroup(root, current.k, current.method, current.seed, f"{tmp}/groups.json", current.stratify, w)
            result[json.dumps(w)] = alike(ok, photos, a)
    print(json.dumps(result, indent=1))
    with open(out, "w") as fh:
        json.dump(result, fh, indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
