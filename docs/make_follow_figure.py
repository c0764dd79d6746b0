"""Build docs/release_follows.jpg: whole photos and what `kssgan deidentify` releases for them, with the
defaults (the group's frozen face; the demo's recipe replaces the whole face-crop photo, `region:
frame`) and following the source (`--mask.region head --follow pose --colour match --blend harmonise`).

Top row: two synthetic demo people (DCGAN, people who do not exist). Bottom row: one person of the
Face Research Lab London Set (CC BY 4.0; DeBruine & Jones 2017), neutral and smiling.

    python docs/make_follow_figure.py DEMO_CKPT LONDON_CKPT LONDON_DIR docs/release_follows.jpg
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from kssgan.deidentify.options import DeidentifyOptions, MaskShape
from kssgan.deidentify.pipeline import Deidentifier, Frame

SIDE = 300
RELEASES = {
    "default": {},
    "following": {"mask": MaskShape(region="head"), "follow": "pose", "colour": "match", "blend": "harmonise"},
}


def _released(ckpt: str, photos: list[np.ndarray], options: dict) -> list[np.ndarray]:
    deid = Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(jitter_seed=0, similarity=False, **options))
    return [deid.process([Frame(p, key=f"fig{i}")])[0][0] for i, p in enumerate(photos)]


def _tile(image: np.ndarray, label: str) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    square = image[(h - s) // 2 : (h - s) // 2 + s, (w - s) // 2 : (w - s) // 2 + s]
    tile = cv2.resize(square, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
    cv2.rectangle(tile, (0, 0), (SIDE, 22), (255, 255, 255), -1)
    cv2.putText(tile, label, (6, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def main() -> None:
    demo_ckpt, london_ckpt, london_dir, out = sys.argv[1:5]
    demo_raw = Path("outputs/prepared/demo/raw")
    demo = [cv2.imread(str(sorted((demo_raw / p).glob("*.png"))[0])) for p in ("id000", "id005")]
    london = [cv2.imread(str(Path(london_dir) / f)) for f in ("neutral_front/002_03.jpg", "smiling_front/002_08.jpg")]
    rows = []
    for ckpt, photos, names in ((demo_ckpt, demo, ["demo A", "demo B"]), (london_ckpt, london, ["neutral", "smiling"])):
        outs = {r: _released(ckpt, photos, o) for r, o in RELEASES.items()}
        tiles = []
        for i, name in enumerate(names):
            tiles += [_tile(photos[i], f"source: {name}")] + [_tile(outs[r][i], r) for r in RELEASES]
        rows.append(np.hstack(tiles))
    cv2.imwrite(out, np.vstack(rows))


if __name__ == "__main__":
    main()
