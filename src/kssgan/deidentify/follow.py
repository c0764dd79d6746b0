"""The source's pose and expression on the generated face (``deidentify --follow``).

In the default recipe G's released face depends on the label alone: every photo of a group gets the
same face, whatever the source's head turn, mouth or eyes. :class:`GeometryFollower` moves the
generated face after G with a piecewise-affine warp of dlib's 68 landmarks (``face-recognition-
models-ng``'s ``shape_predictor_68_face_landmarks.dat``), found on the source photo and on G's
output (upscaled to the face's size in the photo):

* ``follow: expression | pose | all`` keep the *group's* face shape and apply a handful of the
  source's ratios to it, each relative to the face's own size (:func:`_ratios`): ``expression``
  mouth opening, smile width and corner lift; ``pose`` also head yaw and pitch (the nose's offset
  from the jaw's middle, applied as a bulge that fades to nothing at the jaw line, and the nose's
  length); ``all`` also each eye's opening and the brows' height. No source distance is copied,
  but what is the same in all of a person's photos (how they hold their head, their brows) tells
  their photos apart from their group's: each mode's privacy cost is measured.
* ``follow: shape`` moves the output's 68 points onto the source's: everything geometric follows,
  the source's own face shape included, and face shape identifies people; its privacy cost is
  measured (``docs/evaluation.md``, "A face that follows its source").
* ``follow: none`` is the frozen face.

``follow_reference`` says what is followed. ``source`` (above): the source's own ratios, or points.
``person``: the source's *change* from its person's mean (the mean of their photos' points, each
in its aligned crop's coordinates: :class:`PersonShapes`), applied to the group's face. A person's
neutral → smiling change then shows in the outputs, while what is the same in all of their photos
(their head's habitual turn, their mouth's resting width, their face shape) does not: every member
of a group at their own mean gets the group's face, which is what k-Same's bound rests on. A person
with one photo, or of unknown identity, gets no change at all: the frozen face.
``rest``: the change from the person's *resting* photos only (those released with the resting label,
``follow_rest``, e.g. ``expression=neutral``; the mean of their points). A photo released at rest gets
the group's face untouched, so every resting photo of a group's members is the same face wherever the
person's own mean lies; only a change away from rest (a smile) is added. ``person`` moves a person's
two photos in opposite directions about their mean, and an attacker who picks the least alike of a
group finds them (docs/evaluation.md, "An attacker who picks the least alike"); ``rest`` never moves a
resting photo. A person with no resting photo gets the frozen face throughout; a video track is
followed against its resting frames so far.

The measuring landmark model of ``kssgan evaluate`` is a different one (MediaPipe's mesh,
:mod:`kssgan.faces.mesh`), so the figures are not read off the points this warp sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import numpy as np

__all__ = [
    "FOLLOWED",
    "FOLLOW_CHOICES",
    "FOLLOW_MODES",
    "FOLLOW_REFERENCES",
    "GeometryFollower",
    "PersonShapes",
    "expression_target",
    "piecewise_affine",
    "registered_mean",
]

FOLLOW_MODES = ("none", "expression", "pose", "all", "shape")
#: ``DeidentifyOptions.follow``: a mode, or auto (the checkpoint's ``release_follow``; none without one).
FOLLOW_CHOICES = ("auto", *FOLLOW_MODES)
#: ``DeidentifyOptions.follow_reference``: the source's own geometry, or its change from its person's
#: mean, or from its person's resting photos (``follow_rest``); auto: person where attributes are read
#: against the person (``attribute_reference``).
FOLLOW_REFERENCES = ("auto", "source", "person", "rest")
#: The :func:`_ratios` each ratio-transfer mode takes from the source.
FOLLOWED = {
    "expression": ("mouth", "smile", "lift"),
    "pose": ("mouth", "smile", "lift", "yaw", "pitch"),
    "all": ("mouth", "smile", "lift", "yaw", "pitch", "eye0", "eye1", "brow"),
}

INNER = np.arange(17, 68)
BROWS = np.arange(17, 27)
UPPER_LIP = np.array([49, 50, 51, 52, 53, 61, 62, 63])
LOWER_LIP = np.array([55, 56, 57, 58, 59, 65, 66, 67])
NOSE_LOW = np.arange(30, 36)
EYES = ((36, 39, (37, 38), (41, 40)), (45, 42, (44, 43), (46, 47)))  # outer, inner, upper lid, lower lid
CORNERS = ((48, 60), (54, 64))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def _axes(p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The face's own across/down unit vectors, its height (nose bridge → chin) and jaw width."""
    across = _unit(p[16] - p[0])
    down = np.array([-across[1], across[0]])
    if np.dot(down, p[8] - p[27]) < 0:
        down = -down
    return across, down, float(np.dot(p[8] - p[27], down)), float(np.linalg.norm(p[16] - p[0]))


def _ratios(p: np.ndarray) -> dict[str, float]:
    """The identity-poor figures :func:`expression_target` transfers, each relative to the face's
    own size: mouth opening (inner-lip gap / face height), smile width (corner span / outer eye
    span), corner lift (/ face height), each eye's opening (lid gap / eye width), brow height
    (/ face height), yaw (the nose tip's offset from the jaw's middle / jaw width) and pitch (nose
    length / face height)."""
    across, down, height, width = _axes(p)
    h = max(height, 1e-6)
    out = {
        "mouth": float(np.mean([np.dot(p[a] - p[b], down) for a, b in ((66, 62), (67, 61), (65, 63))])) / h,
        "smile": float(np.dot(p[54] - p[48], across)) / max(float(np.linalg.norm(p[45] - p[36])), 1e-6),
        "lift": float(np.dot((p[48] + p[54]) / 2 - (p[51] + p[57]) / 2, down)) / h,
        "brow": float(np.dot(p[36:48].mean(0) - p[BROWS].mean(0), down)) / h,
        "yaw": float(np.dot(p[30] - (p[0] + p[16]) / 2, across)) / max(width, 1e-6),
        "pitch": float(np.dot(p[30] - p[27], down)) / h,
    }
    for k, (outer, inner, upper, lower) in enumerate(EYES):
        gap = np.mean([np.dot(p[lo] - p[up], down) for up, lo in zip(upper, lower, strict=True)])
        out[f"eye{k}"] = float(gap) / max(float(np.linalg.norm(p[outer] - p[inner])), 1e-6)
    return out


#: Ratios that are gaps (lips, lids): a change against the person's mean never closes them past shut.
GAPS = ("mouth", "eye0", "eye1")


def expression_target(
    own: np.ndarray,
    source: np.ndarray,
    followed: tuple[str, ...] = FOLLOWED["all"],
    strength: float = 1.0,
    reference: np.ndarray | None = None,
) -> np.ndarray:
    """``own`` (the generated face's 68 points) moved so that its :func:`_ratios` named in
    ``followed`` equal ``source``'s (``strength`` 1) or go that fraction of the way; its shape is
    otherwise its own (the jaw line never moves). With ``reference`` (the person's mean points) the
    ratios move by the source's change from the reference's instead: ``own`` at the person's mean."""
    o = np.asarray(own, np.float64)
    t = o.copy()
    across, down, height, width = _axes(o)
    want, have = _ratios(np.asarray(source, np.float64)), _ratios(o)
    if reference is None:
        delta = {k: strength * (want[k] - have[k]) if k in followed else 0.0 for k in want}
    else:
        base = _ratios(np.asarray(reference, np.float64))
        delta = {k: strength * (want[k] - base[k]) if k in followed else 0.0 for k in want}
        for k in GAPS:
            delta[k] = max(delta[k], -max(have[k], 0.0))
    # mouth opening: lips apart symmetrically
    t[UPPER_LIP] -= 0.5 * delta["mouth"] * height * down
    t[LOWER_LIP] += 0.5 * delta["mouth"] * height * down
    # smile: corners out (or in) and up (or down)
    dw = delta["smile"] * float(np.linalg.norm(o[45] - o[36]))
    for sign, pts in ((-1.0, CORNERS[0]), (1.0, CORNERS[1])):
        t[list(pts)] += sign * 0.5 * dw * across + delta["lift"] * height * down
    # eyes: lids apart (or together)
    for k, (outer, inner, upper, lower) in enumerate(EYES):
        d = delta[f"eye{k}"] * float(np.linalg.norm(o[outer] - o[inner]))
        t[list(upper)] -= 0.5 * d * down
        t[list(lower)] += 0.5 * d * down
    t[BROWS] -= delta["brow"] * height * down
    # yaw: the inner face moves sideways as a bulge that fades to nothing at the jaw line
    x = np.dot(o[INNER] - (o[0] + o[16]) / 2, across) / max(width / 2, 1e-6)
    t[INNER] += (delta["yaw"] * width * np.clip(1.0 - x**2, 0.0, 1.0))[:, None] * across
    # pitch: the nose's lower half up or down
    t[NOSE_LOW] += delta["pitch"] * height * down
    return t


def _anchors(size: tuple[int, int]) -> np.ndarray:
    h, w = size
    xs, ys = np.linspace(0, w - 1, 5), np.linspace(0, h - 1, 5)
    border = (
        [(x, 0) for x in xs] + [(x, h - 1) for x in xs] + [(0, y) for y in ys[1:-1]] + [(w - 1, y) for y in ys[1:-1]]
    )
    return np.asarray(border, np.float64)


def piecewise_affine(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """``image`` warped so that the points ``src`` move to ``dst`` (each triangle of ``dst``'s Delaunay
    tiling maps affinely onto the same triangle of ``src``; the image border is held fixed)."""
    from scipy.spatial import Delaunay

    h, w = image.shape[:2]
    anchors = _anchors((h, w))
    s = np.vstack([np.asarray(src, np.float64), anchors])
    d = np.vstack([np.asarray(dst, np.float64), anchors])
    d[:, 0], d[:, 1] = np.clip(d[:, 0], 0, w - 1), np.clip(d[:, 1], 0, h - 1)
    tri = Delaunay(d)  # triangles of the target: they tile the whole image, so no pixel is left out
    mats = np.stack([cv2.getAffineTransform(d[t].astype(np.float32), s[t].astype(np.float32)) for t in tri.simplices])
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    index = tri.find_simplex(np.stack([xx.ravel(), yy.ravel()], 1)).reshape(h, w)
    map_x, map_y = xx.copy(), yy.copy()
    inside = index >= 0
    m = mats[index[inside]]
    px, py = xx[inside], yy[inside]
    map_x[inside] = m[:, 0, 0] * px + m[:, 0, 1] * py + m[:, 0, 2]
    map_y[inside] = m[:, 1, 0] * px + m[:, 1, 1] * py + m[:, 1, 2]
    return cv2.remap(image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


#: A mouth opened by the warp by more than this share of the face's height gets a dark interior.
MOUTH_OPENED = 0.015


def open_mouth(image: np.ndarray, own: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Where the warp opened a closed mouth (``own`` → ``target`` inner-lip gap grown by more than
    ``MOUTH_OPENED`` of the face's height), the stretched lip between the inner lips is painted as
    a mouth's dark interior (the lips' own colour, darkened, feathered), so that an opened mouth is
    not a band of lip."""
    height = _axes(np.asarray(target, np.float64))[2]
    grown = _ratios(target)["mouth"] - _ratios(own)["mouth"]
    if grown <= MOUTH_OPENED:
        return image
    inner = np.rint(target[60:68]).astype(np.int32)
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [inner], 255)
    if not mask.any():
        return image
    lips = np.zeros_like(mask)
    cv2.fillPoly(lips, [np.rint(target[48:60]).astype(np.int32)], 255)
    lip_colour = (
        image[(lips > 0) & (mask == 0)].mean(0) if ((lips > 0) & (mask == 0)).any() else image[mask > 0].mean(0)
    )
    soft = cv2.GaussianBlur(mask.astype(np.float32) / 255.0, (0, 0), max(1.0, 0.01 * height))[:, :, None]
    shade = min(1.0, grown / (3 * MOUTH_OPENED))  # a mouth just opened is only a little dark
    dark = np.asarray(lip_colour, np.float32) * 0.3
    out = image.astype(np.float32) * (1 - shade * soft) + dark * shade * soft
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def registered_mean(images: list[np.ndarray], points: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """The mean of ``images`` after each is warped (:func:`piecewise_affine`) from its own landmarks
    to their mean shape, and that shape: a mean face without the double brows, glasses frames and
    halo of a pixel mean of faces aligned by five points. Not yet used to build surrogates."""
    shape = np.mean([np.asarray(p, np.float64) for p in points], axis=0)
    warped = [piecewise_affine(img, p, shape).astype(np.float64) for img, p in zip(images, points, strict=True)]
    return np.clip(np.rint(np.mean(warped, axis=0)), 0, 255).astype(np.uint8), shape


class GeometryFollower:
    """dlib's 68 points (:class:`~kssgan.faces.landmarks68.Landmarks68`) on a source face and on the
    generated one, and the warp between them."""

    def __init__(self, mode: str = "expression", strength: float = 1.0, predictor: str | Path | None = None) -> None:
        from kssgan.faces.landmarks68 import Landmarks68

        if mode not in FOLLOW_MODES or mode == "none":
            raise ValueError(f"follow mode {mode!r} is not one of {FOLLOW_MODES[1:]}")
        self.mode, self.strength = mode, float(strength)
        #: 68×2 points of the face in a box (x0, y0, x1, y1) of an image
        self.landmarks = Landmarks68(predictor)

    def __call__(
        self,
        canvas: np.ndarray,
        source_points: np.ndarray,
        box: tuple[float, ...],
        reference: np.ndarray | None = None,
    ) -> np.ndarray:
        """``canvas`` (the generated face, upscaled) warped to follow ``source_points`` (the source's
        68 points in the canvas's coordinates); ``box``: where the face is in the canvas. With
        ``reference`` (the person's mean points, same coordinates) it follows the source's change
        from it instead (``follow_reference: person``)."""
        own = self.landmarks(canvas, box)
        if self.mode == "shape":
            goal = source_points if reference is None else own + (source_points - reference)
            target = own + self.strength * (goal - own)
        else:
            target = expression_target(own, source_points, FOLLOWED[self.mode], self.strength, reference)
        if np.allclose(target, own, atol=1e-6):  # nothing to follow (a face at its person's mean): untouched
            return canvas
        return open_mouth(piecewise_affine(canvas, own, target), own, target)


class PersonShapes:
    """The mean 68 points of each person's (or video track's) faces, each face's points taken in its
    aligned crop's coordinates (so that where and how large the face is in its photo does not count):
    what ``follow_reference: person`` follows a change from. A key seen once is its one face."""

    def __init__(self) -> None:
        self._sums: dict[Any, tuple[np.ndarray, int]] = {}
        self._fixed: dict[Any, np.ndarray] = {}

    def add(self, key: Any, points: np.ndarray) -> None:
        total, n = self._sums.get(key, (np.zeros(np.shape(points)), 0))
        self._sums[key] = (total + np.asarray(points, np.float64), n + 1)

    def fix(self) -> None:
        """Keep the means so far as they are (a video read whole before it is released): :meth:`mean`
        no longer adds the face it is asked about."""
        self._fixed = {k: total / n for k, (total, n) in self._sums.items()}

    def fixed(self, key: Any) -> bool:
        """Whether ``key``'s mean was fixed (:meth:`fix`)."""
        return key in self._fixed

    def mean(self, key: Any, points: np.ndarray) -> np.ndarray:
        """``key``'s mean: fixed (:meth:`fix`), else as observed (:meth:`add`); for a key never seen,
        ``points`` itself (no change to follow)."""
        if key in self._fixed:
            return self._fixed[key]
        if key in self._sums:
            total, n = self._sums[key]
            return total / n
        return np.asarray(points, np.float64)

    def clear(self) -> None:
        self._sums.clear()
        self._fixed.clear()
