"""Training-split augmentation: configurable, mild, disabled by None/empty."""

from __future__ import annotations

import albumentations as A
import numpy as np
import pytest

from kssgan.data.augment import DEFAULT_AUGMENT, build_train_augmentation


def _face_like(size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    img = np.zeros((size, size, 3), np.uint8)
    img[:, : size // 2] = 200  # left half bright: a flip is visible
    return np.clip(img.astype(int) + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("cfg", [None, {}, {"enabled": False, "hflip": 1.0}])
def test_disabled_is_identity(cfg):
    x = _face_like()
    pipe = build_train_augmentation(cfg)
    assert isinstance(pipe, A.Compose) and len(pipe.transforms) == 0
    np.testing.assert_array_equal(pipe(image=x)["image"], x)


def test_flip_only():
    x = _face_like()
    pipe = build_train_augmentation({"hflip": 1.0})
    assert [type(t).__name__ for t in pipe.transforms] == ["HorizontalFlip"]
    np.testing.assert_array_equal(pipe(image=x)["image"], x[:, ::-1])


def test_default_preset_is_mild_and_seeded():
    pipe = build_train_augmentation({"preset": "default"}, seed=1)
    assert [type(t).__name__ for t in pipe.transforms] == ["HorizontalFlip", "ColorJitter", "Affine"]
    x = _face_like()
    outs = [pipe(image=x)["image"] for _ in range(20)]
    assert all(o.shape == x.shape and o.dtype == np.uint8 for o in outs)
    # mild: after undoing a possible flip, the picture stays close to the input
    diffs = [min(np.abs(o.astype(int) - x).mean(), np.abs(o[:, ::-1].astype(int) - x).mean()) for o in outs]
    assert max(diffs) < 40 and np.mean(diffs) < 20
    again = build_train_augmentation({"preset": "default"}, seed=1)
    np.testing.assert_array_equal(again(image=x)["image"], outs[0])


def test_blocks_are_configurable_and_validated():
    pipe = build_train_augmentation({"hflip": 0, "color": {"p": 1.0, "brightness": 0.3}, "affine": False})
    assert [type(t).__name__ for t in pipe.transforms] == ["ColorJitter"]
    assert pipe.transforms[0].brightness == pytest.approx((0.7, 1.3))
    with pytest.raises(ValueError, match="unknown augmentation keys"):
        build_train_augmentation({"blur": 1})
    with pytest.raises(ValueError, match="unknown keys"):
        build_train_augmentation({"color": {"gamma": 2}})
    assert set(DEFAULT_AUGMENT) == {"hflip", "color", "affine"}
