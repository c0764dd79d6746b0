"""How often the expression `deidentify` keeps is the dataset's own, read without a CSV: the critic's
reading of each photo (`--attribute-reference population`, the default) against each photo read
against its person's photos (`--attribute-reference person`, with its default margin of 0 and with
a margin of 2), on a prepared dataset's closed set
(docs/evaluation.md, "Kept attributes read against the person's own photos").

    .venv/bin/python docs/evaluation/diagnosis/attribute_reference.py CKPT PREPARED_DIR RAW_ROOT OUT.json
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kssgan.deidentify.options import DeidentifyOptions
from kssgan.deidentify.pipeline import Deidentifier, Frame


def main() -> None:
    ckpt, prepared, raw, out = sys.argv[1:5]
    manifest = pd.read_csv(Path(prepared) / "manifest.csv", dtype=str, keep_default_na=False)
    manifest = manifest[(manifest.status == "ok") & (manifest.split != "stranger")]
    photos = [cv2.imread(str(Path(raw) / s)) for s in manifest.source]
    truth = manifest.expression.to_numpy()
    ids = manifest.identity.tolist()
    result: dict = {"checkpoint_sha256": hashlib.sha256(Path(ckpt).read_bytes()).hexdigest(), "photos": len(ids)}
    labels = {}
    for name, reference, margin in (
        ("population", "population", 0.0),
        ("person", "person", 0.0),
        ("person, margin 2", "person", 2.0),
    ):
        options = DeidentifyOptions(
            attribute_reference=reference, attribute_margin=margin, similarity=False, jitter_seed=0
        )
        deid = Deidentifier.from_checkpoint(ckpt, options)
        frames = [Frame(p, key=f"p{i}", identity=who) for i, (p, who) in enumerate(zip(photos, ids, strict=True))]
        deid.observe_people(frames)
        read = []
        for frame in frames:
            [(_, faces)] = deid.process([frame])
            read.append(faces[0].label["expression"] if faces else None)
        read_arr = np.array(read, dtype=object)
        per_person = Counter()
        for who in set(ids):
            rows = [i for i, w in enumerate(ids) if w == who]
            per_person["same label in all photos"] += len({read[i] for i in rows}) == 1
        labels[name] = read
        result[name] = {
            "agrees_with_dataset": round(float(np.mean(read_arr == truth)), 4),
            "people": len(set(ids)),
            **{k: int(v) for k, v in per_person.items()},
        }
        print(name, result[name], flush=True)
    result["photos read differently with margin 0 and margin 2"] = int(
        sum(a != b for a, b in zip(labels["person"], labels["person, margin 2"], strict=True))
    )
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
