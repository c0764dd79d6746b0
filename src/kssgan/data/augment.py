"""Training-split augmentation (albumentations). Validation and test data are never augmented.

Defaults are deliberately mild, because the crops are aligned and identity must be preserved:
horizontal flip (p=0.5), a small colour jitter and a small affine jitter (±3 % shift, ±5 % scale,
±5° rotation). Configure with a dict (e.g. the ``augment:`` block of a recipe)::

    augment: {hflip: 0.5, color: {p: 0.5, brightness: 0.1, contrast: 0.1, saturation: 0.1, hue: 0.02},
              affine: {p: 0.3, translate: 0.03, scale: 0.05, rotate: 5}}

Only the blocks named are used (``{hflip: 0.5}`` flips and nothing else; a block given as ``true``
takes the default values above); ``{preset: default}`` switches all three defaults on. ``None``,
``{}`` or ``{enabled: false}`` disables augmentation (an identity Compose is returned); a block set
to ``false`` or ``null`` (e.g. ``affine: false``) disables that transform.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import albumentations as A
import cv2

__all__ = ["DEFAULT_AUGMENT", "build_train_augmentation"]

DEFAULT_AUGMENT: dict[str, Any] = {
    "hflip": 0.5,
    "color": {"p": 0.5, "brightness": 0.1, "contrast": 0.1, "saturation": 0.1, "hue": 0.02},
    "affine": {"p": 0.3, "translate": 0.03, "scale": 0.05, "rotate": 5.0},
}


def _block(cfg: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    if key not in cfg:
        return None
    value = cfg[key]
    if value in (None, False, 0):
        return None
    base = dict(DEFAULT_AUGMENT[key])
    if value is True:
        return base
    if isinstance(value, Mapping):
        unknown = set(value) - set(base)
        if unknown:
            raise ValueError(f"augment.{key}: unknown keys {sorted(unknown)}; known {sorted(base)}")
        base.update(value)
        return base
    raise ValueError(f"augment.{key} must be a mapping, true or false, got {value!r}")


def build_train_augmentation(cfg: Mapping[str, Any] | None = None, seed: int | None = None) -> A.Compose:
    """An albumentations pipeline for H×W×3 uint8 RGB crops (``pipeline(image=x)["image"]``).

    ``cfg`` keys: ``hflip`` (probability), ``color`` and ``affine`` (mappings or true/false, see
    the module doc), ``preset`` (``"default"``) and ``enabled``. An empty or ``None`` config gives
    the identity. ``seed`` makes the pipeline reproducible.
    """
    cfg = dict(cfg or {})
    if not cfg or not cfg.pop("enabled", True):
        return A.Compose([], seed=seed)
    if cfg.pop("preset", None) == "default":
        cfg = {**DEFAULT_AUGMENT, **cfg}
    unknown = set(cfg) - set(DEFAULT_AUGMENT)
    if unknown:
        raise ValueError(f"unknown augmentation keys {sorted(unknown)}; known {sorted(DEFAULT_AUGMENT)}")
    transforms: list[A.BasicTransform] = []
    p_flip = float(cfg.get("hflip", 0.0) or 0.0)
    if p_flip > 0:
        transforms.append(A.HorizontalFlip(p=p_flip))
    color = _block(cfg, "color")
    if color:
        transforms.append(
            A.ColorJitter(
                brightness=color["brightness"],
                contrast=color["contrast"],
                saturation=color["saturation"],
                hue=color["hue"],
                p=color["p"],
            )
        )
    affine = _block(cfg, "affine")
    if affine:
        t, s = float(affine["translate"]), float(affine["scale"])
        transforms.append(
            A.Affine(
                translate_percent={"x": (-t, t), "y": (-t, t)},
                scale=(1 - s, 1 + s),
                rotate=(-float(affine["rotate"]), float(affine["rotate"])),
                border_mode=cv2.BORDER_REFLECT_101,
                p=affine["p"],
            )
        )
    return A.Compose(transforms, seed=seed)
