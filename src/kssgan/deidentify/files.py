"""The file loop of ``kssgan deidentify``: photos in chunks (faces batched across photos through
the generator), videos and animations on their own, each file finished by a :class:`Recorder`."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.deidentify.encode import IMAGE_EXTENSIONS, encode_image, part_path
from kssgan.deidentify.journal import Journal
from kssgan.deidentify.policy import ReleasePolicy
from kssgan.deidentify.recorder import Recorder

log = logging.getLogger("kssgan.deidentify")

# decoded photos per chunk at most (besides --batch-size files): ~150 MB of BGR input, as much again for outputs
CHUNK_MAX_PIXELS = 50_000_000


@dataclass
class _Photo:
    """A decoded photo waiting in a chunk for :meth:`Deidentifier.process`."""

    src: Path
    dst: Path
    entry: dict[str, Any]
    frame: Any  # pipeline.Frame
    fmt: str | None
    seal: Callable[[dict[str, Any]], None] | None = None  # seals the entry before the output is published
    strip: bool = False  # re-encode a picture released unchanged (--on-no-face copy): no source metadata
    alpha: np.ndarray | None = None  # the source's alpha channel, re-attached to the output


def deidentify_files(
    deid: Any,
    files: list[tuple[Path, str]],
    out_root: Path,
    attributes: dict[str, dict[str, Any]] | None = None,
    overwrite: bool = False,
    bar: Any = None,
    chunk_files: int | None = None,
    chunk_pixels: int | None = None,
    journal: Journal | None = None,
    release: Any = None,
) -> list[dict[str, Any]]:
    """De-identify ``files`` (``(path, relative name)``) into ``out_root``; one report entry per file, in order.

    Photos are decoded into chunks of up to ``chunk_files`` (default: the batch size, so one-face
    photos fill one generator call) and ``chunk_pixels`` pixels (default :data:`CHUNK_MAX_PIXELS`),
    and each chunk goes through :meth:`Deidentifier.process` at once, so G batches faces across
    photos while memory stays bounded. A chunk that raises is redone photo by photo, so only the bad
    photo fails. Videos are their own chunks (the pending photos are finished first, keeping the file
    order). ``bar`` (tqdm-like) advances once per file when that file is done. What is released or
    withheld follows ``deid.options`` (:class:`~kssgan.deidentify.policy.ReleasePolicy`); each
    finished file is recorded in ``journal`` before its output appears. ``release``
    (:class:`kssgan.seal.release.Release`) names the outputs and seals each entry first.
    """
    from kssgan.data.readers.image_io import load_image, sniff_format
    from kssgan.deidentify.pipeline import Frame
    from kssgan.deidentify.stills import deidentify_animation, frame_count, read_alpha, unsupported_kind
    from kssgan.deidentify.video import deidentify_video, is_video_path

    attributes = attributes or {}
    if deid.reads_people:
        observe_people(deid, files, attributes)
    policy = ReleasePolicy(deid.options.on_no_face, deid.options.on_still_matching)
    rec = Recorder(journal, release)
    strip = release is not None and release.strip_metadata
    chunk_files = max(1, chunk_files or deid.options.batch_size)
    chunk_pixels = chunk_pixels or CHUNK_MAX_PIXELS
    entries: list[dict[str, Any]] = []
    pending: list[_Photo] = []
    pending_pixels = 0

    def advance() -> None:
        if bar is not None:
            bar.update(1)

    def flush() -> None:
        nonlocal pending, pending_pixels
        chunk, pending, pending_pixels = pending, [], 0
        _run_chunk(deid, chunk, advance, policy, rec)

    for src, rel in files:
        released = release.name(src, rel) if release is not None else rel
        dst = out_root / released
        entry: dict[str, Any] = {"path": released}
        if released != rel and (release is None or not release.sealing):
            entry["source"] = rel  # the only link back when not sealed; sealed, it is in the sealed record only
        entries.append(entry)
        queued = False
        meta = attributes.get(rel, {})
        seal = release.sealer(rel, deid.options.identity or meta.get("identity")) if release is not None else None
        try:
            video = is_video_path(src)
            entry["kind"] = "video" if video else "image"
            if dst.exists() and not overwrite:
                entry["status"] = "skipped_existing"
                if journal is not None and journal.previous(released) is None:
                    rec.journal_entry({**entry, "reason": "the output existed; no record of how it was made"})
                continue
            with src.open("rb") as fh:
                head = fh.read(16)
            fmt = sniff_format(head)
            unsupported = None if video else unsupported_kind(head)
            if unsupported:
                entry.update(status="skipped_unsupported", reason=unsupported)
                log.warning("%s: skipped: %s", released, unsupported)
                rec.commit(entry, dst, seal=seal)
                continue
            if not video and fmt is None and src.suffix.lower() not in IMAGE_EXTENSIONS:
                entry.update(kind="other", status="skipped_not_media", reason="neither an image nor a video")
                rec.commit(entry, dst, seal=seal)
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if video:
                flush()
                tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
                info = deidentify_video(deid, src, tmp, released, progress=bar is not None, policy=policy, strip=strip)
                entry.update(info)
                if entry["status"] == "withheld":
                    tmp.unlink(missing_ok=True)
                    log.warning("%s: withheld: %s", released, entry["reason"])
                rec.commit(entry, dst, tmp if entry["status"] != "withheld" else None, seal=seal)
                continue
            if fmt is not None and frame_count(src, fmt) > 1:  # animated: every frame, one tracker
                flush()
                tmp = part_path(dst)
                entry.update(deidentify_animation(deid, src, tmp, released, fmt, policy, strip))
                if entry["status"] == "withheld":
                    tmp.unlink(missing_ok=True)
                    log.warning("%s: withheld: %s", released, entry["reason"])
                rec.commit(entry, dst, tmp if entry["status"] != "withheld" else None, seal=seal)
                continue
            image, notes = load_image(src)
            frame = Frame(image, rel, meta.get("identity"), meta, "converted:grey" in notes)
            alpha = read_alpha(src, fmt, image.shape)
            if alpha is not None:
                entry["alpha"] = True
            pending.append(_Photo(src, dst, entry, frame, fmt, seal, strip, alpha))
            pending_pixels += image.shape[0] * image.shape[1]
            queued = True
        except Exception as err:
            rec.failed(entry, dst, err, seal=seal)
        finally:
            if not queued:
                advance()
        if len(pending) >= chunk_files or pending_pixels >= chunk_pixels:
            flush()
    flush()
    return entries


def observe_people(deid: Any, files: list[tuple[Path, str]], attributes: dict[str, dict[str, Any]]) -> int:
    """``--attribute-reference person`` or ``--follow-reference person``: every photo's face read once,
    before any is released, so that each photo is read against all of its person's photos
    (:meth:`Deidentifier.observe_people`).
    Videos and files that do not decode are passed over here (the file loop reports them)."""
    from kssgan.data.readers.image_io import load_image
    from kssgan.deidentify.pipeline import Frame
    from kssgan.deidentify.video import is_video_path

    seen = 0
    for src, rel in files:
        identity = deid.options.identity or attributes.get(rel, {}).get("identity")
        if identity is None or is_video_path(src):
            continue
        try:
            image, _ = load_image(src)
        except Exception:  # reported by the file loop
            continue
        seen += deid.observe_people([Frame(image, rel, identity)])
    log.info("reference person: %d photos read first, as each person's reference", seen)
    return seen


def _run_chunk(
    deid: Any, chunk: list[_Photo], advance: Callable[[], None], policy: ReleasePolicy, rec: Recorder
) -> None:
    """Process a chunk of photos in one :meth:`Deidentifier.process` call and write each result."""
    if not chunk:
        return
    try:
        results = deid.process([p.frame for p in chunk])
    except Exception as err:
        if len(chunk) == 1:
            rec.failed(chunk[0].entry, chunk[0].dst, err, seal=chunk[0].seal)
            advance()
            return
        log.debug("a chunk of %d photos failed (%s); redoing them one by one", len(chunk), err)
        for photo in chunk:
            _run_chunk(deid, [photo], advance, policy, rec)
        return
    for photo, (out, faces) in zip(chunk, results, strict=True):
        try:
            _write_result(photo, out, faces, policy, rec)
        except Exception as err:
            rec.failed(photo.entry, photo.dst, err, seal=photo.seal)
        finally:
            advance()


def _write_result(photo: _Photo, out: np.ndarray, faces: list[Any], policy: ReleasePolicy, rec: Recorder) -> None:
    """Release, obscure, copy or withhold one processed photo, as ``policy`` decides."""
    entry, rel, dst = photo.entry, photo.entry["path"], photo.dst
    face_dicts = [f.to_dict() for f in faces]
    if face_dicts:
        entry["faces"] = face_dicts
    action, reason = policy.decide(face_dicts)
    if reason:
        entry["reason"] = reason
    tmp = part_path(dst)
    if action == "withhold":
        entry.update(status="withheld", withheld_for="no_face" if not face_dicts else "still_matching")
        log.warning("%s: withheld: %s", rel, reason)
        rec.commit(entry, dst, seal=photo.seal)
        return
    if action == "copy":
        if photo.strip:  # the same pixels, none of the source file's metadata
            encode_image(tmp, photo.frame.image, photo.fmt, bool(photo.frame.grey), dst.suffix, photo.alpha)
            entry["reason"] = f"{reason}, re-encoded without the source's metadata"
        else:
            shutil.copyfile(photo.src, tmp)
        entry["status"] = "no_face"
        log.warning("%s: %s", rel, entry["reason"])
    elif action == "obscure":
        obscured = policy.obscure_whole(photo.frame.image)
        encode_image(tmp, obscured, photo.fmt, bool(photo.frame.grey), dst.suffix, photo.alpha)
        entry["status"] = "obscured"
    else:
        encode_image(tmp, out, photo.fmt, bool(photo.frame.grey), dst.suffix, photo.alpha)
        entry["status"] = "deidentified"
        if reason:
            log.warning("%s: %s", rel, reason)
    rec.commit(entry, dst, tmp, seal=photo.seal)
