"""The per-image work of ``kssgan prepare``: load (format sniffed from the bytes), detect faces
with 5 landmarks, keep one (largest, ties → most central), align it to the ArcFace template,
encode the crop (PNG) and embed a 112×112 aligned copy. Bad input becomes a ``skipped`` row with a
reason. Nothing here writes to the prepared folder: the crops come back as PNG bytes, so that the
one writer (:func:`~kssgan.data.prepare.run.prepare_dataset`) puts them on disk, whichever process
or machine did the work (:mod:`.workers`)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def crop_name(source: str, identity: str) -> str:
    """Where the crop of ``source`` goes, relative to the prepared folder."""
    stem = _safe_name(source.replace("/", "__"))
    return f"crops/{_safe_name(identity)}/{stem}.png"


@dataclass
class Timer:
    """Seconds spent per stage (reported in prepare.json)."""

    load: float = 0.0
    detect: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    write: float = 0.0

    def add(self, other: Timer) -> None:
        for key, value in vars(other).items():
            setattr(self, key, getattr(self, key) + value)


@dataclass
class ChunkResult:
    """What one chunk of reader rows gives: its manifest rows, its crops (name, PNG bytes) and their
    embeddings, the stage times and the peak RSS (MB) of the process that made it."""

    rows: list[dict[str, Any]]
    crops: list[tuple[str, bytes]] = field(default_factory=list)
    embeddings: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    timer: Timer = field(default_factory=Timer)
    peak_rss_mb: float = 0.0
    pid: int = 0
    node: str = ""  # the Ray node that made it (Ray back end only)


def process_chunk(
    rows: list[dict[str, Any]],
    raw_root: Path,
    detector: Any,
    recognizer: Any,
    image_size: int,
    margin: float,
    min_face: float,
) -> ChunkResult:
    """Manifest rows, PNG-encoded crops and embeddings for one chunk of reader rows."""
    import cv2

    from kssgan.data.readers.image_io import ImageLoadError, load_image
    from kssgan.faces.align import align_faces
    from kssgan.faces.detect import select_face

    timer = Timer()
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

    out = ChunkResult(results, timer=timer)
    out.embeddings = np.zeros((0, getattr(recognizer, "dim", 0)), np.float32)
    if keep_rows:
        t0 = time.perf_counter()
        crops = align_faces(keep_images, keep_lms, image_size, margin=margin)
        rec_crops = align_faces(keep_images, keep_lms, 112, margin=0.0)
        t1 = time.perf_counter()
        timer.align += t1 - t0
        out.embeddings = recognizer.embed(rec_crops)
        t2 = time.perf_counter()
        timer.embed += t2 - t1
        for rec, crop in zip(keep_rows, crops, strict=True):
            ok, png = cv2.imencode(".png", crop)
            if not ok:
                raise OSError(f"could not encode the crop of {rec['source']}")
            name = crop_name(rec["source"], rec["identity"])
            rec["crop"], rec["status"] = name, "ok"
            out.crops.append((name, png.tobytes()))
        timer.write += time.perf_counter() - t2
    return out


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
