"""Video files through PyAV (FFmpeg): frames in, frames out, and the audio carried across.

:class:`VideoSource` decodes the first video stream to BGR arrays; :class:`VideoSink` encodes new
frames into a fresh container (no metadata of the source) and carries every audio stream of the
source along: its packets are copied when the output container takes that codec, otherwise the audio
is re-encoded (AAC, Opus or PCM by container). Nothing of the audio is dropped silently: the report
says per stream how it was kept (``copied`` | ``re-encoded``) and its duration.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.deidentify.options import DeidentifyError

DEFAULT_FPS = 25.0
# OpenCV fourcc names (DeidentifyOptions.video_codec) -> FFmpeg encoders; FFmpeg names pass through
FOURCC_CODECS = {"mp4v": "mpeg4", "XVID": "mpeg4", "DIVX": "mpeg4", "MJPG": "mjpeg", "avc1": "libx264"}
FOURCC_CODECS.update({"H264": "libx264", "VP80": "libvpx", "VP90": "libvpx-vp9"})
DEFAULT_VIDEO_CODEC = {".webm": "libvpx-vp9"}
# audio codecs each container takes as they are (packets copied); others are re-encoded to AUDIO_ENCODER
AUDIO_COPY = {
    ".mp4": {"aac", "mp3", "alac", "ac3", "opus"},
    ".m4v": {"aac", "mp3", "alac", "ac3"},
    ".mov": {"aac", "mp3", "alac", "ac3", "pcm_s16le", "pcm_s24le"},
    ".avi": {"mp3", "ac3", "pcm_s16le", "pcm_u8"},
    ".webm": {"opus", "vorbis"},
}
AUDIO_ENCODER = {".webm": "libopus", ".avi": "pcm_s16le"}  # otherwise aac


def _av() -> Any:
    try:
        import av
    except ImportError as err:  # pragma: no cover - a dependency of the package
        raise DeidentifyError("videos need PyAV: pip install av") from err
    return av


class VideoSource:
    """The first video stream of ``path`` as BGR frames; audio packets go to ``on_audio`` as they come."""

    def __init__(self, path: Path) -> None:
        av = _av()
        self.path = path
        try:
            self.container = av.open(str(path))
        except (av.FFmpegError, OSError, ValueError) as err:  # FFmpeg's text names the path: keep the name only
            msg = str(err).replace(str(path), path.name)
            raise DeidentifyError(f"not a readable video ({type(err).__name__}: {msg})") from err
        if not self.container.streams.video:
            self.container.close()
            raise DeidentifyError("no video stream in the file")
        self.video = self.container.streams.video[0]
        self.video.thread_type = "AUTO"
        self.audio = list(self.container.streams.audio)
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(DEFAULT_FPS)
        self.rate = Fraction(rate).limit_denominator(100_000)
        self.fps = float(self.rate) if self.rate > 0 else DEFAULT_FPS
        self.total = int(self.video.frames or 0) or None
        self.decode_errors = 0

    def frames(self, on_audio: Any = None) -> Iterator[np.ndarray]:
        av = _av()
        try:
            for packet in self.container.demux(self.video, *self.audio):
                if packet.stream.type == "audio":
                    if on_audio is not None and packet.dts is not None and packet.size:
                        on_audio(packet)
                    continue
                try:
                    decoded = packet.decode()
                except av.FFmpegError:
                    self.decode_errors += 1
                    continue
                for frame in decoded:
                    yield frame.to_ndarray(format="bgr24")
        except av.FFmpegError:  # a damaged container: what was decoded so far stands, and is reported
            self.decode_errors += 1

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class VideoSink:
    """A new video at ``path``: BGR frames at ``source``'s rate, with ``source``'s audio carried across."""

    def __init__(self, path: Path, source: VideoSource, codecs: dict[str, str], audio: str = "keep") -> None:
        if audio not in ("keep", "drop"):
            raise DeidentifyError(f"audio must be keep or drop, not {audio!r}")
        self.path, self.source = path, source
        self.keep_audio = audio == "keep"
        ext = path.suffix.lower()
        name = codecs.get(ext) or DEFAULT_VIDEO_CODEC.get(ext, "mpeg4")
        self.codec = FOURCC_CODECS.get(name, name)
        self.ext = ext
        self.container: Any = None
        self.stream: Any = None
        self.frames = 0
        self._audio: dict[int, tuple[Any, str, Any, Any]] = {}  # in index -> (out stream, how, decoder, resampler)
        self._pending_audio: list[Any] = []
        self._audio_seconds: dict[int, float] = {}  # in index -> seconds of audio carried across
        self._size = (0, 0)

    def _open(self, width: int, height: int) -> None:
        av = _av()
        self._size = (width, height)
        self.container = av.open(str(self.path), mode="w")
        try:
            stream = self.container.add_stream(self.codec, rate=self.source.rate)
        except (av.FFmpegError, ValueError) as err:
            raise DeidentifyError(f"cannot write {self.ext} video with codec {self.codec!r}: {err}") from err
        even = self.codec == "libx264"  # the one encoder here that needs even sizes (report: cropped_to)
        stream.width, stream.height = (width - width % 2, height - height % 2) if even else (width, height)
        stream.pix_fmt = "yuvj420p" if self.codec == "mjpeg" else "yuv420p"
        stream.bit_rate = int(max(2_000_000, width * height * self.source.fps * 0.5))
        stream.codec_context.time_base = 1 / self.source.rate
        self.stream = stream
        for a in self.source.audio if self.keep_audio else ():
            self._audio[a.index] = self._audio_stream(a)

    def _audio_stream(self, a: Any) -> tuple[Any, str, Any, Any]:
        av = _av()
        name = a.codec_context.name
        if name in AUDIO_COPY.get(self.ext, {name}):
            try:
                return self.container.add_stream_from_template(a), "copied", None, None
            except (av.FFmpegError, ValueError):
                pass
        encoder = AUDIO_ENCODER.get(self.ext, "aac")
        rate = a.codec_context.sample_rate or 48000
        if encoder == "libopus" and rate not in (8000, 12000, 16000, 24000, 48000):
            rate = 48000
        out = self.container.add_stream(encoder, rate=rate)
        layout = a.codec_context.layout.name if a.codec_context.layout else "stereo"
        out.layout = layout
        fmt = out.codec_context.codec.audio_formats[0].name
        out.format = fmt
        decoder = av.CodecContext.create(a.codec_context.name, "r")
        if a.codec_context.extradata:
            decoder.extradata = a.codec_context.extradata
        decoder.sample_rate, decoder.layout = a.codec_context.sample_rate, a.codec_context.layout
        resampler = av.AudioResampler(format=fmt, layout=layout, rate=rate)
        return out, "re-encoded", decoder, resampler

    def audio_packet(self, packet: Any) -> None:
        if not self.keep_audio:  # dropped: never decoded, never written
            return
        if self.container is None:  # audio before the first picture: kept until the output is opened
            self._pending_audio.append(packet)
            return
        out, how, decoder, resampler = self._audio[packet.stream.index]
        if packet.duration and packet.time_base:
            seconds = float(packet.duration * packet.time_base)
            self._audio_seconds[packet.stream.index] = self._audio_seconds.get(packet.stream.index, 0.0) + seconds
        if how == "copied":
            packet.stream = out
            self.container.mux(packet)
            return
        for frame in decoder.decode(packet):
            frame.pts = None
            for f in resampler.resample(frame):
                self.container.mux(out.encode(f))

    def write(self, image: np.ndarray) -> None:
        av = _av()
        if self.container is None:
            self._open(image.shape[1], image.shape[0])
            pending, self._pending_audio = self._pending_audio, []
            for packet in pending:
                self.audio_packet(packet)
        h, w = self.stream.height, self.stream.width
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image[:h, :w]), format="bgr24")
        frame.pts = self.frames
        frame.time_base = 1 / self.source.rate
        self.container.mux(self.stream.encode(frame))
        self.frames += 1

    @property
    def cropped_to(self) -> list[int] | None:
        """``[width, height]`` when the encoder needed even sizes and the frames lost a row or column."""
        if self.stream is None or self._size == (self.stream.width, self.stream.height):
            return None
        return [self.stream.width, self.stream.height]

    def audio_report(self) -> list[dict[str, Any]]:
        out = []
        for a in self.source.audio:
            if not self.keep_audio:
                out.append({"codec": a.codec_context.name, "kept": "dropped", "seconds": 0.0})
            elif a.index in self._audio:
                seconds = round(self._audio_seconds.get(a.index, 0.0), 3)
                out.append({"codec": a.codec_context.name, "kept": self._audio[a.index][1], "seconds": seconds})
        return out

    def close(self) -> None:
        if self.container is None:
            return
        try:
            self.container.mux(self.stream.encode(None))
            for out, how, decoder, resampler in self._audio.values():
                if how == "re-encoded":
                    for frame in decoder.decode(None):
                        frame.pts = None
                        for f in resampler.resample(frame):
                            self.container.mux(out.encode(f))
                    for f in resampler.resample(None):
                        self.container.mux(out.encode(f))
                    self.container.mux(out.encode(None))
        finally:
            self.container.close()
            self.container = None
