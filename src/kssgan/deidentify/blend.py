"""Paste a generated crop back into the frame: inverse similarity warp + feathered mask.

Three regions (:class:`~kssgan.deidentify.options.MaskShape`): ``head`` replaces the whole aligned
crop and a ring around it (a rounded square of half-side ``reach``), the ring filled from the crop's
own border blurred outwards (:func:`head_canvas`), so that nothing the mask covers comes from the
source; ``inner`` replaces an ellipse from forehead to chin and keeps the rest; ``frame`` replaces
the whole photo, G's crop placed by :func:`frame_transform` (face-crop photos).

The mask is evaluated analytically at every frame pixel of the face's region (the pixel is mapped
into crop coordinates with the forward alignment matrix), so it is smooth at any resolution and
exactly 0 outside its region: those pixels are copied unchanged.
"""

from __future__ import annotations

import cv2
import numpy as np

from kssgan.deidentify.options import MaskShape
from kssgan.faces.align import inverse_transform, transform_points

__all__ = [
    "crop_ellipse",
    "crop_side_on_frame",
    "face_mask",
    "frame_transform",
    "harmonise",
    "head_canvas",
    "jitter_transform",
    "paste_face",
    "seamless",
]

#: The superellipse power of the ``head`` region: a square with rounded corners.
HEAD_POWER = 4.0


def crop_ellipse(size: int, margin: float, shape: MaskShape) -> tuple[float, float, float, float]:
    """(cx, cy, rx, ry) of the mask ellipse in crop pixels; zooms with the crop margin."""
    z = 1.0 / (1.0 + margin)
    cx = (0.5 + (shape.center_x - 0.5) * z) * size
    cy = (0.5 + (shape.center_y - 0.5) * z) * size
    return cx, cy, shape.radius_x * z * size, shape.radius_y * z * size


def frame_transform(width: int, height: int, size: int) -> np.ndarray:
    """The frame → crop matrix of ``region: frame``: a ``size``-pixel crop centred on a
    ``width`` × ``height`` photo, its side the photo's shorter side, upright. It depends on the
    photo's size alone, never on where the source's face was."""
    scale = size / float(min(width, height))
    return np.array(
        [[scale, 0.0, size / 2.0 - scale * width / 2.0], [0.0, scale, size / 2.0 - scale * height / 2.0]],
        np.float64,
    )


def _outer_reach(shape: MaskShape) -> float:
    """Half-side, in crop half-sides, where the ``head`` mask reaches 0."""
    return shape.reach * (1.0 + shape.feather)


def _region_corners(size: int, margin: float, shape: MaskShape) -> np.ndarray:
    """Corners (crop pixels) of a box holding the mask's region."""
    if shape.region == "head":
        half = _outer_reach(shape) * size / 2.0
        cx = cy = size / 2.0
        rx = ry = half
    else:
        cx, cy, rx, ry = crop_ellipse(size, margin, shape)
    return np.array([[cx - rx, cy - ry], [cx + rx, cy - ry], [cx - rx, cy + ry], [cx + rx, cy + ry]])


def _roi(matrix: np.ndarray, corners: np.ndarray, height: int, width: int) -> tuple[int, int, int, int] | None:
    """Integer frame box (x0, y0, x1, y1) that holds the crop-space ``corners`` mapped back, or None."""
    pts = transform_points(inverse_transform(matrix), corners)
    x0, y0 = np.floor(pts.min(0)).astype(int) - 1
    x1, y1 = np.ceil(pts.max(0)).astype(int) + 2
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(width, x1), min(height, y1)
    if x1 <= x0 or y1 <= y0:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    return t * t * (3.0 - 2.0 * t)  # C1 at both ends


def face_mask(
    matrix: np.ndarray, size: int, margin: float, shape: MaskShape, box: tuple[int, int, int, int]
) -> np.ndarray:
    """Float32 mask in [0, 1] over the frame box ``(x0, y0, x1, y1)`` for a face aligned by ``matrix``."""
    x0, y0, x1, y1 = box
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float64), np.arange(y0, y1, dtype=np.float64))
    m = np.asarray(matrix, dtype=np.float64)
    u = m[0, 0] * xs + m[0, 1] * ys + m[0, 2]
    v = m[1, 0] * xs + m[1, 1] * ys + m[1, 2]
    if shape.region == "head":
        half = size / 2.0
        r = ((np.abs(u - half) / half) ** HEAD_POWER + (np.abs(v - half) / half) ** HEAD_POWER) ** (1 / HEAD_POWER)
        width = max(_outer_reach(shape) - shape.reach, 1e-6)
        t = np.clip((_outer_reach(shape) - r) / width, 0.0, 1.0)
    else:
        cx, cy, rx, ry = crop_ellipse(size, margin, shape)
        r = np.sqrt(((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2)
        t = np.clip((1.0 - r) / max(shape.feather, 1e-6), 0.0, 1.0)
    return _smoothstep(t).astype(np.float32)


#: ``head`` region: the crop fades into its blurred ring over this share of its half-side, along
#: rounded squares of this superellipse power, so no square edge of the crop shows in the release
#: (docs/evaluation.md, "No box around the face"). ``frame`` keeps the thin square band below.
HEAD_CANVAS_BAND = 0.2
HEAD_CANVAS_POWER = 4.0
#: ``frame`` region (and ``head`` before this round): a thin band along the crop's square edge, as a
#: share of its half-side.
SQUARE_CANVAS_BAND = 0.12


def head_canvas(crop: np.ndarray, pad: int, fade: str = "round") -> np.ndarray:
    """``crop`` grown by ``pad`` pixels on every side, the ring filled from the crop alone: its border
    replicated and blurred (σ = pad / 3), blended into the crop near its edge so that no step shows
    where the crop ends. ``fade``: ``round`` (the head region) fades over ``HEAD_CANVAS_BAND`` of the
    crop's half-side along rounded squares (superellipses), so neither the crop's straight edges nor
    its corners show; ``square`` over a thin band along its edges (the frame region, whose crop edge
    is the photo's). A function of the crop only: equal crops, equal canvases."""
    if pad <= 0:
        return crop
    if fade not in ("round", "square"):
        raise ValueError(f"head_canvas fade must be 'round' or 'square', got {fade!r}")
    size = crop.shape[0]
    big = cv2.copyMakeBorder(crop, pad, pad, pad, pad, cv2.BORDER_REPLICATE).astype(np.float32)
    blurred = cv2.GaussianBlur(big, (0, 0), max(1.0, pad / 3.0))
    idx = np.arange(size + 2 * pad, dtype=np.float32) - pad
    u = np.abs(idx + 0.5 - size / 2.0) / (size / 2.0)  # 0 at the crop's centre, 1 at its edges
    if fade == "round":
        p = HEAD_CANVAS_POWER
        inside = 1.0 - (u[:, None] ** p + u[None, :] ** p) ** (1.0 / p)
        w = _smoothstep(np.clip(inside / HEAD_CANVAS_BAND, 0.0, 1.0))
    else:
        band = max(4.0 / size, SQUARE_CANVAS_BAND)  # at least 2 px
        w = np.clip(np.minimum.outer(1.0 - u, 1.0 - u) / band, 0.0, 1.0)
    return np.clip(np.rint(blurred + w[:, :, None] * (big - blurred)), 0, 255).astype(np.uint8)


def jitter_transform(matrix: np.ndarray, size: int, draw: np.ndarray) -> np.ndarray:
    """``matrix`` (frame → crop) followed by a small similarity about the crop centre: ``draw`` =
    (rotation in radians, relative scale change, x and y shift in crop sides), e.g. normal draws of
    standard deviation ``paste_jitter``. Where the generated face lands then varies a little from
    photo to photo independently of the source, so that how the source was framed (its size and
    roll, the same in one person's photos) does not shape what the attacker's recogniser sees."""
    angle, scale, dx, dy = (float(v) for v in draw)
    c = size / 2.0
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]) * (1.0 + scale)
    jit = np.zeros((3, 3))
    jit[:2, :2] = rot
    jit[:2, 2] = np.array([c, c]) - rot @ np.array([c, c]) + np.array([dx, dy]) * size
    jit[2, 2] = 1.0
    return (jit @ np.vstack([np.asarray(matrix, np.float64), [0.0, 0.0, 1.0]]))[:2]


def seamless(warped: np.ndarray, region: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``warped`` cloned into ``region`` where ``mask`` > 0 by OpenCV's Poisson (gradient-domain)
    blending: inside the mask the gradients are the generated face's, the boundary values the
    photo's, so the face takes the light and colour of its surroundings at its edge and no step
    shows there. Both arrays are padded so that the mask never touches their border."""
    m = (mask > 0.01).astype(np.uint8) * 255
    if not m.any():
        return warped
    pad = 4
    src = cv2.copyMakeBorder(warped, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    dst = cv2.copyMakeBorder(region, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    m = cv2.copyMakeBorder(m, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
    x, y, w, h = cv2.boundingRect(m)
    cloned = cv2.seamlessClone(src, dst, m, (x + w // 2, y + h // 2), cv2.NORMAL_CLONE)
    return cloned[pad:-pad, pad:-pad]


def crop_side_on_frame(matrix: np.ndarray, size: int) -> float:
    """How many frame pixels the side of a ``size``-pixel crop made with ``matrix`` (frame → crop,
    a similarity) spans."""
    return float(size / np.sqrt(abs(np.linalg.det(np.asarray(matrix, np.float64)[:, :2]))))


#: ``blend: harmonise``: how deep into the replaced region (in crop sides) the photo's colour at the
#: boundary still corrects the generated one, and how wide (σ, in crop sides) that correction is smoothed.
HARMONISE_DEPTH = 0.25
HARMONISE_SIGMA = 0.08


def harmonise(warped: np.ndarray, region: np.ndarray, mask: np.ndarray, crop_side: float) -> np.ndarray:
    """``warped`` with a smooth colour correction that makes it equal the photo (``region``) along
    the mask's feather and fades to nothing ``HARMONISE_DEPTH`` crop sides inside the fully replaced
    part, so the face keeps its own (or ``--colour match``'s) colours and no step shows at the
    boundary. The correction is the photo-minus-face difference over the feather, spread by
    normalised Gaussian convolution: a low-frequency field, so no texture of the photo enters."""
    feather = (mask > 0.02) & (mask < 0.98)
    if not feather.any():
        return warped
    w = feather.astype(np.float32)
    diff = (region.astype(np.float32) - warped.astype(np.float32)) * w[:, :, None]
    sigma = max(1.0, HARMONISE_SIGMA * crop_side)
    num = cv2.GaussianBlur(diff, (0, 0), sigma)
    den = cv2.GaussianBlur(w, (0, 0), sigma)[:, :, None]
    field = num / np.maximum(den, 1e-3)
    depth = cv2.distanceTransform((mask >= 0.98).astype(np.uint8), cv2.DIST_L2, 5)
    reach = np.clip(1.0 - depth / max(1.0, HARMONISE_DEPTH * crop_side), 0.0, 1.0)
    weight = (_smoothstep(reach) * (den[:, :, 0] > 1e-3))[:, :, None]
    return np.clip(warped.astype(np.float32) + weight * field, 0, 255).astype(np.uint8)


def paste_face(
    frame: np.ndarray,
    crop: np.ndarray,
    matrix: np.ndarray,
    margin: float,
    shape: MaskShape,
    blend: str = "alpha",
    alpha_out: np.ndarray | None = None,
) -> np.ndarray:
    """Blend ``crop`` (S×S×3 uint8, same channel order as ``frame``) into ``frame`` in place; returns it.

    ``matrix`` is the 2×3 frame → crop alignment matrix the crop was made with. ``blend: poisson``
    clones the face in first (:func:`seamless`), ``harmonise`` corrects its colour near the boundary
    (:func:`harmonise`); both then feather as ``alpha`` does. ``alpha_out`` (H×W
    float32), when given, receives the paste mask (the maximum over faces), e.g. for seam figures.
    """
    size = crop.shape[0]
    h, w = frame.shape[:2]
    if shape.region == "frame":
        return _paste_frame(frame, crop, matrix, alpha_out)
    box = _roi(matrix, _region_corners(size, margin, shape), h, w)
    if box is None:
        return frame
    x0, y0, x1, y1 = box
    pad = 0
    if shape.region == "head":
        pad = max(0, int(np.ceil((_outer_reach(shape) - 1.0) * size / 2.0)) + 1)
        crop = head_canvas(crop, pad)
    inv = inverse_transform(matrix).copy()
    inv[:, 2] -= (x0, y0)
    if pad:  # the canvas's pixel (pad, pad) is the crop's (0, 0)
        inv[:, 2] -= inv[:, :2] @ np.array([pad, pad], np.float64)
    warped = cv2.warpAffine(crop, inv, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    mask = face_mask(matrix, size, margin, shape, box)[:, :, None]
    if blend == "poisson":
        warped = seamless(warped, frame[y0:y1, x0:x1], mask[:, :, 0])
    elif blend == "harmonise":
        warped = harmonise(warped, frame[y0:y1, x0:x1], mask[:, :, 0], crop_side_on_frame(matrix, size))
    if alpha_out is not None:
        np.maximum(alpha_out[y0:y1, x0:x1], mask[:, :, 0], out=alpha_out[y0:y1, x0:x1])
    region = frame[y0:y1, x0:x1].astype(np.float32)
    blended = region + mask * (warped.astype(np.float32) - region)
    inside = mask[:, :, 0] > 0
    frame[y0:y1, x0:x1][inside] = np.clip(np.rint(blended[inside]), 0, 255).astype(np.uint8)
    return frame


def _paste_frame(frame: np.ndarray, crop: np.ndarray, matrix: np.ndarray, alpha_out: np.ndarray | None) -> np.ndarray:
    """``region: frame``: the whole of ``frame`` becomes ``crop`` and its ring (:func:`head_canvas`,
    grown until it covers the photo's corners), warped by ``matrix``; nothing of the photo is kept."""
    size = crop.shape[0]
    h, w = frame.shape[:2]
    corners = transform_points(np.asarray(matrix, np.float64), np.array([[0, 0], [w, 0], [0, h], [w, h]], np.float64))
    pad = max(0, int(np.ceil(np.abs(corners - size / 2.0).max() - size / 2.0)) + 2)
    canvas = head_canvas(crop, pad, fade="square")
    inv = inverse_transform(matrix).copy()
    inv[:, 2] -= inv[:, :2] @ np.array([pad, pad], np.float64)  # the canvas's pixel (pad, pad) is the crop's (0, 0)
    frame[:] = cv2.warpAffine(canvas, inv, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if alpha_out is not None:
        alpha_out[:] = 1.0
    return frame
