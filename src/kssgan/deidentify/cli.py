"""``kssgan deidentify``: de-identify an image, a folder (recursive) or a video with a trained model.

    kssgan deidentify --ckpt model.ckpt --input photos/ --output released/ --report report.json
    kssgan deidentify --ckpt model.ckpt --input clip.mp4 --output released/ --set expression=neutral
    kssgan deidentify --ckpt model.ckpt --backend onnxruntime --onnx model.onnx --input ... --output ...

Outputs keep the input's relative paths and basenames (and image format). Existing outputs are
skipped unless ``--overwrite``. Fail closed: pictures without a face and outputs the recogniser still
matches to their source are withheld (not written) unless ``--on-no-face`` / ``--on-still-matching``
say otherwise (:mod:`.policy`); files that cannot be read are logged (``<output>/deidentify.log``) and
reported, and the batch goes on. Every finished file is recorded in ``<output>/deidentify-journal.jsonl``
before its output appears (:mod:`.journal`); the JSON report (default ``<output>/deidentify-report.json``)
is rebuilt from it and lists per face: box, detector score, group, how the group was chosen and the
recogniser similarity between the original and the output. The exit status is 0 when every file was
released, 1 when some failed, 2 for a bad request, 3 when something was withheld.

``--seal-to holder.pub`` seals the mapping released file -> source (identity, groups, boxes) to the
data holder's key in ``<output>/reidentify.sealed`` and strips source names from the report and the
journal; ``--rename hash`` names outputs by a keyed hash (:mod:`kssgan.seal`). Each file is sealed,
then journaled, then published (:class:`_Recorder`).

Photos are read in chunks (up to ``--batch-size`` files and :data:`CHUNK_MAX_PIXELS` pixels) and
each chunk is de-identified at once, so the generator batches faces across photos; a chunk that
fails is redone photo by photo, so one bad photo never costs the others.

The k-Same grouping covers only identities of the training closed set (``--identity`` or an
``--attributes`` CSV with an identity column); other faces get the nearest group (best effort).
How well the output images resist re-identification is measured by ``kssgan evaluate``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.deidentify.journal import JOURNAL_NAME, Journal
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions
from kssgan.deidentify.policy import EXIT_WITHHELD, NO_FACE_CHOICES, STILL_MATCHING_CHOICES, ReleasePolicy
from kssgan.seal import SealError

log = logging.getLogger("kssgan.deidentify")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".pnm", ".avif")
ENCODE_EXTENSION = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "tiff": ".tiff", "webp": ".webp", "pnm": ".ppm"}
ENCODE_EXTENSION["avif"] = ".avif"
PIL_ENCODED = {".gif": "GIF", ".avif": "AVIF"}  # written through Pillow (OpenCV cannot, or loses transparency)
LOG_NAME = "deidentify.log"
REPORT_NAME = "deidentify-report.json"
# decoded photos per chunk at most (besides --batch-size files): ~150 MB of BGR input, as much again for outputs
CHUNK_MAX_PIXELS = 50_000_000


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kssgan deidentify", description=__doc__.split("\n\n")[0])
    p.add_argument("--ckpt", required=True, help="trained kssgan checkpoint (.ckpt)")
    p.add_argument("--input", required=True, help="an image, a video or a folder (searched recursively)")
    p.add_argument("--output", required=True, help="output folder (relative paths and names are kept)")
    p.add_argument("--overwrite", action="store_true", help="redo outputs that already exist")
    p.add_argument("--report", help=f"JSON report path (default <output>/{REPORT_NAME})")
    p.add_argument("--log", help=f"failure log (default <output>/{LOG_NAME})")
    p.add_argument("--backend", choices=("torch", "onnxruntime"), default="torch")
    p.add_argument("--onnx", help="ONNX generator from `kssgan export` (for --backend onnxruntime)")
    p.add_argument("--device", default=None, help="cpu | cuda")
    p.add_argument("--precision", choices=("fp32", "bf16"), default=None, help="torch back end only")
    p.add_argument("--batch-size", type=int, default=None, help="faces per generator call")
    p.add_argument("--image-size", type=int, default=None, help="fail unless the checkpoint works at this size")
    p.add_argument("--margin", type=float, default=None, help="crop margin (default: the checkpoint's, as prepared)")
    p.add_argument("--detector", default=None, help="yunet | insightface (default: the checkpoint's)")
    p.add_argument("--recogniser", default=None, help="for open-set groups and the report (default: the groups')")
    p.add_argument("--model-dir", default=None, help="folder with detector/recogniser model files")
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="fix a label attribute, e.g. expression=happy"
    )
    p.add_argument("--identity", help="closed-set identity of every face in the input (its own k-Same group)")
    p.add_argument("--attributes", help="CSV with a `path` column (relative to --input) and identity/attribute columns")
    p.add_argument("--identity-column", default="identity", help="identity column of --attributes (e.g. subject)")
    p.add_argument(
        "--no-similarity",
        action="store_true",
        help="skip the recogniser check of outputs (nothing withheld for a match)",
    )
    p.add_argument(
        "--on-no-face",
        choices=NO_FACE_CHOICES,
        default=None,
        help="a picture without a detected face: withhold (default), pixelate/blur it all, or copy it UNCHANGED",
    )
    p.add_argument(
        "--on-still-matching",
        choices=STILL_MATCHING_CHOICES,
        default=None,
        help="an output the recogniser still matches to its source: withhold (default) or keep",
    )
    p.add_argument("--config", help="YAML with DeidentifyOptions (command-line flags win)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--seal-to", metavar="HOLDER_PUB", help="seal the released->source mapping to this holder.pub")
    p.add_argument(
        "--rename", choices=("keep", "hash"), default="keep", help="output names: the input's, or a keyed hash"
    )
    return p


def options_from_args(args: argparse.Namespace) -> DeidentifyOptions:
    opts = DeidentifyOptions.from_yaml(args.config) if args.config else DeidentifyOptions()
    names = ("device", "precision", "batch_size", "margin", "detector", "recogniser", "model_dir", "identity")
    for name in (*names, "on_no_face", "on_still_matching"):
        value = getattr(args, name)
        if value is not None:
            setattr(opts, name, value)
    for item in args.set:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise DeidentifyError(f"--set expects NAME=VALUE, got {item!r}")
        opts.attributes[name.strip()] = value.strip()
    if args.no_similarity:
        opts.similarity = False
    return opts


# -- inputs ------------------------------------------------------------------------------------
def check_paths(root: Path, output: Path) -> None:
    """Refuse an ``--output`` that would overwrite or mix with the input, or that is a file."""
    if not root.exists() and not root.is_symlink():
        raise DeidentifyError(f"--input {root} does not exist")
    if output.exists() and not output.is_dir():
        raise DeidentifyError(f"--output {output} is an existing file; give a folder (it is created when missing)")
    src, out = root.resolve(), output.resolve()
    if root.is_file():
        if out == src.parent:
            raise DeidentifyError(f"--output {output} is the folder of --input {root}: the output would replace it")
        return
    if out == src:
        raise DeidentifyError(f"--output {output} is the --input folder itself; give a separate folder")
    if src in out.parents:
        raise DeidentifyError(f"--output {output} lies inside --input {root}; give a folder outside it")


def scan_inputs(root: Path, output: Path) -> tuple[list[tuple[Path, str]], list[dict[str, Any]]]:
    """``(files, skipped)``: ``(path, relative name)`` of every file to handle under ``root`` (or
    ``root`` itself), and a report entry for each path that is passed over with its reason (dangling
    or looping links, links leading outside ``root``). Hidden names and the output folder are left out."""
    if root.is_file():
        return [(root, root.name)], []
    if not root.is_dir():
        raise DeidentifyError(f"--input {root} does not exist")
    out, base = output.resolve(), root.resolve()
    files: list[tuple[Path, str]] = []
    skipped: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_symlink():
            try:
                target = path.resolve(strict=True)
            except (OSError, RuntimeError) as err:  # dangling, or a loop (ELOOP / RuntimeError)
                why = "symlink loop" if "loop" in str(err).lower() else "dangling link (its target does not exist)"
                skipped.append({"path": rel, "kind": "link", "status": "skipped", "reason": why})
                continue
            if base != target and base not in target.parents:
                skipped.append(
                    {"path": rel, "kind": "link", "status": "skipped", "reason": "link to a file outside --input"}
                )
                continue
        if not path.is_file():
            continue
        if out == path.resolve().parent or out in path.resolve().parents:
            continue
        files.append((path, rel))
    return files, skipped


def collect_inputs(root: Path, output: Path) -> list[tuple[Path, str]]:
    """``(path, relative name)`` for a file, or every file under a folder (not the output folder)."""
    return scan_inputs(root, output)[0]


def read_attributes(path: str | None, identity_column: str) -> dict[str, dict[str, Any]]:
    """``relative path -> {"identity": …, attribute: value}`` from a CSV (empty without one)."""
    if not path:
        return {}
    import pandas as pd

    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    if "path" not in table.columns:
        raise DeidentifyError(f"{path}: the attributes CSV needs a `path` column; it has {list(table.columns)}")
    rows = {}
    for rec in table.to_dict("records"):
        rel = str(rec.pop("path")).replace("\\", "/")
        ident = rec.pop(identity_column, "") if identity_column in rec else ""
        rec["identity"] = ident or None
        rows[rel] = rec
    return rows


# -- outputs -------------------------------------------------------------------------------------
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


def write_image(path: Path, image: np.ndarray, fmt: str | None, grey: bool) -> None:
    """Write ``image`` (BGR) in the input's format (GIF through PIL), atomically."""
    tmp = _part(path)
    encode_image(tmp, image, fmt, grey, path.suffix)
    os.replace(tmp, path)


def _part(dst: Path) -> Path:
    return dst.with_name(dst.name + ".part")


def _setup_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run(args: argparse.Namespace) -> int:
    from kssgan.deidentify.pipeline import Deidentifier
    from kssgan.seal.release import Release

    opts = options_from_args(args)
    policy = ReleasePolicy(opts.on_no_face, opts.on_still_matching)  # a bad choice fails before any work
    in_root, out_root = Path(args.input), Path(args.output)
    check_paths(in_root, out_root)
    files, passed_over = scan_inputs(in_root, out_root)  # before anything is loaded: a wrong path fails fast
    release = Release(out_root, args.rename, args.seal_to, args.ckpt, in_root if in_root.is_dir() else in_root.parent)
    files = release.order(files)
    deid = Deidentifier.from_checkpoint(args.ckpt, opts, args.backend, args.onnx, args.image_size)
    attributes = read_attributes(args.attributes, args.identity_column)
    for line in policy.warnings(opts.similarity):
        print(f"kssgan deidentify: WARNING: {line}", file=sys.stderr)
    out_root.mkdir(parents=True, exist_ok=True)
    handler = _setup_log(Path(args.log) if args.log else out_root / LOG_NAME)
    report_path = Path(args.report) if args.report else out_root / REPORT_NAME
    started = time.perf_counter()
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="deidentify", unit="file", dynamic_ncols=True)
    journal = Journal(out_root / JOURNAL_NAME)
    try:
        release.open()
        rec = _Recorder(journal, release)
        for entry in passed_over:
            source = entry["path"]
            entry["path"] = release.name(in_root / source, source)
            log.warning("%s: skipped: %s", entry["path"], entry["reason"])
            rec.commit(entry, out_root / entry["path"], seal=release.sealer(source, None))
        done = deidentify_files(
            deid, files, out_root, attributes, args.overwrite, bar, journal=journal, release=release
        )
        entries = passed_over + done
    finally:
        release.close()
        journal.close()
        if bar is not None:
            bar.close()
        log.removeHandler(handler)
        handler.close()
    order = {e["path"]: i for i, e in enumerate(entries)}  # this run's files in input order, then older ones
    full = {e["path"]: e for e in entries if e.get("status") != "skipped_existing"}  # sealed: unredacted yet
    merged = [full.get(e["path"], e) for e in journal.merged()]
    merged = sorted(merged, key=lambda e: (order.get(e["path"], len(order)), e["path"]))
    report = release.redact(build_report(args, deid, merged, time.perf_counter() - started, entries))
    report_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _part(report_path)
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, report_path)
    print(summary_line(report["this_run"], report_path))
    return exit_status(report["this_run"])


def summary_line(run: dict[str, Any], report_path: Path) -> str:
    """The console summary of this run (what was released, withheld, failed)."""
    released = run["deidentified"] + run["obscured"] + run["no_face"]
    line = f"deidentify: {released} released ({run['deidentified']} de-identified"
    if run["obscured"]:
        line += f", {run['obscured']} obscured without a face"
    if run["no_face"]:
        line += f", {run['no_face']} copied UNCHANGED without a face"
    line += f"), {run['withheld']} withheld"
    if run["withheld"]:
        line += f" ({run['withheld_no_face']} no face found, {run['withheld_still_matching']} still matching)"
    skipped = run["skipped"] + run["skipped_not_media"] + run["skipped_unsupported"]
    line += f", {run['failed']} failed, {run['skipped_existing']} already done, {skipped} skipped"
    line += f"; {run['faces']} faces"
    if run["still_matching_released"]:
        line += f", {run['still_matching_released']} still-matching faces RELEASED"
    return line + f"; report {report_path}"


def exit_status(run: dict[str, Any]) -> int:
    """0: every file released; :data:`EXIT_WITHHELD` (3): something was withheld; 1: something failed."""
    if run["withheld"]:
        return EXIT_WITHHELD
    return 1 if run["failed"] else 0


# -- the file loop -----------------------------------------------------------------------------
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


def _fail(entry: dict[str, Any], err: BaseException) -> None:
    """Mark ``entry`` failed and log why; unexpected errors get their trace in the log."""
    from kssgan.data.readers.image_io import ImageLoadError

    rel = entry["path"]
    if isinstance(err, (ImageLoadError, DeidentifyError, OSError, ValueError)):
        entry.update(status="failed", reason=f"{type(err).__name__}: {err}")
        log.error("%s: %s", rel, entry["reason"])
    else:  # one bad file must never stop the batch; the trace goes to the log
        entry.update(status="failed", reason=f"unexpected {type(err).__name__}: {err}")
        log.error("%s: %s", rel, entry["reason"], exc_info=err)


class _Recorder:
    """Finishes a file: seal its entry (``--seal-to``), then journal it, then move its output into
    place; every path that writes a file goes through :meth:`commit`, so a run killed at any point
    leaves no published output without its sealed and journaled entry."""

    def __init__(self, journal: Journal | None, release: Any = None) -> None:
        self.journal = journal
        self.release = release  # kssgan.seal.release.Release or None

    def commit(
        self,
        entry: dict[str, Any],
        dst: Path,
        tmp: Path | None = None,
        seal: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        if tmp is None and entry.get("status") == "withheld" and dst.is_file():
            dst.unlink()  # an earlier output (--overwrite) must not outlive a withheld decision
        if seal is not None:
            seal(entry)
        self._journal(entry)
        if tmp is not None:
            os.replace(tmp, dst)

    def failed(
        self,
        entry: dict[str, Any],
        dst: Path,
        err: BaseException,
        seal: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        _fail(entry, err)
        for leftover in (_part(dst), dst.with_name(f".{dst.stem}.partial{dst.suffix}")):
            leftover.unlink(missing_ok=True)
        if seal is not None:
            seal(entry)
        self._journal(entry)

    def _journal(self, entry: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append(self.release.plain_entry(entry) if self.release is not None else entry)


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
    policy = ReleasePolicy(deid.options.on_no_face, deid.options.on_still_matching)
    rec = _Recorder(journal, release)
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
                    rec._journal({**entry, "reason": "the output existed; no record of how it was made"})
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
                tmp = _part(dst)
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


def _run_chunk(
    deid: Any, chunk: list[_Photo], advance: Callable[[], None], policy: ReleasePolicy, rec: _Recorder
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


def _write_result(photo: _Photo, out: np.ndarray, faces: list[Any], policy: ReleasePolicy, rec: _Recorder) -> None:
    """Release, obscure, copy or withhold one processed photo, as ``policy`` decides."""
    entry, rel, dst = photo.entry, photo.entry["path"], photo.dst
    face_dicts = [f.to_dict() for f in faces]
    if face_dicts:
        entry["faces"] = face_dicts
    action, reason = policy.decide(face_dicts)
    if reason:
        entry["reason"] = reason
    tmp = _part(dst)
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


STATUSES = (
    "deidentified",
    "obscured",
    "no_face",
    "withheld",
    "failed",
    "skipped_existing",
    "skipped_not_media",
    "skipped_unsupported",
)


def count_entries(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Counts by status, withheld reasons, faces and released still-matching faces of ``entries``."""
    counts: dict[str, Any] = {s: 0 for s in STATUSES}
    counts["skipped"] = 0
    for e in entries:
        status = e.get("status", "failed")
        counts[status] = counts.get(status, 0) + 1
    withheld = [e for e in entries if e.get("status") == "withheld"]
    counts["withheld_no_face"] = sum(e.get("withheld_for") == "no_face" for e in withheld)
    counts["withheld_still_matching"] = sum(e.get("withheld_for") == "still_matching" for e in withheld)
    released = [e for e in entries if e.get("status") in ("deidentified", "obscured", "no_face")]
    counts["released"] = len(released)
    counts["faces"] = sum(_n_faces(e) + e.get("face_detections", 0) for e in entries)
    counts["still_matching_released"] = sum(_n_matching(e) + e.get("still_matching_detections", 0) for e in released)
    return counts


def _n_faces(entry: dict[str, Any]) -> int:
    """Faces of a photo entry: a list of face dicts, or (a sealed release's plain entry) their count."""
    faces = entry.get("faces", [])
    return len(faces) if isinstance(faces, list) else int(faces)


def _n_matching(entry: dict[str, Any]) -> int:
    faces = entry.get("faces", [])
    if isinstance(faces, list):
        return sum(bool(f.get("match")) for f in faces)
    return int(entry.get("still_matching", 0))


def _face_dicts(entry: dict[str, Any]) -> list[dict[str, Any]]:
    faces = entry.get("faces", [])
    return faces if isinstance(faces, list) else []


def build_report(
    args: argparse.Namespace,
    deid: Any,
    entries: list[dict[str, Any]],
    seconds: float,
    this_run: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The JSON report: ``files`` is every file recorded in the output folder (merged over runs),
    ``summary`` counts them, ``this_run`` counts what this run did."""
    faces = [f for e in entries for f in _face_dicts(e)]
    sims = [f["similarity"] for f in faces if "similarity" in f]
    tracks = [t for e in entries if isinstance(e.get("tracks"), list) for t in e["tracks"]]
    sims += [t["mean_similarity"] for t in tracks if t["mean_similarity"] is not None]
    summary = count_entries(entries)
    summary.pop("skipped_existing")
    run_counts = count_entries(this_run if this_run is not None else entries)
    return {
        "checkpoint": str(args.ckpt),
        "backend": args.backend,
        "image_size": deid.image_size,
        "recogniser": deid.recogniser_name if deid.recogniser is not None else None,
        "group_choice": deid.group_note(),
        "privacy_note": "the k-Same grouping is k-anonymous only for identities of the training closed set "
        "(group_source closed_set); other faces get a best-effort group. Whether the output images resist "
        "re-identification is measured by `kssgan evaluate`, not guaranteed; 'similarity' below is one "
        "recogniser's score per face",
        "release_policy": {
            "on_no_face": deid.options.on_no_face,
            "on_still_matching": deid.options.on_still_matching,
            "similarity_checked": bool(deid.options.similarity),
        },
        "options": deid.options.to_dict(),
        "summary": {
            **summary,
            "skipped_existing": run_counts["skipped_existing"],
            "files": len(entries),
            "mean_similarity": round(float(np.mean(sims)), 4) if sims else None,
            "still_matching": sum(_n_matching(e) + e.get("still_matching_detections", 0) for e in entries),
            "seconds": round(seconds, 2),
        },
        "this_run": {**run_counts, "files": len(this_run if this_run is not None else entries)},
        "files": entries,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run(args)
    except (DeidentifyError, SealError) as err:
        print(f"kssgan deidentify: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
