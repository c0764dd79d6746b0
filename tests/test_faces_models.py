"""Face detector and recognisers on the real shared faces (ORL, Yale), plus their error paths."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import numpy as np
import pytest

from kssgan.data.readers import read_folder
from kssgan.data.readers.image_io import load_image
from kssgan.faces import ModelFilesMissing, align_faces, get_detector, get_recognizer
from kssgan.faces.detect import Detection, FaceDetector, InsightFaceDetector, select_face
from kssgan.faces.recognize import FaceRecognizer, InsightFaceRecognizer


@pytest.fixture(scope="module")
def yunet():
    return get_detector("yunet")


@pytest.fixture(scope="module")
def sface():
    return get_recognizer("sface")


def _images(root: Path, df, n_per_identity: int, n_identities: int):
    ids = sorted(df["identity"].unique())[:n_identities]
    rows = df[df["identity"].isin(ids)].groupby("identity").head(n_per_identity)
    return [load_image(root / s)[0] for s in rows["source"]], list(rows["identity"])


@pytest.fixture(scope="module")
def yale_faces(shared_datasets, yunet):
    root = shared_datasets / "yale"
    df = read_folder(root)
    images, ids = _images(root, df, 4, 8)
    dets = [yunet.detect(im) for im in images]
    return images, ids, dets


@pytest.fixture(scope="module")
def orl_faces(shared_datasets, yunet):
    root = shared_datasets / "orl"
    df = read_folder(root)
    images, ids = _images(root, df, 4, 10)
    dets = [yunet.detect(im) for im in images]
    return images, ids, dets


def test_protocols_are_satisfied(yunet, sface):
    assert isinstance(yunet, FaceDetector)
    assert isinstance(sface, FaceRecognizer)
    assert sface.dim == 128 and sface.threshold == pytest.approx(0.363) and sface.metric == "cosine"


def test_blank_and_empty_images_have_no_face(yunet):
    assert yunet.detect(np.full((240, 320, 3), 128, np.uint8)) == []
    assert yunet.detect(np.zeros((0, 0, 3), np.uint8)) == []


@pytest.mark.shared_data
@pytest.mark.parametrize("which", ["yale_faces", "orl_faces"])
def test_yunet_finds_one_face_with_sane_landmarks(which, request):
    images, _, dets = request.getfixturevalue(which)
    found = [d for d in dets if d]
    # measured: 164/164 Yale and 400/400 ORL images have a face
    assert len(found) / len(dets) >= 0.95
    for im, d in zip(images, dets, strict=True):
        if not d:
            continue
        face = d[0]
        h, w = im.shape[:2]
        right_eye, left_eye, nose, right_mouth, left_mouth = face.landmarks
        assert right_eye[0] < left_eye[0] and right_mouth[0] < left_mouth[0]  # subject's right = image left
        assert max(right_eye[1], left_eye[1]) < nose[1] < min(right_mouth[1], left_mouth[1])
        assert 0.6 <= face.score <= 1.0
        x, y, bw, _ = face.box
        assert -0.1 * w < x < w and -0.1 * h < y < h and 20 < bw <= 1.2 * w
        # ORL's tight 92x112 crops: the face fills most of the frame; Yale's is a third of it
        assert face.eye_distance > 0.15 * w


@pytest.mark.shared_data
def test_sface_separates_people(yale_faces, orl_faces, sface):
    for images, ids, dets in (yale_faces, orl_faces):
        keep = [i for i, d in enumerate(dets) if d]
        crops = align_faces([images[i] for i in keep], [dets[i][0].landmarks for i in keep], 112)
        emb = sface.embed(crops)
        assert emb.shape == (len(keep), 128) and emb.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
        labels = [ids[i] for i in keep]
        same, diff, s_same, s_diff = [], [], [], []
        for a, b in combinations(range(len(keep)), 2):
            match = bool(sface.is_match(emb[a], emb[b]))
            sim = float(sface.similarity(emb[a], emb[b]))
            (same if labels[a] == labels[b] else diff).append(match)
            (s_same if labels[a] == labels[b] else s_diff).append(sim)
        # measured on all of ORL/Yale: same-person pairs match 100 %, different people 0.0-0.3 %;
        # mean cosine 0.77-0.82 (same) vs 0.08-0.11 (different)
        assert np.mean(same) >= 0.9
        assert np.mean(diff) <= 0.05
        assert np.mean(s_same) - np.mean(s_diff) > 0.5


@pytest.mark.shared_data
def test_dlib_recogniser_separates_people(orl_faces):
    pytest.importorskip("dlib")
    rec = get_recognizer("dlib")
    images, ids, dets = orl_faces
    keep = [i for i, d in enumerate(dets) if d]
    emb = rec.embed(align_faces([images[i] for i in keep], [dets[i][0].landmarks for i in keep], 112))
    labels = np.array([ids[i] for i in keep])
    iu = np.triu_indices(len(keep), 1)
    same = (labels[:, None] == labels[None])[iu]
    match = rec.is_match(emb[:, None], emb[None])[iu]
    # measured on all 400 ORL images: 99.9 % / 1.5 % (re-warped to dlib's chip geometry)
    assert match[same].mean() >= 0.9
    assert match[~same].mean() <= 0.1
    assert rec.metric == "l2" and rec.threshold == 0.6


def test_select_face_prefers_large_then_central():
    lm = np.zeros((5, 2), np.float32)
    big_corner = Detection((0, 0, 100, 100), lm, 0.9)
    big_centre = Detection((150, 100, 95, 95), lm, 0.8)
    small_centre = Detection((180, 130, 30, 30), lm, 0.99)
    face, n = select_face([big_corner, big_centre, small_centre], (300, 400))
    assert n == 3 and face is big_centre  # near-tie in size -> the central one
    face, n = select_face([big_corner, small_centre], (300, 400))
    assert face is big_corner
    assert select_face([], (10, 10)) == (None, 0)


def test_insightface_models_missing_is_a_clear_error_and_downloads_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    empty = tmp_path / "models"
    empty.mkdir()
    with pytest.raises(ModelFilesMissing) as err:
        InsightFaceDetector(empty)
    msg = str(err.value)
    assert str(empty) in msg and "det_10g.onnx" in msg and "never downloads" in msg
    with pytest.raises(ModelFilesMissing, match=r"w600k_r50\.onnx"):
        InsightFaceRecognizer(empty)
    with pytest.raises(ModelFilesMissing, match="no model folder"):
        get_recognizer("insightface")
    with pytest.raises(ModelFilesMissing):
        get_detector("insightface", model_dir=tmp_path / "does-not-exist")
    assert not (tmp_path / "home" / ".insightface").exists()


def test_unknown_model_names():
    with pytest.raises(ValueError, match="unknown detector"):
        get_detector("mtcnn")
    with pytest.raises(ValueError, match="unknown recogniser"):
        get_recognizer("facenet")


def test_recogniser_rejects_float_crops(sface):
    with pytest.raises(TypeError, match="uint8"):
        sface.embed(np.zeros((1, 112, 112, 3), np.float32))
    assert sface.embed([]).shape == (0, 128)


def test_insightface_recogniser_runs_a_user_supplied_onnx(tmp_path):
    """A stand-in ArcFace (tiny random net, same I/O as w600k_r50.onnx) exercises the onnxruntime
    path: file lookup, explicit CPU provider, insightface preprocessing, normalisation."""
    import warnings

    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 5, stride=4), torch.nn.Flatten(), torch.nn.Linear(4 * 27 * 27, 512))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            net,
            torch.randn(1, 3, 112, 112),
            str(tmp_path / "w600k_r50.onnx"),
            input_names=["input"],
            output_names=["embedding"],
            dynamic_axes={"input": {0: "batch"}},
            dynamo=False,
        )
    rec = get_recognizer("insightface", model_dir=tmp_path)
    assert rec._sess.get_providers() == ["CPUExecutionProvider"]
    crops = np.random.default_rng(0).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    emb = rec.embed(crops)
    x = torch.from_numpy(((crops[..., ::-1].astype(np.float32) - 127.5) / 127.5).transpose(0, 3, 1, 2).copy())
    with torch.no_grad():
        ref = net(x).numpy()
    ref /= np.linalg.norm(ref, axis=1, keepdims=True)
    assert emb.shape == (3, 512) and rec.dim == 512
    np.testing.assert_allclose(emb, ref, atol=1e-5)
    assert bool(rec.is_match(emb[0], emb[0])) and rec.similarity(emb[0], emb[0]) == pytest.approx(1.0, abs=1e-5)
