"""The source's skin tone and light on the generated face (``deidentify --colour match``).

G's surrogate carries its group's colouring; pasted as is, a dark-skinned person can receive a pale
face and a face lit from the left a face lit from the front. :func:`match_colour` moves the generated
crop's CIELAB statistics over the inner face to the source crop's: L (lightness) by mean and spread,
a and b (hue) by mean and spread, each spread ratio clipped to ``[1/SPREAD_CLIP, SPREAD_CLIP]``.
Both crops are aligned the same way, so one template ellipse (:func:`skin_region`) reads the same
part of both faces. These are three means and three spreads of the source: what it costs in privacy
is measured (``docs/evaluation.md``, "A face that follows its source").
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["SPREAD_CLIP", "match_colour", "skin_region"]

SPREAD_CLIP = 1.5


def skin_region(size: int, margin: float) -> np.ndarray:
    """Bool mask (size×size) of the inner face of an aligned crop (ArcFace framing grown by
    ``margin``): an ellipse from the brows to the chin, where skin dominates."""
    z = 1.0 / (1.0 + margin)
    yy, xx = np.mgrid[:size, :size].astype(np.float64) + 0.5
    cx, cy = 0.5 * size, (0.5 + 0.08 * z) * size
    rx, ry = 0.32 * z * size, 0.36 * z * size
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0


def match_colour(fake_bgr: np.ndarray, source_bgr: np.ndarray, region: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """``fake_bgr`` with its CIELAB mean and spread over ``region`` moved to ``source_bgr``'s (same
    size, same alignment), or ``strength`` of the way there; uint8 BGR."""
    f = cv2.cvtColor(fake_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    s = cv2.cvtColor(source_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    fm, fs = f[region].mean(0), f[region].std(0)
    sm, ss = s[region].mean(0), s[region].std(0)
    ratio = np.clip(ss / np.maximum(fs, 1e-3), 1.0 / SPREAD_CLIP, SPREAD_CLIP) ** strength
    out = (f - fm) * ratio + fm + strength * (sm - fm)
    out[:, :, 0] = np.clip(out[:, :, 0], 0.0, 100.0)
    bgr = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_LAB2BGR)
    return np.clip(np.rint(bgr * 255.0), 0, 255).astype(np.uint8)
