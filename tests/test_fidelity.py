"""What a release keeps of its source (`kssgan.evaluate.fidelity`, `kssgan.faces.mesh`): known answers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from kssgan.data.readers.image_io import load_image
from kssgan.deidentify.blend import paste_face
from kssgan.deidentify.options import MaskShape
from kssgan.evaluate import fidelity
from kssgan.faces.align import similarity_transform
from kssgan.faces.detect import YuNetDetector, select_face
from kssgan.faces.mesh import FaceMesh, geometry

PEOPLE = ["001", "002", "003", "004", "005", "006", "007", "008"]


def test_pearson_known_answers() -> None:
    x = np.array([1.0, 2.0, 3.0, 5.0, 8.0])
    assert fidelity.pearson(x, x) == pytest.approx(1.0)
    assert fidelity.pearson(x, -2 * x + 1) == pytest.approx(-1.0)
    assert fidelity.pearson(x, np.full(5, 0.3)) == 0.0  # a frozen output follows nothing
    assert np.isnan(fidelity.pearson([1.0, 2.0], [1.0, 2.0]))


def test_delta_e_of_a_colour_with_itself_is_zero_and_of_white_and_black_is_100() -> None:
    white = np.full((4, 4, 3), 255, np.uint8)
    black = np.zeros((4, 4, 3), np.uint8)
    everywhere = np.ones((4, 4), bool)
    assert fidelity.delta_e76(fidelity.inner_lab(white, everywhere), fidelity.inner_lab(white, everywhere)) == 0.0
    d = fidelity.delta_e76(fidelity.inner_lab(white, everywhere), fidelity.inner_lab(black, everywhere))
    assert d == pytest.approx(100.0, abs=0.01)


def _photo(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(60, 200, (12, 12, 3)).astype(np.uint8), (240, 240), interpolation=cv2.INTER_CUBIC)
    return base


def _pasted(photo: np.ndarray, crop: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lms = np.array([[100, 110], [140, 110], [120, 130], [104, 150], [136, 150]], np.float64)
    m = similarity_transform(lms, crop.shape[0], 0.0)
    alpha = np.zeros(photo.shape[:2], np.float32)
    out = paste_face(photo.copy(), crop, m, 0.0, MaskShape(region="inner"), alpha_out=alpha)
    return out, alpha


def test_the_seam_ratio_of_an_unaltered_photo_is_one_and_a_flat_patch_raises_it() -> None:
    photo = _photo()
    _, alpha = _pasted(photo, np.full((64, 64, 3), 128, np.uint8))
    assert alpha.max() == pytest.approx(1.0) and alpha.min() == 0.0
    assert fidelity.seam_ratio(photo, photo, alpha) == pytest.approx(1.0)
    # a patch of one far colour, pasted: a step all round the boundary
    out, alpha = _pasted(photo, np.full((64, 64, 3), (20, 230, 20), np.uint8))
    assert fidelity.seam_ratio(photo, out, alpha) > 3.0


def test_sharpness_of_a_blurred_copy_drops() -> None:
    photo = _photo(1)
    detail = np.clip(photo.astype(int) + np.random.default_rng(2).integers(-30, 30, photo.shape), 0, 255).astype(
        np.uint8
    )
    everywhere = np.ones(photo.shape[:2], bool)
    blurred = cv2.GaussianBlur(detail, (0, 0), 2.0)
    assert fidelity.sharpness(blurred, everywhere) < 0.2 * fidelity.sharpness(detail, everywhere)


def _measure(r: float, mouth: float) -> fidelity.FaceMeasure:
    geo = {"yaw": r, "pitch": -r, "mouth": mouth, "smile": 0.5 + mouth, "eyes": 0.3}
    return fidelity.FaceMeasure(geo, np.array([60.0, 10.0, 15.0]), 100.0, "female", 30.0)


def test_figures_of_a_copy_and_of_a_frozen_release() -> None:
    sources = [_measure(float(i), 0.01 * i) for i in range(6)]
    copy = fidelity.fidelity_figures(sources, sources, [1.0] * 6)
    for name in ("yaw", "pitch", "mouth", "smile"):
        assert copy["utility"]["geometry"][name]["pearson"] == pytest.approx(1.0)
    assert copy["utility"]["geometry"]["eyes"]["pearson"] == 0.0  # the source itself does not vary
    assert copy["utility"]["skin_tone"]["delta_e_median"] == 0.0
    assert copy["utility"]["kind"]["gender_agreement"] == 1.0
    assert copy["quality"] == {
        "inner_sharpness_ratio": 1.0,
        "face_found": 1.0,
        "seam_photos": 6,
        "seam_ratio": 1.0,
        "seam_ratio_p90": 1.0,
    }
    # photos replaced whole have no boundary: their seam is not a number and is not counted
    whole = fidelity.fidelity_figures(sources, sources, [float("nan")] * 5 + [2.0])
    assert whole["quality"]["seam_photos"] == 1 and whole["quality"]["seam_ratio"] == 2.0
    frozen = fidelity.fidelity_figures(sources, [_measure(2.0, 0.02)] * 6)
    assert all(v["pearson"] == 0.0 for v in frozen["utility"]["geometry"].values())
    half = fidelity.fidelity_figures(sources, sources[:3] + [None] * 3)
    assert half["utility"]["pairs"] == 3 and half["quality"]["face_found"] == 0.5


@pytest.fixture(scope="module")
def london_faces(shared_datasets: Path) -> list[tuple[np.ndarray, np.ndarray]]:
    root = shared_datasets / "london"
    if not root.is_dir():
        pytest.skip("London set not present")
    det = YuNetDetector()
    out = []
    for person in PEOPLE:
        for folder, suffix in (("neutral_front", "03"), ("smiling_front", "08")):
            photo = load_image(root / folder / f"{person}_{suffix}.jpg")[0]
            face = select_face(det.detect(photo), photo.shape)[0]
            out.append((photo, np.asarray(face.landmarks, np.float64)))
    return out


@pytest.mark.shared_data
def test_the_mesh_sees_each_londoners_smile(london_faces) -> None:
    mesh = FaceMesh()
    smiles = []
    for photo, lms in london_faces:
        m = mesh(photo, lms)
        assert m.presence > 0.9
        eyes = float(np.linalg.norm(lms[1] - lms[0]))
        assert np.linalg.norm(m.points[1] - lms[2]) < 0.2 * eyes  # its nose tip is YuNet's
        smiles.append(geometry(m)["smile"])
    neutral, smiling = np.array(smiles[0::2]), np.array(smiles[1::2])
    assert np.mean(smiling > neutral) >= 0.75  # the smile widens the mouth for (nearly) everyone


@pytest.mark.shared_data
def test_a_released_copy_keeps_its_geometry_exactly_and_a_frozen_face_keeps_none(london_faces) -> None:
    det, mesh = YuNetDetector(), FaceMesh()
    photos = [p for p, _ in london_faces]
    sources = [fidelity.measure_face(p, det, mesh) for p in photos]
    alphas = [None] * len(photos)
    copy = fidelity.release_fidelity(sources, photos, photos, alphas, det, mesh)
    assert copy["utility"]["geometry"]["smile"]["pearson"] == pytest.approx(1.0)
    assert copy["utility"]["skin_tone"]["delta_e_median"] == 0.0
    assert copy["quality"]["inner_sharpness_ratio"] == pytest.approx(1.0)
    frozen = fidelity.release_fidelity(sources, photos, [photos[0]] * len(photos), alphas, det, mesh)
    assert all(v["pearson"] == 0.0 for v in frozen["utility"]["geometry"].values())


@pytest.mark.shared_data
def test_the_kind_reader_reads_londoners_genders_off_their_photos(london_faces, shared_datasets: Path) -> None:
    """The reader crops YuNet's (x, y, w, h) box: on the sources it agrees with the set's own labels
    (a reader that took the box for corners read none of these 16 photos, or the wrong region)."""
    import csv

    labels = {r["identity"]: r for r in csv.DictReader((shared_datasets / "london" / "labels.csv").open())}
    det, reader = YuNetDetector(), fidelity.KindReader()
    read = []
    for (photo, _), person in zip(london_faces, [p for p in PEOPLE for _ in range(2)], strict=True):
        gender, age = reader(photo, select_face(det.detect(photo), photo.shape)[0])
        assert gender in ("male", "female") and age is not None
        read.append(gender == labels[person]["gender"].lower())
    assert np.mean(read) >= 0.9
