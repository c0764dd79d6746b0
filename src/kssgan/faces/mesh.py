"""MediaPipe's 468-point face mesh, used only to *measure* what a release keeps (never by G or a loss).

The model (``face_landmark.tflite``) ships inside the ``mediapipe==0.10.14`` wheel, which the
Makefile installs with ``--no-deps`` for that file alone: the ``mediapipe`` package itself is never
imported (its Python side wants protobuf < 5). The model runs on LiteRT (``ai-edge-litert``).

It is the measuring landmark model of ``kssgan evaluate``'s ``utility.geometry`` because nothing
else in the project uses it: ``deidentify --follow`` moves faces with dlib's 68-point predictor and
aligns them with YuNet's 5 points, so the measurement is independent of both.

:func:`geometry` turns a mesh into the five figures the reports compare between a source and its
release: head yaw and pitch (degrees, from the mesh's own depth), mouth opening, smile width and eye
opening (ratios to the face's own size, so independent of resolution).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from kssgan.faces._runtime import package_file

__all__ = ["GEOMETRY", "FaceMesh", "MeshResult", "geometry", "inner_face_mask", "mesh_model_path"]

INPUT = 192  # the model's input side
ROI_SCALE = 1.5  # MediaPipe's landmark ROI: the detection box grown 1.5× (square)
GEOMETRY = ("yaw", "pitch", "mouth", "smile", "eyes")

# MediaPipe mesh indices (canonical topology)
FOREHEAD, CHIN, CHEEK_R, CHEEK_L = 10, 152, 234, 454
LIP_UP, LIP_LOW, MOUTH_R, MOUTH_L = 13, 14, 61, 291
EYE_R = (33, 133, 159, 145)  # outer corner, inner corner, upper lid, lower lid (subject's right)
EYE_L = (263, 362, 386, 374)
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152,
             148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)  # fmt: skip
EYE_RING_R = (33, 246, 161, 160, 159, 158, 157, 173, 133, 155, 154, 153, 145, 144, 163, 7)
EYE_RING_L = (263, 466, 388, 387, 386, 385, 384, 398, 362, 382, 381, 380, 374, 373, 390, 249)
BROW_R = (70, 63, 105, 66, 107, 55, 65, 52, 53, 46)
BROW_L = (300, 293, 334, 296, 336, 285, 295, 282, 283, 276)
LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84, 181, 91, 146)


def mesh_model_path() -> Path:
    """``face_landmark.tflite`` inside the installed mediapipe wheel (found without importing it)."""
    install = "pip install --no-deps mediapipe==0.10.14 (the Makefile does)"
    return package_file("mediapipe", "modules", "face_landmark", "face_landmark.tflite", install=install)


@dataclass
class MeshResult:
    """468 points: ``points`` (x, y) in frame pixels; ``crop`` (x, y, z) in the model's 192-px
    roll-corrected frame (z on x's scale), from which angles are read; ``presence`` in [0, 1]."""

    points: np.ndarray
    crop: np.ndarray
    presence: float


class FaceMesh:
    """Runs the mesh on a face given its 5 YuNet landmarks (they set the region and the roll)."""

    def __init__(self, model_path: str | Path | None = None, threads: int = 1) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._it = Interpreter(model_path=str(model_path or mesh_model_path()), num_threads=threads)
        self._it.allocate_tensors()
        self._input = self._it.get_input_details()[0]["index"]
        outs = self._it.get_output_details()
        by_size = sorted(outs, key=lambda o: -int(np.prod(o["shape"])))
        self._points, self._score = by_size[0]["index"], by_size[1]["index"]

    @staticmethod
    def roi_transform(landmarks5: np.ndarray) -> np.ndarray:
        """2×3 frame → model-input matrix: a square 1.5× the face, centred between eyes and mouth,
        rotated so that the eyes are level."""
        lm = np.asarray(landmarks5, np.float64)
        eyes = lm[:2].mean(0)
        mouth = lm[3:5].mean(0)
        d = lm[1] - lm[0]
        angle = np.arctan2(d[1], d[0])
        # a face box about 2.2 eye-distances wide, or 1.9 eye-to-mouth spans tall
        side = ROI_SCALE * max(2.2 * np.hypot(*d), 1.9 * np.hypot(*(mouth - eyes)))
        centre = eyes + 0.45 * (mouth - eyes)  # a little above the nose: the mesh's own centring
        s = INPUT / side
        c, si = np.cos(-angle) * s, np.sin(-angle) * s
        m = np.array([[c, -si, 0.0], [si, c, 0.0]])
        m[:, 2] = INPUT / 2.0 - m[:, :2] @ centre
        return m

    def __call__(self, image_bgr: np.ndarray, landmarks5: np.ndarray) -> MeshResult:
        m = self.roi_transform(landmarks5)
        img = image_bgr if image_bgr.ndim == 3 else cv2.cvtColor(image_bgr, cv2.COLOR_GRAY2BGR)
        crop = cv2.warpAffine(img, m, (INPUT, INPUT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        x = (crop[:, :, ::-1].astype(np.float32) / 255.0)[None]
        self._it.set_tensor(self._input, np.ascontiguousarray(x))
        self._it.invoke()
        pts = self._it.get_tensor(self._points).reshape(468, 3).astype(np.float64)
        score = float(self._it.get_tensor(self._score).reshape(-1)[0])
        inv = cv2.invertAffineTransform(m)
        frame_pts = pts[:, :2] @ inv[:, :2].T + inv[:, 2]
        return MeshResult(frame_pts, pts, float(1.0 / (1.0 + np.exp(-score))))


def _dist(p: np.ndarray, i: int, j: int) -> float:
    return float(np.linalg.norm(p[i] - p[j]))


def geometry(mesh: MeshResult) -> dict[str, float]:
    """Yaw and pitch (degrees; the mesh's own depth, in its roll-corrected frame), mouth opening
    (lip gap / forehead-to-chin), smile width (mouth-corner span / outer eye-corner span) and eye
    opening (lid gap / eye width, both eyes averaged)."""
    p = mesh.crop
    across = p[CHEEK_L] - p[CHEEK_R]
    down = p[CHIN] - p[FOREHEAD]
    yaw = np.degrees(np.arctan2(across[2], across[0]))
    pitch = np.degrees(np.arctan2(down[2], down[1]))
    q = p[:, :2]
    height = _dist(q, FOREHEAD, CHIN)
    eyes_span = _dist(q, EYE_R[0], EYE_L[0])
    opening = [_dist(q, e[2], e[3]) / max(_dist(q, e[0], e[1]), 1e-6) for e in (EYE_R, EYE_L)]
    return {
        "yaw": float(yaw),
        "pitch": float(pitch),
        "mouth": _dist(q, LIP_UP, LIP_LOW) / max(height, 1e-6),
        "smile": _dist(q, MOUTH_R, MOUTH_L) / max(eyes_span, 1e-6),
        "eyes": float(np.mean(opening)),
    }


def inner_face_mask(points: np.ndarray, shape: tuple[int, int], shrink: float = 0.85) -> np.ndarray:
    """Bool mask of the inner face: the face oval shrunk towards its centre by ``shrink``, without
    the eyes, brows and lips (dilated a little): the skin whose tone and focus the reports compare."""
    h, w = shape[:2]
    mask = np.zeros((h, w), np.uint8)
    oval = points[list(FACE_OVAL)]
    centre = oval.mean(0)
    cv2.fillPoly(mask, [np.rint(centre + shrink * (oval - centre)).astype(np.int32)], 1)
    features = np.zeros_like(mask)
    for ring in (EYE_RING_R, EYE_RING_L, BROW_R, BROW_L, LIPS):
        cv2.fillPoly(features, [cv2.convexHull(np.rint(points[list(ring)]).astype(np.int32))], 1)
    grow = max(1, round(0.03 * float(np.hypot(*(oval.max(0) - oval.min(0))))))
    features = cv2.dilate(features, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return (mask > 0) & (features == 0)
