"""A talking-head clip built from London's photos, released by a trained checkpoint, measured as
issue "A released face that follows its source" asks for video: one identity across frames, no
expression flips, and (with --follow) the mouth moving with the source's: its opening and its smile
width (MediaPipe's mesh on source and release frames, Pearson r over the clip's frames).

Each clip is one closed-set person: 12 frames of their neutral photo, 12 of their smiling photo,
12 neutral again, the photo moving (shift ±6 px, scale ±3 %) every frame, at 320 × 320. Released
frame by frame with one tracker, as `deidentify` releases a video (with `attribute_reference:
person` the clip is read once first, each track's mean its reference; "as it goes": against the
frames so far), with each setting below:

    .venv/bin/python docs/evaluation/diagnosis/video_clip.py CKPT PREPARED_DIR RAW_ROOT OUT.json [PEOPLE [SETTING;...]]

With a list of settings, only those are run, and OUT.json's other settings (of the same checkpoint)
are kept.
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
from kssgan.evaluate.fidelity import measure_face, pearson
from kssgan.evaluate.release_level import attacker_faces, embed_faces
from kssgan.faces.detect import YuNetDetector
from kssgan.faces.mesh import FaceMesh
from kssgan.faces.recognize import SFaceRecognizer

SETTINGS = {
    "population": {},
    "person": {"attribute_reference": "person"},
    "person, margin 2": {"attribute_reference": "person", "attribute_margin": 2.0},
    "person, as it goes, margin 2": {"attribute_reference": "person", "attribute_margin": 2.0, "_first": False},
    "population, follow expression": {"follow": "expression"},
    "person, margin 2, follow expression": {
        "attribute_reference": "person",
        "attribute_margin": 2.0,
        "follow": "expression",
        "follow_reference": "source",
    },
    "person, margin 2, follow expression against the track": {
        "attribute_reference": "person",
        "attribute_margin": 2.0,
        "follow": "expression",
        "follow_reference": "person",
    },
    "person, margin 2, follow expression against the rest": {
        "attribute_reference": "person",
        "attribute_margin": 2.0,
        "follow": "expression",
        "follow_reference": "rest",
    },
    "person, one label per track, follow expression against the track": {
        "attribute_reference": "person",
        "video_labels": "track",
        "follow": "expression",
        "follow_reference": "person",
    },
    "person, one label per track, follow pose against the track": {
        "attribute_reference": "person",
        "video_labels": "track",
        "follow": "pose",
        "follow_reference": "person",
    },
}
BLOCKS = ("neutral", "smiling", "neutral")
PER_BLOCK = 12
SIDE = 320


def clip(photos: dict[str, np.ndarray]) -> tuple[list[np.ndarray], list[str]]:
    frames, truth = [], []
    for b, expression in enumerate(BLOCKS):
        base = cv2.resize(photos[expression], (SIDE, SIDE), interpolation=cv2.INTER_AREA)
        for i in range(PER_BLOCK):
            t = b * PER_BLOCK + i
            s = 1.0 + 0.03 * np.sin(t / 6.0)
            m = cv2.getRotationMatrix2D((SIDE / 2, SIDE / 2), 0.0, s)
            m[:, 2] += (6 * np.sin(t / 5.0), 4 * np.cos(t / 7.0))
            frames.append(cv2.warpAffine(base, m, (SIDE, SIDE), borderMode=cv2.BORDER_REPLICATE))
            truth.append(expression)
    return frames, truth


def main() -> None:
    ckpt, prepared, raw, out = sys.argv[1:5]
    people = int(sys.argv[5]) if len(sys.argv) > 5 else 6
    only = sys.argv[6].split(";") if len(sys.argv) > 6 else list(SETTINGS)
    manifest = pd.read_csv(Path(prepared) / "manifest.csv", dtype=str, keep_default_na=False)
    manifest = manifest[(manifest.status == "ok") & (manifest.split != "stranger")]
    both = [i for i, g in manifest.groupby("identity") if set(g.expression) >= {"neutral", "smiling"}]
    chosen = both[:: max(1, len(both) // people)][:people]
    det, mesh, sface = YuNetDetector(), FaceMesh(), SFaceRecognizer()
    result: dict = {"checkpoint_sha256": hashlib.sha256(Path(ckpt).read_bytes()).hexdigest(), "clips": chosen}
    result |= {"frames_per_clip": len(BLOCKS) * PER_BLOCK, "side": SIDE, "settings": {}}
    kept = json.loads(Path(out).read_text()) if Path(out).exists() else {}
    if kept.get("checkpoint_sha256") == result["checkpoint_sha256"] and kept.get("clips") == chosen:
        result["settings"] = {k: v for k, v in kept["settings"].items() if k in SETTINGS and k not in only}
    for name, extra in ((n, SETTINGS[n]) for n in only):
        rows = []
        for who in chosen:
            g = manifest[manifest.identity == who]
            source = {e: g[g.expression == e].source.iloc[0] for e in ("neutral", "smiling")}
            photos = {e: cv2.imread(str(Path(raw) / s)) for e, s in source.items()}
            frames, truth = clip(photos)
            fields = {k: v for k, v in extra.items() if not k.startswith("_")}
            options = DeidentifyOptions(identity=who, jitter_seed=0, similarity=False, **fields)
            deid = Deidentifier.from_checkpoint(ckpt, options)
            tracker = deid.make_tracker()
            if extra.get("_first", True):  # as `deidentify` does: the video read once first
                deid.observe_tracks(frames)
            released, labels, tracks = [], [], set()
            for t, frame in enumerate(frames):
                [(image, faces)] = deid.process([Frame(frame, key=f"{who}#{t}")], tracker, t)
                released.append(image)
                labels.append(faces[0].label.get("expression") if faces else None)
                tracks |= {f.track for f in faces}
            emb, found = embed_faces(attacker_faces(released, det), sface)
            ok = found[1:] & found[:-1]
            cos = np.sum(emb[1:] * emb[:-1], axis=1)[ok]
            src, rel = {"mouth": [], "smile": []}, {"mouth": [], "smile": []}
            for f, r in zip(frames, released, strict=True):
                a, b = measure_face(f, det, mesh), measure_face(r, det, mesh)
                if a is not None and b is not None:
                    for n in src:
                        src[n].append(a.geometry[n])
                        rel[n].append(b.geometry[n])
            rows.append(
                {
                    "person": who,
                    "tracks": len(tracks),
                    "label_agreement": float(np.mean(np.array(labels, dtype=object) == np.array(truth))),
                    "label_changes": int(sum(a != b for a, b in zip(labels[1:], labels[:-1], strict=True))),
                    "consecutive_sface_cosine_min": float(cos.min()) if len(cos) else None,
                    "released_faces_found": float(found.mean()),
                    "mouth_r": pearson(src["mouth"], rel["mouth"]),
                    "smile_r": pearson(src["smile"], rel["smile"]),
                    "labels": "".join("s" if v == "smiling" else "n" for v in labels),
                }
            )
            print(name, rows[-1], flush=True)
        result["settings"][name] = {
            "options": extra,
            "label_agreement_mean": round(float(np.mean([r["label_agreement"] for r in rows])), 4),
            "label_changes_mean": round(float(np.mean([r["label_changes"] for r in rows])), 2),
            "truth_changes": len(BLOCKS) - 1,
            "consecutive_sface_cosine_min": round(min(r["consecutive_sface_cosine_min"] or 0 for r in rows), 4),
            "mouth_r_median": round(float(np.median([r["mouth_r"] for r in rows])), 3),
            "smile_r_median": round(float(np.median([r["smile_r"] for r in rows])), 3),
            "clips": rows,
        }
    result["settings"] = {n: result["settings"][n] for n in SETTINGS if n in result["settings"]}
    Path(out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
