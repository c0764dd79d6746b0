"""What a picture holds beyond one RGB image, kept by ``kssgan deidentify`` (nothing lost silently).

* :func:`read_alpha`: the alpha channel of a PNG, WebP, TIFF or GIF (re-attached to the output).
* :func:`frame_count` / :func:`deidentify_animation`: every frame of an animated GIF, WebP or PNG
  (or a multi-page TIFF) goes through the generator with one tracker, like a video, and is written
  back with its frame durations and loop count.
* :func:`unsupported_kind`: formats recognised but not handled (e.g. HEIC, or AVIF without Pillow's
  AVIF codec) are recorded as skipped with the reason.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.deidentify.options import DeidentifyError
from kssgan.deidentify.policy import ReleasePolicy, bare_frames_report

ALPHA_FORMATS = ("png", "webp", "tiff", "gif")
ANIMATED_FORMATS = ("gif", "webp", "png", "tiff")
PIL_FORMAT = {"gif": "GIF", "webp": "WEBP", "png": "PNG", "tiff": "TIFF", "avif": "AVIF"}


def sniff_container(head: bytes) -> str | None:
    """``avif`` / ``heic`` from an ISO-BMFF ``ftyp`` box (formats :func:`sniff_format` does not know)."""
    if head[4:8] != b"ftyp":
        return None
    brand = head[8:12]
    if brand in (b"avif", b"avis"):
        return "avif"
    if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
        return "heic"
    return None


def avif_supported() -> bool:
    from PIL import features

    return bool(features.check("avif"))


def unsupported_kind(head: bytes) -> str | None:
    """The reason a recognised picture format is not handled, or None."""
    kind = sniff_container(head)
    if kind == "heic":
        return "HEIC/HEIF pictures are not supported: convert them to JPEG or PNG"
    if kind == "avif" and not avif_supported():
        return "AVIF cannot be read here (this Pillow has no AVIF codec): convert it to JPEG or PNG"
    return None


def frame_count(src: Path, fmt: str | None) -> int:
    """How many frames (pages) the picture holds; 1 for a still or a format that cannot animate."""
    if fmt not in ANIMATED_FORMATS:
        return 1
    from PIL import Image

    try:
        with Image.open(src) as im:
            return int(getattr(im, "n_frames", 1) or 1)
    except Exception:  # unreadable: load_image says why
        return 1


def read_alpha(src: Path, fmt: str | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """The alpha channel (H×W uint8, oriented like :func:`load_image`'s image), or None when opaque."""
    if fmt not in ALPHA_FORMATS:
        return None
    from PIL import Image, ImageOps

    with Image.open(src) as im:
        if im.mode not in ("RGBA", "LA", "PA", "La", "RGBa") and "transparency" not in im.info:
            return None
        im = ImageOps.exif_transpose(im)
        alpha = np.asarray(im.convert("RGBA"))[:, :, 3]
    if alpha.shape != tuple(shape[:2]) or bool((alpha == 255).all()):
        return None
    return np.ascontiguousarray(alpha)


def read_frames(src: Path) -> tuple[list[np.ndarray], list[np.ndarray | None], dict[str, Any]]:
    """``(BGR frames, alpha per frame or None, save options)`` of an animated picture."""
    from PIL import Image, ImageSequence

    frames: list[np.ndarray] = []
    alphas: list[np.ndarray | None] = []
    durations: list[int] = []
    with Image.open(src) as im:
        info = {"loop": im.info.get("loop", 0)}
        for page in ImageSequence.Iterator(im):
            rgba = np.asarray(page.convert("RGBA"))
            frames.append(np.ascontiguousarray(rgba[:, :, 2::-1]))
            alphas.append(None if (rgba[:, :, 3] == 255).all() else np.ascontiguousarray(rgba[:, :, 3]))
            durations.append(int(page.info.get("duration", im.info.get("duration", 100)) or 100))
    info["duration"] = durations
    return frames, alphas, info


def write_frames(
    dst: Path, frames: list[np.ndarray], alphas: list[np.ndarray | None], info: dict[str, Any], fmt: str
) -> None:
    """Write ``frames`` (BGR) as one animated picture of format ``fmt``, with durations and loop."""
    from PIL import Image

    images = []
    for img, alpha in zip(frames, alphas, strict=True):
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        images.append(Image.fromarray(np.dstack([rgb, alpha]) if alpha is not None else rgb))
    opts: dict[str, Any] = {"save_all": True, "append_images": images[1:]}
    if fmt in ("gif", "webp", "png"):
        opts.update(duration=info["duration"], loop=info.get("loop", 0))
    if fmt == "gif":
        opts["disposal"] = 2
    buf = io.BytesIO()
    images[0].save(buf, format=PIL_FORMAT[fmt], **opts)
    dst.write_bytes(buf.getvalue())


def deidentify_animation(
    deid: Any, src: Path, dst: Path, key: str, fmt: str, policy: ReleasePolicy, strip: bool = False
) -> dict[str, Any]:
    """Every frame of an animated picture de-identified (one tracker) into ``dst``; the report entry
    as for a video (status, frames, face detections, tracks, fallback frames)."""
    from kssgan.deidentify.pipeline import Frame

    try:
        frames, alphas, info = read_frames(src)
    except Exception as err:
        raise DeidentifyError(f"cannot read the frames of {Path(key).name}: {type(err).__name__}: {err}") from err
    tracker = deid.make_tracker()
    if deid.reads_tracks_first:  # each track read against (or as) the whole of itself
        deid.observe_tracks(frames)
    outs, n_faces, with_faces, matching = [], 0, 0, 0
    step = max(1, deid.options.batch_size // 2)
    for i in range(0, len(frames), step):
        chunk = [Frame(img, key) for img in frames[i : i + step]]
        for out, faces in deid.process(chunk, tracker, frame_offset=i):
            outs.append(out)
            n_faces += len(faces)
            matching += sum(bool(f.match) for f in faces)
            with_faces += bool(faces)
    entry: dict[str, Any] = {
        "frames": len(frames),
        "frames_with_faces": with_faces,
        "face_detections": n_faces,
        "still_matching_detections": matching,
        "fallback_frames": sorted(tracker.fallbacks),
        **bare_frames_report(tracker.bare_frames, deid.options.on_no_face),
        "tracks": [t.summary() for t in tracker.all_tracks()],
    }
    if any(a is not None for a in alphas):
        entry["alpha"] = True
    if not n_faces:
        action, reason = policy.decide([])
        entry["reason"] = reason
        if action == "withhold":
            entry.update(status="withheld", withheld_for="no_face")
            return entry
        if action == "copy" and not strip:
            shutil.copyfile(src, dst)
        else:
            keep = action == "copy"
            write_frames(dst, [f if keep else policy.obscure_whole(f) for f in frames], alphas, info, fmt)
            if keep:
                entry["reason"] = f"{reason}, re-encoded without the source's metadata"
        entry["status"] = "no_face" if action == "copy" else "obscured"
        return entry
    entry["status"] = "deidentified"
    if matching:
        what = f"{matching} of {n_faces} output faces still match their source (recogniser check)"
        if policy.on_still_matching == "withhold":
            entry.update(status="withheld", withheld_for="still_matching", reason=what)
            return entry
        entry["reason"] = what + ": released (--on-still-matching keep)"
    write_frames(dst, outs, alphas, info, fmt)
    return entry
