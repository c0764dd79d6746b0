"""Videos through OpenCV: read frames, de-identify them in chunks with one tracker, write a new file.

Audio is not kept. The output has the input's frame size and rate; the codec follows the output
extension (:attr:`DeidentifyOptions.video_codec`). Frames without faces are written unchanged
(before the codec's own compression).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2

from kssgan.deidentify.options import DeidentifyError
from kssgan.deidentify.pipeline import Deidentifier, Frame

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
DEFAULT_FPS = 25.0


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def open_writer(path: Path, fps: float, width: int, height: int, codecs: dict[str, str]) -> cv2.VideoWriter:
    codec = codecs.get(path.suffix.lower(), "mp4v")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    if not writer.isOpened():
        raise DeidentifyError(f"OpenCV cannot write {path.suffix} video with codec {codec!r}")
    return writer


def deidentify_video(
    deid: Deidentifier, src: Path, dst: Path, key: str, progress: bool = True, chunk_frames: int | None = None
) -> dict[str, Any]:
    """Write the de-identified ``src`` to ``dst``; returns frames, face detections and per-track summaries."""
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise DeidentifyError(f"OpenCV cannot open {src} as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = deid.make_tracker()
    chunk_frames = chunk_frames or max(1, deid.options.batch_size // 2)
    writer = None
    n_frames = n_faces = frames_with_faces = 0
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=Path(key).name, unit="frame", leave=False, dynamic_ncols=True)
    try:
        done = False
        while not done:
            chunk = []
            while len(chunk) < chunk_frames:
                ok, img = cap.read()
                if not ok:
                    done = True
                    break
                chunk.append(Frame(img, key))
            if not chunk:
                break
            if writer is None:
                h, w = chunk[0].image.shape[:2]
                writer = open_writer(dst, fps, w, h, deid.options.video_codec)
            for out, faces in deid.process(chunk, tracker, frame_offset=n_frames):
                writer.write(out)
                n_faces += len(faces)
                frames_with_faces += bool(faces)
            n_frames += len(chunk)
            if bar is not None:
                bar.update(len(chunk))
    finally:
        cap.release()
        if writer is not None:
            writer.release()
        if bar is not None:
            bar.close()
    if n_frames == 0:
        raise DeidentifyError(f"{src}: no frame could be decoded")
    return {
        "frames": n_frames,
        "frames_with_faces": frames_with_faces,
        "face_detections": n_faces,
        "fps": round(float(fps), 3),
        "tracks": [t.summary() for t in tracker.all_tracks()],
    }
