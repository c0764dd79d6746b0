"""Release decisions of ``kssgan deidentify``: what happens to a file whose face was not changed.

Fail closed by default: a picture in which no face is found, or whose output the recogniser still
matches to its source, is **withheld** (nothing written) and reported. Opt-outs, per run:

* ``--on-no-face``: ``withhold`` (default) | ``pixelate`` / ``blur`` (the whole picture is obscured,
  since where the face is is unknown) | ``copy`` (the original is released unchanged; warned).
* ``--on-still-matching``: ``withhold`` (default) | ``keep`` (released anyway; warned).

Video: a frame in which a tracked face is not detected gets the track's last known box obscured
(:func:`obscure_box`), for as long as the tracker keeps the track (``tracker.max_age`` frames). A frame
in which no face is detected and no track is live (before the first face is seen, or after a track
ended) follows ``--on-no-face`` frame by frame: a video cannot drop a frame, so ``withhold``,
``pixelate`` and ``blur`` obscure the whole frame (``withhold``: pixelated), ``copy`` keeps it unchanged
(:func:`whole_frame_mode`, :func:`bare_frames_report`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from kssgan.deidentify.options import DeidentifyError

NO_FACE_CHOICES = ("withhold", "pixelate", "blur", "copy")
STILL_MATCHING_CHOICES = ("withhold", "keep")
# exit status of a run in which something was withheld (0: all released, 1: some failed, 2: bad request)
EXIT_WITHHELD = 3
PIXEL_BLOCKS = 16  # a whole no-face picture is pixelated to at most 16 blocks across its longer side
BOX_GROW = 0.35  # an obscured track box grows by this fraction of its size on each side


@dataclass(frozen=True)
class ReleasePolicy:
    on_no_face: str = "withhold"
    on_still_matching: str = "withhold"

    def __post_init__(self) -> None:
        if self.on_no_face not in NO_FACE_CHOICES:
            raise DeidentifyError(f"--on-no-face must be one of {NO_FACE_CHOICES}, got {self.on_no_face!r}")
        if self.on_still_matching not in STILL_MATCHING_CHOICES:
            raise DeidentifyError(
                f"--on-still-matching must be one of {STILL_MATCHING_CHOICES}, got {self.on_still_matching!r}"
            )

    def warnings(self, similarity_checked: bool) -> list[str]:
        """Lines printed on every run whose settings can release an unchanged face."""
        out = []
        if self.on_no_face == "copy":
            out.append(
                "--on-no-face copy: pictures, and video frames, in which no face is found are released UNCHANGED"
            )
        if self.on_still_matching == "keep":
            out.append("--on-still-matching keep: outputs the recogniser still matches to their source are released")
        if not similarity_checked:
            out.append("--no-similarity: outputs are not checked against their source; nothing is withheld for a match")
        return out

    def decide(self, faces: list[dict[str, Any]]) -> tuple[str, str | None]:
        """``(action, reason)`` for a photo with ``faces`` (report dicts): release | withhold | obscure."""
        if not faces:
            if self.on_no_face == "withhold":
                return "withhold", "no face detected"
            if self.on_no_face == "copy":
                return "copy", "no face detected: released unchanged (--on-no-face copy)"
            return "obscure", f"no face detected: the whole picture is {self.on_no_face}d (--on-no-face)"
        matching = sum(bool(f.get("match")) for f in faces)
        if matching:
            what = f"{matching} of {len(faces)} output face(s) still match their source (recogniser check)"
            if self.on_still_matching == "withhold":
                return "withhold", what
            return "release", what + ": released (--on-still-matching keep)"
        return "release", None

    def obscure_whole(self, image: np.ndarray) -> np.ndarray:
        """The picture pixelated or blurred all over (``--on-no-face pixelate|blur``)."""
        return obscure(image, self.on_no_face if self.on_no_face in ("pixelate", "blur") else "pixelate")


def whole_frame_mode(on_no_face: str) -> str | None:
    """How a video frame with no face and no live track is obscured under ``--on-no-face``: ``pixelate``
    or ``blur``; ``None`` for ``copy`` (kept unchanged)."""
    if on_no_face == "copy":
        return None
    return on_no_face if on_no_face in ("pixelate", "blur") else "pixelate"


def bare_frames_report(frames: list[int], on_no_face: str) -> dict[str, Any]:
    """Report fields for the video frames with no face and no live track: ``obscured_frames`` (how many
    were obscured whole) or, under ``--on-no-face copy``, ``unchanged_frames``; with their ranges
    (first, last frame, inclusive)."""
    if not frames:
        return {"obscured_frames": 0}
    ranges: list[list[int]] = []
    for f in sorted(frames):
        if ranges and f == ranges[-1][1] + 1:
            ranges[-1][1] = f
        else:
            ranges.append([f, f])
    if whole_frame_mode(on_no_face) is None:
        return {"obscured_frames": 0, "unchanged_frames": len(frames), "unchanged_frame_ranges": ranges}
    return {"obscured_frames": len(frames), "obscured_frame_ranges": ranges}


def obscure(image: np.ndarray, mode: str = "pixelate") -> np.ndarray:
    """A copy of ``image`` that keeps no detail a recogniser could use (coarse blocks or a wide blur)."""
    h, w = image.shape[:2]
    if h == 0 or w == 0:
        return image.copy()
    if mode == "blur":
        k = max(3, (max(h, w) // 6) | 1)
        small = cv2.resize(image, (max(1, w // 8), max(1, h // 8)), interpolation=cv2.INTER_AREA)
        k_small = max(3, (k // 8) | 1)
        return cv2.resize(cv2.GaussianBlur(small, (k_small, k_small), 0), (w, h), interpolation=cv2.INTER_LINEAR)
    step = max(1, max(h, w) // PIXEL_BLOCKS)
    small = cv2.resize(image, (max(1, w // step), max(1, h // step)), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)


def obscure_box(image: np.ndarray, box: tuple[float, float, float, float] | list[float]) -> None:
    """Pixelate the (grown) ``box`` (x, y, w, h) of ``image`` in place: a face the detector lost."""
    x, y, bw, bh = (float(v) for v in box)
    gx, gy = bw * BOX_GROW, bh * BOX_GROW
    h, w = image.shape[:2]
    x0, y0 = max(0, int(np.floor(x - gx))), max(0, int(np.floor(y - gy)))
    x1, y1 = min(w, int(np.ceil(x + bw + gx))), min(h, int(np.ceil(y + bh + gy)))
    if x1 > x0 and y1 > y0:
        roi = image[y0:y1, x0:x1]
        step = max(1, max(roi.shape[:2]) // 6)
        size = (max(1, roi.shape[1] // step), max(1, roi.shape[0] // step))
        small = cv2.resize(roi, size, interpolation=cv2.INTER_AREA)
        image[y0:y1, x0:x1] = cv2.resize(small, (roi.shape[1], roi.shape[0]), interpolation=cv2.INTER_NEAREST)
