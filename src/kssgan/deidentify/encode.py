"""Writing released pictures: the input's format (and alpha channel) kept, every file written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".pnm", ".avif")
ENCODE_EXTENSION = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "tiff": ".tiff", "webp": ".webp", "pnm": ".ppm"}
ENCODE_EXTENSION["avif"] = ".avif"
PIL_ENCODED = {".gif": "GIF", ".avif": "AVIF"}  # written through Pillow (OpenCV cannot, or loses transparency)


def encode_image(
    path: Path, image: np.ndarray, fmt: str | None, grey: bool, ext: str | None = None, alpha: np.ndarray | None = None
) -> None:
    """Write ``image`` (BGR) to ``path`` in the format of extension ``ext`` (default ``path``'s) or ``fmt``;
    ``alpha`` (H×W) is re-attached where the format holds one (PNG, WebP, TIFF, GIF, AVIF)."""
    import cv2

    ext = (ext or path.suffix).lower()
    pil_format = PIL_ENCODED.get(ext) or {"gif": "GIF", "avif": "AVIF"}.get(fmt or "")
    if pil_format:
        from PIL import Image

        rgb = np.ascontiguousarray(image[:, :, ::-1])
        if alpha is not None:
            pil = Image.fromarray(np.dstack([rgb, alpha]))
        else:
            pil = Image.fromarray(image[:, :, 0] if grey else rgb)
        pil.save(path, format=pil_format)
        return
    enc = ext if ext in IMAGE_EXTENSIONS and ext not in PIL_ENCODED else ENCODE_EXTENSION.get(fmt or "", ".png")
    if alpha is not None and enc in (".png", ".webp", ".tif", ".tiff"):
        image = np.dstack([image, alpha])
        grey = False
    ok, buf = cv2.imencode(enc, image[:, :, 0] if grey and enc in (".pgm", ".png") else image)
    if not ok:
        raise OSError(f"OpenCV could not encode {path.name} as {enc}")
    path.write_bytes(buf.tobytes())


def part_path(dst: Path) -> Path:
    """Where ``dst`` is written before it is moved into place (``<name>.part``)."""
    return dst.with_name(dst.name + ".part")
