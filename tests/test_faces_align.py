"""5-point alignment: template geometry, transform estimation, batched warps, inverse."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from kssgan.faces.align import (
    ARCFACE_TEMPLATE_112,
    align_faces,
    inverse_transform,
    similarity_transform,
    template,
    transform_points,
)


def _similarity(angle_deg: float, scale: float, tx: float, ty: float) -> np.ndarray:
    a = np.deg2rad(angle_deg)
    return np.array([[scale * np.cos(a), -scale * np.sin(a), tx], [scale * np.sin(a), scale * np.cos(a), ty]])


def test_template_maps_to_itself():
    m = similarity_transform(ARCFACE_TEMPLATE_112, 112)
    np.testing.assert_allclose(m, [[1, 0, 0], [0, 1, 0]], atol=1e-9)
    m128 = similarity_transform(ARCFACE_TEMPLATE_112, 128)
    np.testing.assert_allclose(m128[:, :2], np.eye(2) * 128 / 112, atol=1e-9)
    np.testing.assert_allclose(transform_points(m128, ARCFACE_TEMPLATE_112), template(128), atol=1e-9)


def test_margin_zooms_out_around_the_centre():
    t0, t1 = template(112, 0.0), template(112, 0.25)
    eye0 = np.linalg.norm(t0[0] - t0[1])
    eye1 = np.linalg.norm(t1[0] - t1[1])
    assert eye1 == pytest.approx(eye0 / 1.25)
    with pytest.raises(ValueError):
        template(112, -1.0)


@pytest.mark.parametrize("angle,scale,tx,ty", [(0, 1, 0, 0), (17, 2.5, 40, -13), (-35, 0.6, 210, 95)])
def test_recovers_a_known_similarity(angle, scale, tx, ty):
    # landmarks of a face placed in a photo by a known similarity; alignment must undo it exactly
    place = _similarity(angle, scale, tx, ty)
    lms = transform_points(place, template(128))
    m = similarity_transform(lms, 128)
    np.testing.assert_allclose(transform_points(m, lms), template(128), atol=1e-6)
    np.testing.assert_allclose(m, inverse_transform(place), atol=1e-6)


def test_inverse_round_trip():
    rng = np.random.default_rng(0)
    lms = transform_points(_similarity(8, 1.7, 30, 20), ARCFACE_TEMPLATE_112) + rng.normal(0, 1.0, (5, 2))
    m = similarity_transform(lms, 128)
    inv = inverse_transform(m)
    pts = rng.uniform(0, 300, size=(20, 2))
    np.testing.assert_allclose(transform_points(inv, transform_points(m, pts)), pts, atol=1e-8)
    np.testing.assert_allclose(transform_points(inv, template(128)), lms, atol=2.0)  # least-squares fit


def test_non_finite_landmarks_rejected():
    bad = ARCFACE_TEMPLATE_112.copy()
    bad[2, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        similarity_transform(bad)


def _dot_image(lms: np.ndarray, shape=(240, 320)) -> np.ndarray:
    img = np.zeros((*shape, 3), np.uint8)
    for x, y in lms:
        cv2.circle(img, (round(x), round(y)), 3, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    return img


def _centroids(crop: np.ndarray, pts: np.ndarray, r: int = 6) -> np.ndarray:
    grey = crop[..., 0].astype(np.float64) if crop.ndim == 3 else crop
    out = []
    for x, y in pts:
        x0, y0 = round(x), round(y)
        win = grey[y0 - r : y0 + r + 1, x0 - r : x0 + r + 1]
        yy, xx = np.mgrid[y0 - r : y0 + r + 1, x0 - r : x0 + r + 1]
        out.append([(win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()])
    return np.array(out)


def test_align_faces_puts_landmarks_on_the_template_numpy_and_kornia():
    place = _similarity(12, 1.3, 60, 10)
    lms = transform_points(place, ARCFACE_TEMPLATE_112)
    img = _dot_image(lms)
    crops = align_faces([img, img], [lms, lms], size=128)
    assert crops.shape == (2, 128, 128, 3) and crops.dtype == np.uint8
    found = _centroids(crops[0], template(128))
    np.testing.assert_allclose(found, template(128), atol=0.6)

    # the batched tensor path (kornia.warp_affine) agrees with cv2.warpAffine
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float().repeat(3, 1, 1, 1)
    out = align_faces(t, np.stack([lms] * 3), size=128)
    assert isinstance(out, torch.Tensor) and out.shape == (3, 3, 128, 128)
    k_crop = out[1].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(_centroids(k_crop, template(128)), template(128), atol=0.6)
    assert np.abs(k_crop - crops[0].astype(np.float32)).mean() < 1.5


def test_align_faces_checks_lengths_and_handles_empty():
    with pytest.raises(ValueError, match="landmark"):
        align_faces([np.zeros((10, 10, 3), np.uint8)], [], size=32)
    assert align_faces([], [], size=32).shape == (0, 32, 32, 3)
