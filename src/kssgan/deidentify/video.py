"""Videos: read frames, de-identify them in chunks with one tracker, write a new file with the audio.

Decoding and encoding go through PyAV (:mod:`.videoio`): the output has the input's frame size and
rate, the codec follows the output extension (:attr:`DeidentifyOptions.video_codec`), and every
audio track is carried across (copied, or re-encoded where the container needs it; ``audio`` in the
report). A frame in which a tracked face is not detected has the track's last box obscured
(``fallback_frames`` in the report). A frame with no face detected and no live track (before the first
face is seen, or after a track ended) is never written as it is: it is pixelated or blurred whole as
``--on-no-face`` says (``withhold``: pixelated, since a video cannot drop a frame; ``copy``: kept
unchanged, warned), counted as ``obscured_frames`` (or ``unchanged_frames``) in the report. A video in
which no face is found at all, or with an output face the recogniser still matches, is handled by the
release policy (:mod:`.policy`, withheld by default).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.deidentify.options import DeidentifyError
from kssgan.deidentify.pipeline import Deidentifier, Frame
from kssgan.deidentify.policy import ReleasePolicy, bare_frames_report
from kssgan.deidentify.videoio import DEFAULT_FPS, VideoSink, VideoSource

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm", ".mpg", ".mpeg", ".wmv")
__all__ = ["DEFAULT_FPS", "VIDEO_EXTENSIONS", "deidentify_video", "is_video_path"]


def is_video_path(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


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
    detections, per-track summaries, fallback frames, audio). With status ``withheld`` ``dst`` is to be
    discarded. ``strip``: a video released unchanged (``--on-no-face copy``) is re-encoded, not copied,
    so that none of the source file's metadata survives (sealed or hash-named releases)."""
    info = _deidentify_frames(deid, src, dst, key, progress, chunk_frames)
    policy = policy or ReleasePolicy(deid.options.on_no_face, deid.options.on_still_matching)
    if not info["face_detections"]:
        action, reason = policy.decide([])
        info["reason"] = reason
        if action == "withhold":
            info.update(status="withheld", withheld_for="no_face")
        elif action == "copy":
            if strip or deid.options.audio == "drop":
                _rewrite_video(src, dst, lambda img: img, deid.options.video_codec, deid.options.audio)
                why = "the source's metadata" if deid.options.audio == "keep" else "its sound or metadata"
                info["reason"] = f"{reason}, re-encoded without {why}"
            else:
                shutil.copyfile(src, dst)
            info["status"] = "no_face"
        else:
            _rewrite_video(src, dst, policy.obscure_whole, deid.options.video_codec, deid.options.audio)
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


def _chunks(frames: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    chunk: list[np.ndarray] = []
    for img in frames:
        chunk.append(img)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rewrite_video(
    src: Path, dst: Path, fn: Callable[[np.ndarray], np.ndarray], codecs: dict[str, str], audio: str = "keep"
) -> None:
    """Every frame of ``src`` through ``fn`` (e.g. obscured whole, ``--on-no-face pixelate|blur``) into
    ``dst``, with the audio unless ``audio="drop"``."""
    with VideoSource(src) as source:
        sink = VideoSink(dst, source, codecs, audio)
        try:
            for img in source.frames(sink.audio_packet):
                sink.write(fn(img))
        finally:
            sink.close()


def _deidentify_frames(
    deid: Deidentifier, src: Path, dst: Path, key: str, progress: bool, chunk_frames: int | None
) -> dict[str, Any]:
    tracker = deid.make_tracker()
    if deid.reads_tracks_first:  # each track read against (or as) the whole of itself
        with VideoSource(src) as first:
            deid.observe_tracks(first.frames())
    chunk_frames = chunk_frames or max(1, deid.options.batch_size // 2)
    n_frames = n_faces = frames_with_faces = matching = 0
    bar = None
    with VideoSource(src) as source:
        sink = VideoSink(dst, source, deid.options.video_codec, deid.options.audio)
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=source.total, desc=Path(key).name, unit="frame", leave=False, dynamic_ncols=True)
        try:
            for images in _chunks(source.frames(sink.audio_packet), chunk_frames):
                chunk = [Frame(img, key) for img in images]
                for out, faces in deid.process(chunk, tracker, frame_offset=n_frames):
                    sink.write(out)
                    n_faces += len(faces)
                    matching += sum(bool(f.match) for f in faces)
                    frames_with_faces += bool(faces)
                n_frames += len(chunk)
                if bar is not None:
                    bar.update(len(chunk))
        finally:
            sink.close()
            if bar is not None:
                bar.close()
        fps, decode_errors, audio, cropped = source.fps, source.decode_errors, sink.audio_report(), sink.cropped_to
    if n_frames == 0:
        raise DeidentifyError(f"{Path(key).name}: no frame could be decoded")
    info: dict[str, Any] = {
        "frames": n_frames,
        "frames_with_faces": frames_with_faces,
        "face_detections": n_faces,
        "fps": round(float(fps), 3),
        "still_matching_detections": matching,
        "fallback_frames": sorted(tracker.fallbacks),
        **bare_frames_report(tracker.bare_frames, deid.options.on_no_face),
        "tracks": [t.summary() for t in tracker.all_tracks()],
        "audio": audio,
    }
    if decode_errors:
        info["decode_errors"] = decode_errors
    if cropped:
        info["cropped_to"] = cropped
    return info
