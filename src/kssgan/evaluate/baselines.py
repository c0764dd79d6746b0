"""Baseline de-identification methods, on the same aligned crops and the same k-Same groups.

* ``blur``: Gaussian blur (σ as a fraction of the crop side).
* ``pixelate``: down to ``blocks × blocks`` cells, back up with nearest-neighbour.
* ``k_same_pixel`` (Newton, Sweeney & Malin 2005): every image of a group's members is replaced by
  the group's average face. Each identity weighs equally (its images are averaged first), so an
  identity with many photos does not dominate its group's surrogate.
* ``k_same_eigen``: the same averaging done on eigenface coefficients (PCA fitted on the images
  being released), then reconstructed.

Blur and pixelation do not depend on k; the k-Same methods are computed for every k with the
grouping of that k. Images are N×H×W×3 uint8 RGB arrays throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import cv2
import numpy as np


def blur(images: np.ndarray, sigma_fraction: float) -> np.ndarray:
    """Gaussian blur with σ = ``sigma_fraction`` × crop side."""
    if sigma_fraction <= 0:
        return images.copy()
    sigma = sigma_fraction * images.shape[1]
    return np.stack([cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REPLICATE) for img in images])


def pixelate(images: np.ndarray, blocks: int) -> np.ndarray:
    """Mosaic of ``blocks × blocks`` cells (area average down, nearest-neighbour up)."""
    if blocks < 1:
        raise ValueError(f"pixelation needs at least one block, got {blocks}")
    h, w = images.shape[1:3]
    out = []
    for img in images:
        small = cv2.resize(img, (blocks, blocks), interpolation=cv2.INTER_AREA)
        out.append(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))
    return np.stack(out)


def _group_rows(identities: Sequence[str], identity_to_group: Mapping[str, int]) -> dict[int, dict[str, np.ndarray]]:
    """group → identity → row indices."""
    out: dict[int, dict[str, list[int]]] = {}
    for row, ident in enumerate(identities):
        g = identity_to_group.get(str(ident))
        if g is None:
            raise KeyError(f"identity {ident!r} is not in the grouping")
        out.setdefault(int(g), {}).setdefault(str(ident), []).append(row)
    return {g: {i: np.asarray(r) for i, r in m.items()} for g, m in out.items()}


def _group_average(values: np.ndarray, members: Mapping[str, np.ndarray]) -> np.ndarray:
    """Mean over identities of each identity's mean."""
    return np.mean([values[rows].mean(axis=0) for rows in members.values()], axis=0)


def k_same_pixel(images: np.ndarray, identities: Sequence[str], identity_to_group: Mapping[str, int]) -> np.ndarray:
    """k-Same-Pixel: each image replaced by its group's average face (pixel space)."""
    x = images.astype(np.float64)
    out = np.empty_like(images)
    for members in _group_rows(identities, identity_to_group).values():
        avg = np.clip(np.rint(_group_average(x, members)), 0, 255).astype(np.uint8)
        for rows in members.values():
            out[rows] = avg
    return out


def fit_eigenfaces(images: np.ndarray, components: int | float) -> tuple[np.ndarray, np.ndarray]:
    """PCA of the flattened images: (mean, basis C×D). ``components`` < 1 means variance kept."""
    x = images.reshape(len(images), -1).astype(np.float64)
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    if isinstance(components, float) and components < 1:
        var = np.cumsum(s**2) / max(float(np.sum(s**2)), 1e-12)
        n = int(np.searchsorted(var, components) + 1)
    else:
        n = int(components)
    n = max(1, min(n, len(s)))
    return mean, vt[:n]


def k_same_eigen(
    images: np.ndarray,
    identities: Sequence[str],
    identity_to_group: Mapping[str, int],
    components: int | float = 0.95,
) -> np.ndarray:
    """k-Same-Eigen: average the eigenface coefficients within each group and reconstruct."""
    mean, basis = fit_eigenfaces(images, components)
    coeffs = (images.reshape(len(images), -1).astype(np.float64) - mean) @ basis.T
    out = np.empty_like(images)
    for members in _group_rows(identities, identity_to_group).values():
        avg = _group_average(coeffs, members) @ basis + mean
        face = np.clip(np.rint(avg), 0, 255).astype(np.uint8).reshape(images.shape[1:])
        for rows in members.values():
            out[rows] = face
    return out
