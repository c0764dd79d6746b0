"""The bad-input corpus, generated (no stored binaries): checkpoints and media files that a user may
hand to kssgan by mistake or by malice. Each maker writes into a folder and returns the paths."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: proof that a loader executed the pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_bad_checkpoints(folder: Path, marker: Path) -> dict[str, Path]:
    """``kind -> path``: a zip checkpoint with a pickle payload, a raw pickle payload, random bytes, an
    empty file, a truncated checkpoint and a foreign (non-kssgan) dict."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.ckpt" for k in ("pickle_payload", "raw_pickle", "random", "empty", "truncated")}
    paths["foreign_dict"] = folder / "foreign_dict.ckpt"
    torch.save({"state_dict": {}, "evil": _Payload(marker)}, paths["pickle_payload"])
    paths["raw_pickle"].write_bytes(pickle.dumps({"evil": _Payload(marker)}))
    paths["random"].write_bytes(os.urandom(4096))
    paths["empty"].write_bytes(b"")
    torch.save({"state_dict": {"w": torch.zeros(4096)}, "epoch": 3}, paths["foreign_dict"])
    data = paths["foreign_dict"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    return paths


# -- media: what a user may hand to `kssgan deidentify` --------------------------------------------
# outcome kinds: "face" (a face is found and de-identified: released, or withheld when the recogniser
# still matches an output face to its source), "withheld" (no face found, with its reason), "skipped"
# (recorded, with its reason), "failed" (a one-line reason)
FACE_KINDS = (
    "alpha_png",
    "cmyk_jpeg",
    "png_16bit",
    "rgb48_png",
    "grey_png",
    "wide_10000px",
    "six_faces",
    "exif_rotated",
    "non_utf8_name",
    "unicode_name",
    "folder_named_like_an_image",
    "animated_gif",
    "webp",
    "tiff",
    "avif",
    "video_with_audio",
    "rotated_without_exif",
    "upside_down",
    "very_dark",
    "truncated_jpeg",
)  # fmt: skip  (inputs that show a face: none may come out unchanged)


def sine_video(
    path: Path, frames: list, fps: int = 10, rate: int = 16000, hz: float = 440.0, audio: str = "pcm_s16le"
) -> float:
    """``frames`` (BGR) as an MJPEG video with a mono sine tone (codec ``audio``) as long as the video;
    its seconds."""
    import av
    import numpy as np

    h, w = frames[0].shape[:2]
    with av.open(str(path), "w") as c:
        v = c.add_stream("mjpeg", rate=fps)
        v.width, v.height, v.pix_fmt = w, h, "yuvj420p"
        a = c.add_stream(audio, rate=rate)
        a.layout = "mono"
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="bgr24")
            f.pts = i
            c.mux(v.encode(f))
        c.mux(v.encode(None))
        t = np.arange(int(rate * len(frames) / fps)) / rate
        tone = (0.5 * 32767 * np.sin(2 * np.pi * hz * t)).astype(np.int16)
        af = av.AudioFrame.from_ndarray(tone[None], format="s16", layout="mono")
        af.sample_rate, af.pts = rate, 0
        fmt = a.codec_context.codec.audio_formats[0].name
        for part in av.AudioResampler(format=fmt, layout="mono", rate=rate).resample(af):
            c.mux(a.encode(part))
        c.mux(a.encode(None))
    return len(frames) / fps


def media_durations(path: Path) -> dict[str, float]:
    """``{"video": seconds (frames / rate), "audio": seconds (decoded samples / rate)}`` of a video file."""
    import av

    out: dict[str, float] = {}
    with av.open(str(path)) as c:
        if c.streams.video:
            v = c.streams.video[0]
            n = sum(1 for _ in c.decode(v))
            out["video"] = n / float(v.average_rate or v.guessed_rate)
            out["fps"] = float(v.average_rate or v.guessed_rate)
    with av.open(str(path)) as c:
        if c.streams.audio:
            a = c.streams.audio[0]
            out["audio"] = sum(f.samples for f in c.decode(a)) / a.codec_context.sample_rate
    return out


def write_bad_media(
    folder: Path, colour_face: Path, grey_face: Path, outside: Path, crowd: list[Path]
) -> dict[str, tuple[str, str]]:
    """The media corpus under ``folder``: ``kind -> (relative path, expected outcome)``. ``colour_face``
    and ``grey_face`` are photos of a real face (London, Yale); ``outside`` is a folder apart from
    ``folder`` (a link leads there); ``crowd``: six photos of other people (London), tiled into one
    picture. Outcomes that depend on this machine (AVIF) are decided here."""
    import av
    import cv2
    import numpy as np
    from PIL import Image, ImageOps

    from kssgan.deidentify.bench import synthetic_video_frames
    from kssgan.deidentify.stills import avif_supported

    folder.mkdir(parents=True, exist_ok=True)
    face = ImageOps.contain(Image.open(colour_face).convert("RGB"), (320, 320))
    grey = Image.open(grey_face).convert("L")
    cases: dict[str, tuple[str, str]] = {}

    def jpeg_bytes(img: Image.Image, **kw) -> bytes:
        import io

        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=92, **kw)
        return buf.getvalue()

    (folder / "zero_byte.jpg").write_bytes(b"")
    cases["zero_byte"] = ("zero_byte.jpg", "failed")
    data = jpeg_bytes(face)
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    cases["truncated_jpeg"] = ("truncated.jpg", "failed")
    (folder / "text.jpg").write_text("this is not a picture\n")
    cases["text_named_jpg"] = ("text.jpg", "failed")
    rgba = face.convert("RGBA")
    alpha = np.full((face.height, face.width), 255, np.uint8)
    alpha[:, : face.width // 6] = 0  # a transparent strip on the left
    alpha[: face.height // 8, :] = 128
    rgba.putalpha(Image.fromarray(alpha))
    rgba.save(folder / "alpha.png")
    cases["alpha_png"] = ("alpha.png", "face")
    face.convert("CMYK").save(folder / "cmyk.jpg", format="JPEG", quality=92)
    cases["cmyk_jpeg"] = ("cmyk.jpg", "face")
    Image.fromarray((np.asarray(grey, np.uint16) * 257).astype(np.uint16)).save(folder / "grey16.png")
    cases["png_16bit"] = ("grey16.png", "face")
    rgb48 = np.asarray(face)[:, :, ::-1].astype(np.uint16) * 257  # BGR for OpenCV, 16 bits per channel
    cv2.imwrite(str(folder / "rgb48.png"), rgb48)
    cases["rgb48_png"] = ("rgb48.png", "face")
    grey.save(folder / "grey.png")
    cases["grey_png"] = ("grey.png", "face")
    wide = Image.new("RGB", (10000, 600), (120, 140, 160))  # flat but for one face, far to the right
    wide.paste(face, (7000, 140))
    wide.save(folder / "wide.png")
    cases["wide_10000px"] = ("wide.png", "face")
    assert len(crowd) == 6, "six photos of faces"
    six = Image.new("RGB", (720, 600))
    for k, p in enumerate(crowd):  # a 3 × 2 group photo
        six.paste(ImageOps.fit(Image.open(p).convert("RGB"), (240, 300)), ((k % 3) * 240, (k // 3) * 300))
    six.save(folder / "six_faces.jpg", quality=92)
    cases["six_faces"] = ("six_faces.jpg", "face")
    Image.new("RGB", (1, 1), (90, 60, 30)).save(folder / "one_pixel.png")
    cases["one_by_one"] = ("one_pixel.png", "withheld")
    wall = np.tile(np.linspace(30, 220, 320, dtype=np.uint8)[None, :, None], (240, 1, 3))
    Image.fromarray(wall).save(folder / "no_face.jpg", quality=92)
    cases["no_face"] = ("no_face.jpg", "withheld")
    exif = Image.Exif()
    exif[0x0112] = 6  # the camera was turned: rotate 90° clockwise to view
    (folder / "exif_rotated.jpg").write_bytes(jpeg_bytes(face.transpose(Image.Transpose.ROTATE_90), exif=exif))
    cases["exif_rotated"] = ("exif_rotated.jpg", "face")
    face.transpose(Image.Transpose.ROTATE_90).save(folder / "rotated.jpg", quality=92)
    cases["rotated_without_exif"] = ("rotated.jpg", "face")
    face.transpose(Image.Transpose.ROTATE_180).save(folder / "upside_down.jpg", quality=92)
    cases["upside_down"] = ("upside_down.jpg", "face")
    Image.fromarray((np.asarray(face, np.float32) * 0.02).astype(np.uint8)).save(folder / "dark.jpg", quality=92)
    cases["very_dark"] = ("dark.jpg", "withheld")
    raw = os.fsencode(folder) + b"/caf\xe9.jpg"  # Latin-1 bytes: not valid UTF-8
    with open(raw, "wb") as fh:
        fh.write(data)
    cases["non_utf8_name"] = (os.fsdecode(b"caf\xe9.jpg"), "face")
    face.save(folder / "Zoë 李.jpg", quality=92)
    cases["unicode_name"] = ("Zoë 李.jpg", "face")
    os.symlink("loop_b.jpg", folder / "loop_a.jpg")
    os.symlink("loop_a.jpg", folder / "loop_b.jpg")
    cases["symlink_loop"] = ("loop_a.jpg", "skipped")
    outside.mkdir(parents=True, exist_ok=True)
    face.save(outside / "elsewhere.jpg", quality=92)
    os.symlink(outside / "elsewhere.jpg", folder / "outside.jpg")
    cases["link_outside_input"] = ("outside.jpg", "skipped")
    (folder / "folder.jpg").mkdir()
    face.save(folder / "folder.jpg" / "inside.jpg", quality=92)
    cases["folder_named_like_an_image"] = ("folder.jpg/inside.jpg", "face")
    frames = [face.rotate(a, fillcolor=(200, 200, 200)) for a in (0, 3, -3)]
    frames[0].save(folder / "animated.gif", save_all=True, append_images=frames[1:], duration=[80, 90, 100], loop=0)
    cases["animated_gif"] = ("animated.gif", "face")
    face.save(folder / "face.webp", quality=90)
    cases["webp"] = ("face.webp", "face")
    face.save(folder / "face.tiff")
    cases["tiff"] = ("face.tiff", "face")
    if avif_supported():
        face.save(folder / "face.avif", quality=90)
        cases["avif"] = ("face.avif", "face")
    else:  # a hand-made AVIF header: recognised, not readable here
        (folder / "face.avif").write_bytes(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + bytes(64))
        cases["avif"] = ("face.avif", "skipped")
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(2048))
    cases["corrupt_video"] = ("corrupt.mp4", "failed")
    with av.open(str(folder / "zero_frames.avi"), "w") as c:
        s = c.add_stream("mjpeg", rate=10)
        s.width, s.height, s.pix_fmt = 64, 48, "yuvj420p"
        c.start_encoding()  # the header, and no frame
    cases["zero_frame_video"] = ("zero_frames.avi", "failed")
    sine_video(folder / "talk.avi", synthetic_video_frames(6, (480, 360)))
    cases["video_with_audio"] = ("talk.avi", "face")
    return cases
