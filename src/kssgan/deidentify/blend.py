"""Paste a generated crop back into the frame: inverse similarity warp + feathered elliptical mask.

The mask is evaluated analytically at every frame pixel of the face's region (the pixel is mapped
into crop coordinates with the forward alignment matrix), so it is smooth at any resolution, has no
seam where the crop ends, and is exactly 0 outside the ellipse: those pixels are copied unchanged.
"""

from __future__ import annotations

import cv2
import numpy as np

from kssgan.deidentify.options import MaskShape
from kssgan.faces.align import inverse_transform, transform_points

__all__ = ["crop_ellipse", "face_mask", "paste_face"]


def crop_ellipse(size: int, margin: float, shape: MaskShape) -> tuple[float, float, float, float]:
    """(cx, cy, rx, ry) of the mask ellipse in crop pixels; zooms with the crop margin."""
    z = 1.0 / (1.0 + margin)
    cx = (0.5 + (shape.center_x - 0.5) * z) * size
    cy = (0.5 + (shape.center_y - 0.5) * z) * size
    return cx, cy, shape.radius_x * z * size, shape.radius_y * z * size


def _roi(
    matrix: np.ndarray, ellipse: tuple[float, float, float, float], height: int, width: int
) -> tuple[int, int, int, int] | None:
    """Integer frame box (x0, y0, x1, y1) that holds the ellipse mapped back to the frame, or None."""
    cx, cy, rx, ry = ellipse
    corners = np.array([[cx - rx, cy - ry], [cx + rx, cy - ry], [cx - rx, cy + ry], [cx + rx, cy + ry]])
    pts = transform_points(inverse_transform(matrix), corners)
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def face_mask(
    matrix: np.ndarray, size: int, margin: float, shape: MaskShape, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Float32 mask in [0, 1] over the frame box ``(x0, y0, x1, y1)`` for a face aligned by ``matrix``."""
    x0, y0, x1, y1 = box
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    m = np.asarray(matrix, dtype=np.float64)
    u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    cx, cy, rx, ry = crop_ellipse(size, margin, shape)
    r = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
    t = np.clip((1.0 - r) / max(shape.feather, 1e-6), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)  # smoothstep: C1 at both ends


def paste_face(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, margin: float, shape: MaskShape) -> np.ndarray:
    """Blend ``crop`` (S×S×3 uint8, same channel order as ``frame``) into ``frame`` in place; returns it.

    ``matrix`` is the 2×3 frame → crop alignment matrix the crop was made with.
    """
    size = crop.shape[0]
    h, w = frame.shape[:2]
    box = _roi(matrix, crop_ellipse(size, margin, shape), h, w)
    if box is None:
        return frame
    x0, y0, x1, y1 = box
    inv = inverse_transform(matrix).copy()
    inv[:, 2] -= (x0, y0)
    warped = cv2.warpAffine(crop, inv, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = face_mask(matrix, size, margin, shape, box)[:, :, None]
    region = frame[y0:y1, x0:x1].astype(np.float32)
    blended = region + mask * (warped.astype(np.float32) - region)
    inside = mask[:, :, 0] > 0
    frame[y0:y1, x0:x1][inside] = np.clip(np.rint(blended[inside]), 0, 255).astype(np.uint8)
    return frame
