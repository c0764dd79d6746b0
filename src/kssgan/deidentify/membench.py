"""Peak memory of ``kssgan deidentify`` on very large photos (a ``kssgan bench`` section, JSON in ``bench/``).

Two cases, each in a fresh process so that its max RSS is its own:

* ``photo_24mp``: a 6000 × 4000 JPEG with four small faces (≈ 150 px tall), bound 2 GB;
* ``faceless_10k``: a 10,000 × 10,000 PNG without a face (the detector's retry path), bound 3 GB.

Each runs the CLI's file loop (:func:`~kssgan.deidentify.files.deidentify_files`: decode, detect,
align, G, paste, recogniser check, encode) with the bench's small random generator, YuNet and SFace.

    python -m kssgan.deidentify.membench            # prints the JSON
    kssgan bench --only memory --out bench/memory-cpu.json
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

CASES = {
    "photo_24mp": {"size": (6000, 4000), "faces": 4, "bound_mb": 2048, "file": "photo.jpg"},
    "faceless_10k": {"size": (10000, 10000), "faces": 0, "bound_mb": 3072, "file": "wall.png"},
}


def write_case(name: str, folder: Path) -> Path:
    """The case's input file in ``folder``."""
    import cv2

    from kssgan.deidentify.bench import _two_faces

    case = CASES[name]
    w, h = case["size"]
    xs = np.linspace(60, 200, w, dtype=np.float32)[None, :]
    ys = np.linspace(0, 40, h, dtype=np.float32)[:, None]
    image = np.repeat((xs + ys).astype(np.uint8)[:, :, None], 3, axis=2)  # a smooth wall, compresses well
    faces = _two_faces(150) * 2
    for i, face in enumerate(faces[: case["faces"]]):
        fh, fw = face.shape[:2]
        x, y = int(w * (0.15 + 0.2 * i)), int(h * (0.3 + 0.1 * (i % 2)))
        image[y : y + fh, x : x + fw] = face
    path = folder / case["file"]
    cv2.imwrite(str(path), image)
    return path


def run_case(name: str, path: Path, out: Path) -> dict[str, Any]:
    """Deidentify ``path`` into ``out`` in this process; faces, seconds and max RSS."""
    from kssgan.deidentify.backends import TorchGenerator
    from kssgan.deidentify.bench import BENCH_DEFAULTS, _default_model
    from kssgan.deidentify.files import deidentify_files
    from kssgan.deidentify.options import DeidentifyOptions
    from kssgan.deidentify.pipeline import Deidentifier

    gen, spec, groups, size = _default_model(dict(BENCH_DEFAULTS))
    opts = DeidentifyOptions(batch_size=4, on_still_matching="keep")
    deid = Deidentifier(TorchGenerator(gen, "cpu", "fp32", True), spec, groups, size, opts)
    started = time.perf_counter()
    entries = deidentify_files(deid, [(path, path.name)], out, overwrite=True)
    seconds = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    entry = entries[0]
    return {
        "case": name,
        "image_size": list(CASES[name]["size"]),
        "faces_found": len(entry.get("faces", [])),
        "faces_in_image": CASES[name]["faces"],
        "status": entry.get("status"),
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_mb, 1),
        "bound_mb": CASES[name]["bound_mb"],
        "within_bound": peak_mb <= CASES[name]["bound_mb"],
    }


def bench_memory(timeout: int = 900) -> dict[str, Any]:
    """Both cases, each in its own process."""
    results: dict[str, Any] = {"peak_memory_kind": "process max RSS (ru_maxrss), whole process incl. torch"}
    with tempfile.TemporaryDirectory() as tmp:
        for name in CASES:
            path = write_case(name, Path(tmp))
            cmd = [sys.executable, "-m", "kssgan.deidentify.membench", "--one", name, str(path), str(Path(tmp) / "o")]
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
            if proc.returncode != 0:
                results[name] = {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
                continue
            results[name] = json.loads(proc.stdout.strip().splitlines()[-1])
            path.unlink()
    return results


if __name__ == "__main__":  # pragma: no cover - run by bench_memory
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        print(json.dumps(run_case(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]))))
    else:
        print(json.dumps(bench_memory(), indent=1))
