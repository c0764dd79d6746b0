"""The parrot attack over releases that differ in one thing (docs/evaluation.md, "What the parrot
attack still found"). A diagnostic, not a feature: it releases a prepared dataset's closed-set photos
through `deidentify`'s own code (``release_level.release_photos``) several times (each its own
jitter seed), lets YuNet + SFace / dlib attack them as ``kssgan evaluate`` does, and prints the
parrot rank-1 over the draws with its clustered 95 % upper bound, per variant:

    python docs/evaluation/diagnosis/parrot_diagnosis.py CKPT PREPARED OUT.json '{"name": {...}}' DRAWS

A variant's keys: reach, jitter (deidentify's), region (head | frame), seed0 (the first jitter seed),
grey (every released pixel whose paste alpha is below this is set to grey: what lies outside the
regenerated region is removed), pad (each photo grown by this share of its side, edges replicated,
before release: the face's crop no longer reaches past the photo's edge), oracle (the dataset's
own expression labels instead of the critic's estimates; `kssgan evaluate --release-labels given`),
canon (every face pasted at the dataset's median landmarks instead of its own: the experiment that
led to region frame).
"""

from __future__ import annotations

import json
import pickle
import sys
import time

import cv2
import numpy as np
import torch

import kssgan.deidentify.pipeline as pipeline
from kssgan.deidentify.options import DeidentifyOptions, MaskShape
from kssgan.deidentify.pipeline import Deidentifier
from kssgan.evaluate import release_level
from kssgan.evaluate.release import load_release
from kssgan.faces.align import similarity_transform
from kssgan.faces.detect import YuNetDetector
from kssgan.faces.recognize import get_recognizer


def main() -> None:
    ckpt, prepared, out = sys.argv[1], sys.argv[2], sys.argv[3]
    variants = json.loads(sys.argv[4])
    draws = int(sys.argv[5]) if len(sys.argv) > 5 else 4
    rel = load_release(prepared, None, "all")
    base_photos, why = release_level.full_photos(rel.root, rel.manifest["source"].astype(str).tolist())
    if base_photos is None:
        raise SystemExit(why)
    ids = rel.identities
    ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    i2g = ck["kssgan"]["groups"]["identity_to_group"]
    clusters = [i2g.get(i, f"p:{i}") for i in ids]
    det = YuNetDetector()
    recs = {r: get_recognizer(r, None) for r in ("sface", "dlib")}
    cols = [f"lm{i}_{c}" for i in range(5) for c in "xy"]
    median = np.median(rel.manifest[cols].to_numpy().reshape(-1, 5, 2), 0)
    res: dict = {}
    for name, v in variants.items():
        t = time.time()
        # canon: every face pasted at the data's median landmarks (the experiment behind region frame)
        pipeline.similarity_transform = (
            (lambda lms, size, margin: similarity_transform(median, size, margin))
            if v.get("canon")
            else similarity_transform
        )
        photos = base_photos
        if v.get("pad"):
            photos = [
                cv2.copyMakeBorder(p, *(int(v["pad"] * max(p.shape[:2])),) * 4, cv2.BORDER_REPLICATE) for p in photos
            ]
        attrs = [{"expression": e} for e in rel.manifest["expression"].astype(str)] if v.get("oracle") else None
        embs = []
        for d in range(draws):
            opts = DeidentifyOptions(
                mask=MaskShape(reach=v.get("reach", 1.15), region=v.get("region", "auto")),
                paste_jitter=v.get("jitter", 0.06),
                jitter_seed=d + v.get("seed0", 0),
                similarity=False,
            )
            deid = Deidentifier.from_checkpoint(ckpt, opts, record_alpha=bool(v.get("grey")))
            alphas: list | None = [] if v.get("grey") else None
            released, _ = release_level.release_photos(deid, photos, ids, alphas, attrs)
            if v.get("grey"):  # every pixel the paste did not (mostly) regenerate set to grey
                released = [
                    None if r is None else np.where((a >= v["grey"])[:, :, None], r, 128).astype(np.uint8)
                    for r, a in zip(released, alphas, strict=True)
                ]
            embs.append(release_level.release_embeddings(released, recs, det, 0))
        with open(out.replace(".json", f"_{name}.pkl"), "wb") as fh:  # the embeddings, to pool runs' draws
            pickle.dump(
                {"ids": ids, "clusters": clusters, "embs": [{r: e[r]["plain"] for r in recs} for e in embs]}, fh
            )
        res[name] = {}
        for r in recs:
            p = release_level.parrot_over_draws([e[r]["plain"] for e in embs], ids, clusters)
            res[name][r] = (round(p["rank1"]["value"], 3), round(p.get("rank1_clustered", {}).get("ci_high", -1), 3))
        print(name, res[name], f"{time.time() - t:.0f}s", flush=True)
        with open(out, "w") as fh:
            json.dump(res, fh, indent=1)


if __name__ == "__main__":
    main()
