"""Robust image loading: sniff the format from the bytes, never trust the extension.

:func:`load_image` returns an 8-bit 3-channel BGR array or raises :class:`ImageLoadError` with a
short machine-readable ``reason`` (``empty_file``, ``not_an_image``, ``truncated``,
``decode_error``). Greyscale, palette, CMYK, alpha and 16-bit images are converted and the
conversion is reported in ``notes`` (e.g. ``converted:grey``); a camera EXIF orientation is applied
(``exif_rotated``).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

__all__ = ["ImageLoadError", "is_image_file", "load_image", "sniff_format"]

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
)


class ImageLoadError(Exception):
    """The file could not be turned into an image; ``reason`` is a short code for the manifest."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


def sniff_format(head: bytes) -> str | None:
    """Image format from the first bytes of a file (jpeg, png, gif, bmp, tiff, webp, pnm, avif) or None."""
    for magic, fmt in _MAGIC:
        if head.startswith(magic):
            return fmt
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if len(head) >= 3 and head[0:1] == b"P" and head[1:2] in b"123456" and head[2:3] in b" \t\r\n":
        return "pnm"
    if head[4:12] in (b"ftypavif", b"ftypavis"):
        return "avif"
    return None


def is_image_file(path: str | Path) -> bool:
    """True when the file's leading bytes are those of a supported image format."""
    try:
        with open(path, "rb") as fh:
            return sniff_format(fh.read(16)) is not None
    except OSError:
        return False


def load_image(path: str | Path) -> tuple[np.ndarray, list[str]]:
    """``(image_bgr_uint8 H×W×3, notes)``; raises :class:`ImageLoadError` for bad input."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise ImageLoadError("unreadable", str(err)) from err
    if not data:
        raise ImageLoadError("empty_file")
    fmt = sniff_format(data[:16])
    if fmt is None:
        raise ImageLoadError("not_an_image", "unknown file signature")
    notes: list[str] = []
    try:
        with Image.open(io.BytesIO(data)) as im:
            im.load()  # raises on truncated data (PIL's LOAD_TRUNCATED_IMAGES is False)
            if im.getexif().get(0x0112, 1) not in (1, None):  # camera orientation tag
                im = ImageOps.exif_transpose(im)
                notes.append("exif_rotated")
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N") or (mode == "F"):
                arr = np.asarray(im, dtype=np.float64)
                hi = 65535.0 if mode.startswith("I;16") or arr.max() > 255 else 255.0
                arr = np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
                rgb = np.repeat(arr[:, :, None], 3, axis=2)
                notes.append("converted:16bit")
            else:
                if mode == "CMYK":
                    notes.append("converted:cmyk")
                elif mode in ("L", "1", "LA") or (mode == "P" and _palette_is_grey(im)):
                    notes.append("converted:grey")
                elif mode in ("RGBA", "PA", "P"):
                    notes.append(f"converted:{mode.lower()}")
                elif mode not in ("RGB",):
                    notes.append(f"converted:{mode.lower()}")
                rgb = np.asarray(im.convert("RGB"))
    except UnidentifiedImageError as err:
        raise ImageLoadError("decode_error", str(err)) from err
    except OSError as err:  # PIL reports truncation as OSError("image file is truncated ...")
        msg = str(err)
        raise ImageLoadError("truncated" if "truncat" in msg.lower() else "decode_error", msg) from err
    except Exception as err:  # ValueError, SyntaxError, DecompressionBombError, ...: recorded, never fatal
        raise ImageLoadError("decode_error", f"{type(err).__name__}: {err}") from err
    if rgb.ndim != 3 or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ImageLoadError("decode_error", f"unexpected array shape {rgb.shape}")
    if fmt == "gif" and "converted:grey" not in notes and _is_grey(rgb):
        notes.append("converted:grey")
    return np.ascontiguousarray(rgb[:, :, ::-1]), notes


def _palette_is_grey(im) -> bool:
    pal = im.getpalette() or []
    return all(pal[i] == pal[i + 1] == pal[i + 2] for i in range(0, len(pal) - 2, 3))


def _is_grey(rgb: np.ndarray) -> bool:
    return bool(np.array_equal(rgb[:, :, 0], rgb[:, :, 1]) and np.array_equal(rgb[:, :, 1], rgb[:, :, 2]))
