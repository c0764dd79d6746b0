"""Videos through OpenCV: read frames, de-identify them in chunks with one tracker, write a new file.

Audio is not kept. The output has the input's frame size and rate; the codec follows the output
extension (:attr:`DeidentifyOptions.video_codec`). A frame in which a tracked face is not detected has
the track's last box obscured (``fallback_frames`` in the report); frames before any face is seen are
written unchanged. A video in which no face is found at all, or with an output face the recogniser
still matches, is handled by the release policy (:mod:`.policy`, withheld by default).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from kssgan.deidentify.options import DeidentifyError
from kssgan.deidentify.pipeline import Deidentifier, Frame
from kssgan.deidentify.policy import ReleasePolicy

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
    deid: Deidentifier,
    src: Path,
    dst: Path,
    key: str,
    progress: bool = True,
    chunk_frames: int | None = None,
    policy: ReleasePolicy | None = None,
    strip: bool = False,
) -> dict[str, Any]:
    """Write the de-identified ``src`` to ``dst``; returns the report entry (status, frames, face
    detections, per-track summaries, fallback frames). With status ``withheld`` ``dst`` is to be discarded.
    ``strip``: a video released unchanged (``--on-no-face copy``) is re-encoded, not copied, so that
    none of the source file's metadata survives (sealed or hash-named releases)."""
    info = _deidentify_frames(deid, src, dst, key, progress, chunk_frames)
    policy = policy or ReleasePolicy(deid.options.on_no_face, deid.options.on_still_matching)
    if not info["face_detections"]:
        action, reason = policy.decide([])
        info["reason"] = reason
        if action == "withhold":
            info.update(status="withheld", withheld_for="no_face")
        elif action == "copy":
            if strip:
                _rewrite_video(src, dst, lambda img: img, deid.options.video_codec)
                info["reason"] = f"{reason}, re-encoded without the source's metadata"
            else:
                shutil.copyfile(src, dst)
            info["status"] = "no_face"
        else:
            _rewrite_video(src, dst, policy.obscure_whole, deid.options.video_codec)
            info["status"] = "obscured"
        return info
    matching = info["still_matching_detections"]
    info["status"] = "deidentified"
    if matching:
        what = f"{matching} of {info['face_detections']} output faces still match their source (recogniser check)"
        if policy.on_still_matching == "withhold":
            info.update(status="withheld", withheld_for="still_matching", reason=what)
        else:
            info["reason"] = what + ": released (--on-still-matching keep)"
    return info


def _rewrite_video(src: Path, dst: Path, fn: Callable[[np.ndarray], np.ndarray], codecs: dict[str, str]) -> None:
    """Every frame of ``src`` through ``fn`` (e.g. obscured whole, ``--on-no-face pixelate|blur``) into ``dst``."""
    cap = cv2.VideoCapture(str(src))
    fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
    writer = None
    try:
        while True:
            ok, img = cap.read()
            if not ok:
                break
            if writer is None:
                writer = open_writer(dst, fps, img.shape[1], img.shape[0], codecs)
            writer.write(fn(img))
    finally:
        cap.release()
        if writer is not None:
            writer.release()


def _deidentify_frames(
    deid: Deidentifier, src: Path, dst: Path, key: str, progress: bool, chunk_frames: int | None
) -> dict[str, Any]:
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise DeidentifyError(f"OpenCV cannot open {src} as a video")
    fps = cap.get(cv2.CAP_PROP_FPS) or DEFAULT_FPS
    total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) or None
    tracker = deid.make_tracker()
    chunk_frames = chunk_frames or max(1, deid.options.batch_size // 2)
    writer = None
    n_frames = n_faces = frames_with_faces = matching = 0
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
                matching += sum(bool(f.match) for f in faces)
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
        "still_matching_detections": matching,
        "fallback_frames": sorted(tracker.fallbacks),
        "tracks": [t.summary() for t in tracker.all_tracks()],
    }
