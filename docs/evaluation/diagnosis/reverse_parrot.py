"""An attacker who knows the parrot attack's top group and picks the *least* like member.

The parrot attack (``kssgan evaluate``) ranks every released gallery photo by its similarity to a
released probe; on a k-Same release the probe's own group fills ranks 1 to |group|, and rank-1 is
chance (1/|group|) when the group's releases are alike. A release can also be *below* chance: then a
person's own gallery photo is systematically the least like their probe, and an attacker who picks
the least similar member of the group finds them above chance. This script measures both, within the
probe's group (the group a recogniser ranks first is the probe's own in every case here), on
London's closed set (gallery: neutral photos, probes: smiling; both released as a data holder
releases them, each person's two photos read first), SFace on the attacker's own detection and
alignment, two jitter draws per setting:

    .venv/bin/python docs/evaluation/diagnosis/reverse_parrot.py CKPT PREPARED RAW OUT.json [SETTING;... [DRAWS]]

(optional: the names of ``SETTINGS`` to run, semicolon-separated, default all; then the number of
jitter draws per setting, default 2)
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kssgan.deidentify.options import DeidentifyOptions
from kssgan.deidentify.pipeline import Deidentifier, Frame
from kssgan.evaluate.release_level import attacker_faces, embed_faces
from kssgan.faces.detect import YuNetDetector
from kssgan.faces.recognize import SFaceRecognizer

SETTINGS = {
    "frozen": {"follow": "none"},
    "follow expression, against the source": {"follow": "expression", "follow_reference": "source"},
    "follow expression, against the person": {"follow": "expression", "follow_reference": "person"},
    "follow all, against the person": {"follow": "all", "follow_reference": "person"},
    "follow expression, against the rest": {"follow": "expression", "follow_reference": "rest"},
}
DRAWS = (0, 1)


def _pick(sims: np.ndarray, own: int, best: float) -> float:
    """The share of a tie at ``best`` that is ``own`` (ties split evenly)."""
    at = np.isclose(sims, best)
    return float(at[own]) / float(at.sum())


def main() -> None:
    ckpt, prepared, raw, out = sys.argv[1:5]
    chosen = sys.argv[5].split(";") if len(sys.argv) > 5 else list(SETTINGS)
    seeds = range(int(sys.argv[6])) if len(sys.argv) > 6 else DRAWS
    manifest = pd.read_csv(Path(prepared) / "manifest.csv", dtype=str, keep_default_na=False)
    manifest = manifest[(manifest.status == "ok") & (manifest.split != "stranger")]
    people = [i for i, g in manifest.groupby("identity") if set(g.expression) >= {"neutral", "smiling"}]
    frames = []
    for who in people:
        g = manifest[manifest.identity == who]
        for e in ("neutral", "smiling"):  # gallery, probe
            src = g[g.expression == e].source.iloc[0]
            frames.append(Frame(cv2.imread(str(Path(raw) / src)), key=src, identity=who))
    det, sface = YuNetDetector(), SFaceRecognizer()
    result: dict = {"checkpoint_sha256": hashlib.sha256(Path(ckpt).read_bytes()).hexdigest(), "people": len(people)}
    result["settings"] = {}
    for name in chosen:
        extra = SETTINGS[name]
        draws = []
        for seed in seeds:
            deid = Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(jitter_seed=seed, similarity=False, **extra))
            deid.observe_people(frames)
            released = [deid.process([f])[0] for f in frames]
            groups = [faces[0].group if faces else None for _, faces in released]
            emb, _ = embed_faces(attacker_faces([image for image, _ in released], det), sface)
            most, least, chance = [], [], []
            for p in range(len(people)):
                gallery, probe = 2 * p, 2 * p + 1
                mates = [2 * q for q in range(len(people)) if groups[2 * q] == groups[gallery]]
                sims = np.array([float(emb[probe] @ emb[j]) for j in mates])
                own = mates.index(gallery)
                most.append(_pick(sims, own, sims.max()))
                least.append(_pick(sims, own, sims.min()))
                chance.append(1.0 / len(mates))
            draws.append({"most_similar": float(np.mean(most)), "least_similar": float(np.mean(least))})
        row = {
            "options": extra,
            "chance": round(float(np.mean(chance)), 4),
            "most_similar_in_group": round(float(np.mean([d["most_similar"] for d in draws])), 4),
            "least_similar_in_group": round(float(np.mean([d["least_similar"] for d in draws])), 4),
            "draws": draws,
        }
        result["settings"][name] = row
        print(name, {k: v for k, v in row.items() if k != "draws"}, flush=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
