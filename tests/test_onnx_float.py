"""The shipped YuNet and SFace through ONNX Runtime (`kssgan.faces.onnx_float`): the same network as
OpenCV's runtime, numbers equal to float precision, on real faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from kssgan.data.readers.image_io import load_image
from kssgan.faces.align import align_faces
from kssgan.faces.detect import YuNetDetector
from kssgan.faces.recognize import SFaceRecognizer

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def photos(shared_datasets: Path) -> list[np.ndarray]:
    paths = sorted((shared_datasets / "london" / "neutral_front").glob("*.jpg"))[:4]
    paths += sorted((shared_datasets / "yale" / "yalefaces").glob("subject0*"))[:4]  # grey, 320x243
    paths += sorted((shared_datasets / "orl" / "orl_faces" / "s1").glob("*.pgm"))[:2]  # 92x112: upscaled
    return [load_image(p)[0] for p in paths]


def test_yunet_on_onnxruntime_finds_what_opencv_finds(photos, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KSSGAN_CACHE", str(tmp_path))  # converts afresh, into this folder
    cv, ort = YuNetDetector(runtime="opencv"), YuNetDetector(runtime="onnxruntime", threads=1)
    for image in photos:
        a, b = cv.detect(image), ort.detect(image)
        assert len(a) == len(b) >= 1
        assert np.abs(a[0].landmarks - b[0].landmarks).max() < 1e-2
        assert np.allclose(a[0].box, b[0].box, atol=1e-2) and abs(a[0].score - b[0].score) < 1e-4
    assert len(list(tmp_path.glob("face_detection_yunet*-float-hw-v*.onnx"))) == 1  # the cached conversion


def test_sface_on_onnxruntime_embeds_as_opencv_does(photos, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("KSSGAN_CACHE", str(tmp_path))
    det = YuNetDetector()
    faces = [(img, det.detect(img)[0].landmarks) for img in photos]
    crops = align_faces([f[0] for f in faces], [f[1] for f in faces], 112)
    a = SFaceRecognizer(runtime="opencv").embed(crops)
    b = SFaceRecognizer(runtime="onnxruntime", threads=1).embed(crops)
    assert a.shape == b.shape == (len(crops), 128)
    assert (a * b).sum(axis=1).min() > 0.9999
    assert np.abs(a - b).max() < 1e-4


def test_prelu_rewrite_keeps_the_numbers_bit_for_bit() -> None:
    import onnx
    import onnxruntime as rt
    from onnx import helper, numpy_helper

    from kssgan.faces.onnx_float import _prelu_as_relu

    slope = np.array([[[0.25]], [[-0.5]], [[2.0]]], np.float32)
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 4, 4])
    y = helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)
    node = helper.make_node("PRelu", ["x", "a"], ["y"])
    values = {"a": slope}

    def session(nodes: list) -> rt.InferenceSession:
        inits = [numpy_helper.from_array(v, k) for k, v in values.items()]
        graph = helper.make_graph(nodes, "g", [x], [y], inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
        model.ir_version = 8
        return rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])

    data = np.random.default_rng(0).normal(size=(1, 3, 4, 4)).astype(np.float32)
    data[0, 0, 0, :2] = [0.0, -0.0]
    want = session([node]).run(None, {"x": data})[0]
    got = session(_prelu_as_relu([node], values)).run(None, {"x": data})[0]
    assert np.array_equal(want, got)
    assert np.array_equal(want, np.where(data > 0, data, slope * data))
