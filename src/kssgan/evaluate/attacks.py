"""What an attacker may do to released images before matching them.

Adversarial perturbations that fool a recogniser while leaving the face a person would recognise
do not survive mild re-encoding. ``kssgan evaluate`` therefore also reports every privacy figure
after :func:`degrade`: JPEG at quality 75, then down-scaling to half size and back (the attacker's
own gallery of originals is left clean). De-identification counts only if it holds both ways.
"""

from __future__ import annotations

import cv2
import numpy as np


def degrade(images_rgb: np.ndarray, jpeg_quality: int = 75, scale: float = 0.5) -> np.ndarray:
    """JPEG-compress (``jpeg_quality``) then resize to ``scale`` × side and back (bilinear/area)."""
    out = np.empty_like(images_rgb)
    for i, img in enumerate(images_rgb):
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality])
        if not ok:
            raise RuntimeError("JPEG encoding failed")
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
        h, w = bgr.shape[:2]
        if scale != 1.0:
            small = cv2.resize(bgr, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
            bgr = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
        out[i] = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    return out
