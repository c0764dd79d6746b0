"""Does each London person's neutral -> smiling change show in their released photos?

Every closed-set person with both photos is released (the checkpoint's default release, jitter seed
0) frozen, with --follow expression against the person (the London recipe's default reading) and
against the source; MediaPipe's mesh (which no G input, loss or warp uses) reads the smile width and
mouth opening of each source and release. Reported per setting: the share of people whose released
smiling photo reads wider (more open) than their released neutral one, and the median of the
release's change over the source's.

    .venv/bin/python docs/evaluation/diagnosis/within_person.py CKPT PREPARED_DIR RAW_ROOT OUT.json [SETTING;...]

(the optional last argument: the names of ``SETTINGS`` to run, semicolon-separated; default all)
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
from kssgan.evaluate.fidelity import measure_face
from kssgan.faces.detect import YuNetDetector
from kssgan.faces.mesh import FaceMesh

SETTINGS = {
    "frozen (no follow)": {},
    "follow expression against the person": {"follow": "expression", "follow_reference": "person"},
    "follow expression against the source": {"follow": "expression", "follow_reference": "source"},
    "follow expression against the rest": {"follow": "expression", "follow_reference": "rest"},
}


def main() -> None:
    ckpt, prepared, raw, out = sys.argv[1:5]
    chosen = sys.argv[5].split(";") if len(sys.argv) > 5 else list(SETTINGS)
    manifest = pd.read_csv(Path(prepared) / "manifest.csv", dtype=str, keep_default_na=False)
    manifest = manifest[(manifest.status == "ok") & (manifest.split != "stranger")]
    people = [i for i, g in manifest.groupby("identity") if set(g.expression) >= {"neutral", "smiling"}]
    det, mesh = YuNetDetector(), FaceMesh()
    frames, whose, expr = [], [], []
    for who in people:
        g = manifest[manifest.identity == who]
        for e in ("neutral", "smiling"):
            src = g[g.expression == e].source.iloc[0]
            frames.append(Frame(cv2.imread(str(Path(raw) / src)), key=src, identity=who))
            whose.append(who)
            expr.append(e)
    source = [measure_face(f.image, det, mesh) for f in frames]
    result: dict = {"checkpoint_sha256": hashlib.sha256(Path(ckpt).read_bytes()).hexdigest(), "people": len(people)}
    result["settings"] = {}
    for name in chosen:
        extra = SETTINGS[name]
        deid = Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(jitter_seed=0, similarity=False, **extra))
        deid.observe_people(frames)
        released = [measure_face(deid.process([f])[0][0], det, mesh) for f in frames]
        row: dict = {"options": extra}
        for measure in ("smile", "mouth"):
            shows, ratio = [], []
            for p in range(len(people)):
                sn, ss, rn, rs = source[2 * p], source[2 * p + 1], released[2 * p], released[2 * p + 1]
                if None in (sn, ss, rn, rs):
                    continue
                d_src = ss.geometry[measure] - sn.geometry[measure]
                d_rel = rs.geometry[measure] - rn.geometry[measure]
                if d_src > 0:  # the source's own change goes this way
                    shows.append(d_rel > 0)
                    ratio.append(d_rel / d_src)
            row[measure] = {
                "people_whose_source_changes": len(shows),
                "share_shown": round(float(np.mean(shows)), 3),
                "median_release_over_source_change": round(float(np.median(ratio)), 3),
            }
        result["settings"][name] = row
        print(name, row, flush=True)
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
