"""5-point similarity alignment to the standard ArcFace template.

A crop of side ``size`` is made by the similarity transform (rotation, uniform scale, translation)
that maps the five detected landmarks onto :data:`ARCFACE_TEMPLATE_112` scaled by ``size / 112``
(optionally shrunk towards the centre by ``margin`` to keep more context). With ``margin=0`` a
crop resized to 112×112 is exactly what ArcFace/SFace recognisers expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

if TYPE_CHECKING:  # torch is imported lazily: the numpy path (prepare) does not need it
    import torch

__all__ = [
    "ARCFACE_TEMPLATE_112",
    "align_faces",
    "inverse_transform",
    "similarity_transform",
    "template",
    "transform_points",
]

#: The standard 5-point template (right eye, left eye, nose tip, right and left mouth corners) of a
#: 112×112 ArcFace crop, in pixels (insightface ``arcface_dst``).
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)


def template(size: int = 112, margin: float = 0.0) -> np.ndarray:
    """The 5 template points for a ``size``×``size`` crop; ``margin`` > 0 zooms out by ``1 + margin``."""
    if margin <= -1:
        raise ValueError(f"margin must be > -1, got {margin}")
    centre = np.array([56.0, 56.0])
    pts = (ARCFACE_TEMPLATE_112 - centre) / (1.0 + margin) + centre
    return pts * (size / 112.0)


def _umeyama(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity transform src → dst (Umeyama 1991), as a 2×3 matrix."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s, d = src - mu_s, dst - mu_d
    cov = d.T @ s / len(src)
    u, sig, vt = np.linalg.svd(cov)
    e = np.ones(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        e[-1] = -1
    rot = u @ np.diag(e) @ vt
    var = (s**2).sum() / len(src)
    scale = 1.0 if var < 1e-12 else float((sig * e).sum() / var)
    m = np.zeros((2, 3))
    m[:, :2] = scale * rot
    m[:, 2] = mu_d - scale * rot @ mu_s
    return m


def similarity_transform(landmarks: np.ndarray, size: int = 112, margin: float = 0.0) -> np.ndarray:
    """2×3 float64 matrix mapping source ``landmarks`` (5×2) onto the template for a ``size`` crop.

    Least squares over all five points (Umeyama), hence deterministic; a reflection is never used.
    """
    src = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    if not np.all(np.isfinite(src)):
        raise ValueError("landmarks contain NaN or infinity")
    return _umeyama(src, template(size, margin))


def inverse_transform(matrix: np.ndarray) -> np.ndarray:
    """Inverse of a 2×3 affine matrix (crop → source image), for pasting a crop back."""
    return cv2.invertAffineTransform(np.asarray(matrix, dtype=np.float64))


def transform_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine matrix to N×2 points."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    m = np.asarray(matrix, dtype=np.float64)
    return pts @ m[:, :2].T + m[:, 2]


def _is_tensor(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "dim")


def align_faces(
    images: Sequence[np.ndarray] | np.ndarray | torch.Tensor,
    landmarks: Sequence[np.ndarray] | np.ndarray | torch.Tensor,
    size: int = 128,
    margin: float = 0.0,
    border: str = "replicate",
) -> np.ndarray | torch.Tensor:
    """Aligned square crops, one per (image, landmarks) pair.

    * ``images`` as a list / array of H×W×C uint8 arrays (sizes may differ): returns an
      N×size×size×C uint8 array (cv2.warpAffine per image, bilinear).
    * ``images`` as a B×C×H×W float tensor: returns a B×C×size×size tensor, warped in one batch
      with ``kornia.geometry.transform.warp_affine`` (same device and dtype).

    ``border`` is ``"replicate"`` (default: no black wedges when a face touches the frame) or
    ``"constant"`` (zeros).
    """
    if _is_tensor(images):
        import kornia.geometry.transform as KT
        import torch

        lms = torch.as_tensor(landmarks, dtype=torch.float64).reshape(-1, 5, 2).cpu().numpy()
        mats = np.stack([similarity_transform(lm, size, margin) for lm in lms])
        m = torch.as_tensor(mats, dtype=images.dtype, device=images.device)
        mode = "border" if border == "replicate" else "zeros"
        return KT.warp_affine(images, m, (size, size), mode="bilinear", padding_mode=mode, align_corners=False)

    lms_list = [np.asarray(lm) for lm in landmarks]
    if len(lms_list) != len(images):
        raise ValueError(f"{len(images)} images but {len(lms_list)} landmark sets")
    flag = cv2.BORDER_REPLICATE if border == "replicate" else cv2.BORDER_CONSTANT
    crops = [
        cv2.warpAffine(
            np.asarray(img),
            similarity_transform(lm, size, margin),
            (size, size),
            flags=cv2.INTER_LINEAR,
            borderMode=flag,
        )
        for img, lm in zip(images, lms_list, strict=True)
    ]
    if not crops:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack(crops)
