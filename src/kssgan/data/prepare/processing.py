"""The per-image work of ``kssgan prepare``: load (format sniffed from the bytes), detect faces
with 5 landmarks, keep one (largest, ties → most central), align it to the ArcFace template,
write the crop and embed a 112×112 aligned copy. Bad input becomes a ``skipped`` row with a reason."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.data.prepare.store import crop_name


@dataclass
class Timer:
    """Seconds spent per stage (reported in prepare.json)."""

    load: float = 0.0
    detect: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    write: float = 0.0


def process_chunk(
    rows: list[dict[str, Any]],
    raw_root: Path,
    out: Path,
    detector: Any,
    recognizer: Any,
    image_size: int,
    margin: float,
    min_face: float,
    timer: Timer,
) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """Manifest rows, crop names and embeddings for one chunk of reader rows."""
    import cv2

    from kssgan.data.readers.image_io import ImageLoadError, load_image
    from kssgan.faces.align import align_faces
    from kssgan.faces.detect import select_face

    results: list[dict[str, Any]] = []
    keep_images, keep_lms, keep_rows = [], [], []
    for row in rows:
        rec = dict(row)
        rec.update(status="skipped", crop="", reason="", det_score="")
        t0 = time.perf_counter()
        try:
            image, notes = load_image(raw_root / row["source"])
        except ImageLoadError as err:
            timer.load += time.perf_counter() - t0
            rec["reason"] = err.reason
            results.append(rec)
            continue
        t1 = time.perf_counter()
        timer.load += t1 - t0
        rec["height"], rec["width"] = image.shape[:2]
        dets = detector.detect(image)
        timer.detect += time.perf_counter() - t1
        face, n = select_face(dets, image.shape)
        rec["n_faces"] = n
        if n > 1:
            notes.append(f"several_faces:{n}")
        if face is None:
            rec["reason"] = ";".join(["no_face", *notes])
            results.append(rec)
            continue
        rec["det_score"] = round(face.score, 4)
        rec["face_size"] = round(face.size, 1)
        for i, (x, y) in enumerate(face.landmarks):
            rec[f"lm{i}_x"], rec[f"lm{i}_y"] = round(float(x), 2), round(float(y), 2)
        if face.size < min_face:
            rec["reason"] = ";".join([f"tiny_face:{face.size:.0f}px", *notes])
            results.append(rec)
            continue
        if not np.all(np.isfinite(face.landmarks)):
            rec["reason"] = ";".join(["bad_landmarks", *notes])
            results.append(rec)
            continue
        rec["reason"] = ";".join(notes)
        keep_images.append(image)
        keep_lms.append(face.landmarks)
        keep_rows.append(rec)
        results.append(rec)

    crops_out: list[str] = []
    emb = np.zeros((0, getattr(recognizer, "dim", 0)), np.float32)
    if keep_rows:
        t0 = time.perf_counter()
        crops = align_faces(keep_images, keep_lms, image_size, margin=margin)
        rec_crops = align_faces(keep_images, keep_lms, 112, margin=0.0)
        t1 = time.perf_counter()
        timer.align += t1 - t0
        emb = recognizer.embed(rec_crops)
        t2 = time.perf_counter()
        timer.embed += t2 - t1
        for rec, crop in zip(keep_rows, crops, strict=True):
            name = crop_name(rec["source"], rec["identity"])
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), crop):
                raise OSError(f"could not write {path}")
            rec["crop"], rec["status"] = name, "ok"
            crops_out.append(name)
        timer.write += time.perf_counter() - t2
    return results, crops_out, emb


def progress_bar(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]prepare[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
        refresh_per_second=2,  # a slow refresh thread: it competes with OpenCV's workers on small CPUs
    )
