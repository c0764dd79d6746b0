"""Build docs/demo_release.png: synthetic demo people (DCGAN, people who do not exist) and what
`kssgan deidentify` releases for them, two k-Same groups side by side.

    python docs/make_demo_figure.py outputs/demo/checkpoints/final.ckpt docs/demo_release.png
"""

import csv
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

PREPARED = Path("outputs/prepared/demo")


def main() -> None:
    ckpt, out_png = sys.argv[1], Path(sys.argv[2])
    groups = json.loads((PREPARED / "groups.json").read_text())["identity_to_group"]
    by_group: dict[int, list[str]] = {}
    for ident, g in sorted(groups.items()):
        by_group.setdefault(g, []).append(ident)
    chosen = [(g, i) for g in sorted(by_group)[:2] for i in by_group[g][:3]]
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.mkdir()
        rows = []
        for n, (_, ident) in enumerate(chosen):
            name = f"{n}.png"
            Image.open(PREPARED / "raw" / ident / "00.png").convert("RGB").save(src / name)
            rows.append({"path": name, "identity": ident})
        with open(Path(tmp) / "who.csv", "w", newline="") as fh:
            w = csv.DictWriter(fh, ["path", "identity"])
            w.writeheader()
            w.writerows(rows)
        cmd = [
            sys.executable,
            "-m",
            "kssgan.cli",
            "deidentify",
            "--ckpt",
            ckpt,
            "--input",
            str(src),
            "--output",
            str(dst),
            "--attributes",
            str(Path(tmp) / "who.csv"),
            "--no-progress",
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        print(done.stdout[-2000:], done.stderr[-2000:])
        tiles = []
        for n in range(len(chosen)):
            a = np.asarray(Image.open(src / f"{n}.png").resize((160, 160)))
            out = dst / f"{n}.png"
            b = np.asarray(Image.open(out).convert("RGB").resize((160, 160))) if out.is_file() else np.full_like(a, 255)
            tiles.append(np.concatenate([a, np.full((4, 160, 3), 255, np.uint8), b], axis=0))
        pad = np.full((tiles[0].shape[0], 4, 3), 255, np.uint8)
        row = [t for tile in tiles for t in (tile, pad)][:-1]
        gap = np.full((tiles[0].shape[0], 16, 3), 255, np.uint8)
        row = [*row[:5], gap, *row[6:]]  # a gap between the two groups
        Image.fromarray(np.concatenate(row, axis=1)).save(out_png)
        print("wrote", out_png)


if __name__ == "__main__":
    main()
