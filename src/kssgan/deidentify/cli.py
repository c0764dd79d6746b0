"""``kssgan deidentify``: de-identify an image, a folder (recursive) or a video with a trained model.

    kssgan deidentify --ckpt model.ckpt --input photos/ --output released/ --report report.json
    kssgan deidentify --ckpt model.ckpt --input clip.mp4 --output released/ --set expression=neutral
    kssgan deidentify --ckpt model.ckpt --backend onnxruntime --onnx model.onnx --input ... --output ...

Outputs keep the input's relative paths and basenames (and image format). Existing outputs are
skipped unless ``--overwrite``. Pictures without a face are copied unchanged and reported; files that
cannot be read are logged (``<output>/deidentify.log``) and reported, and the batch goes on. The JSON
report (default ``<output>/deidentify-report.json``) lists per face: box, detector score, group, how
the group was chosen and the recogniser similarity between the original and the output. The exit
status is 0 when every file was handled, 1 when some failed, 2 for a bad request.

``--seal-to holder.pub`` seals the mapping released file -> source (identity, groups, boxes) to the
data holder's key in ``<output>/reidentify.sealed`` and strips source names from the report;
``--rename hash`` names outputs by a keyed hash (:mod:`kssgan.seal`).

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

from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions
from kssgan.seal import SealError

log = logging.getLogger("kssgan.deidentify")

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm", ".pnm")
ENCODE_EXTENSION = {"jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "tiff": ".tiff", "webp": ".webp", "pnm": ".ppm"}
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
    p.add_argument("--margin", type=float, default=None, help="crop margin; must match `kssgan prepare` (default 0)")
    p.add_argument("--detector", default=None, help="yunet (default) | insightface")
    p.add_argument("--recogniser", default=None, help="for open-set groups and the report (default: the groups')")
    p.add_argument("--model-dir", default=None, help="folder with detector/recogniser model files")
    p.add_argument(
        "--set", action="append", default=[], metavar="NAME=VALUE", help="fix a label attribute, e.g. expression=happy"
    )
    p.add_argument("--identity", help="closed-set identity of every face in the input (its own k-Same group)")
    p.add_argument("--attributes", help="CSV with a `path` column (relative to --input) and identity/attribute columns")
    p.add_argument("--identity-column", default="identity", help="identity column of --attributes (e.g. subject)")
    p.add_argument("--no-similarity", action="store_true", help="skip the recogniser check of each output")
    p.add_argument("--config", help="YAML with DeidentifyOptions (command-line flags win)")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--seal-to", metavar="HOLDER_PUB", help="seal the released->source mapping to this holder.pub")
    p.add_argument(
        "--rename", choices=("keep", "hash"), default="keep", help="output names: the input's, or a keyed hash"
    )
    return p


def options_from_args(args: argparse.Namespace) -> DeidentifyOptions:
    opts = DeidentifyOptions.from_yaml(args.config) if args.config else DeidentifyOptions()
    for name in ("device", "precision", "batch_size", "margin", "detector", "recogniser", "model_dir", "identity"):
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
def collect_inputs(root: Path, output: Path) -> list[tuple[Path, str]]:
    """``(path, relative name)`` for a file, or every file under a folder (not the output folder)."""
    if root.is_file():
        return [(root, root.name)]
    if not root.is_dir():
        raise DeidentifyError(f"--input {root} does not exist")
    out = output.resolve()
    files = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if out == path.resolve().parent or out in path.resolve().parents:
            continue
        files.append((path, path.relative_to(root).as_posix()))
    return files


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
def write_image(path: Path, image: np.ndarray, fmt: str | None, grey: bool) -> None:
    """Write ``image`` (BGR) in the input's format (GIF through PIL), atomically."""
    import cv2

    tmp = path.with_name(path.name + ".part")
    ext = path.suffix.lower()
    if fmt == "gif" or ext == ".gif":
        from PIL import Image

        pil = Image.fromarray(image[:, :, 0] if grey else np.ascontiguousarray(image[:, :, ::-1]))
        pil.save(tmp, format="GIF")
    else:
        enc = ext if ext in IMAGE_EXTENSIONS and ext != ".gif" else ENCODE_EXTENSION.get(fmt or "", ".png")
        ok, buf = cv2.imencode(enc, image[:, :, 0] if grey and enc in (".pgm", ".png") else image)
        if not ok:
            raise OSError(f"OpenCV could not encode {path.name} as {enc}")
        tmp.write_bytes(buf.tobytes())
    os.replace(tmp, path)


def _setup_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run(args: argparse.Namespace) -> int:
    from kssgan.deidentify.pipeline import Deidentifier
    from kssgan.seal.release import Release

    opts = options_from_args(args)
    in_root, out_root = Path(args.input), Path(args.output)
    files = collect_inputs(in_root, out_root)  # before anything is loaded: a wrong path fails fast
    release = Release(out_root, args.rename, args.seal_to, args.ckpt, in_root if in_root.is_dir() else in_root.parent)
    files = release.order(files)
    deid = Deidentifier.from_checkpoint(args.ckpt, opts, args.backend, args.onnx, args.image_size)
    attributes = read_attributes(args.attributes, args.identity_column)
    out_root.mkdir(parents=True, exist_ok=True)
    handler = _setup_log(Path(args.log) if args.log else out_root / LOG_NAME)
    report_path = Path(args.report) if args.report else out_root / REPORT_NAME
    started = time.perf_counter()
    bar = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(files), desc="deidentify", unit="file", dynamic_ncols=True)
    try:
        release.open()
        entries = deidentify_files(deid, files, out_root, attributes, args.overwrite, bar, release=release)
    finally:
        release.close()
        if bar is not None:
            bar.close()
        log.removeHandler(handler)
        handler.close()
    report = release.redact(build_report(args, deid, entries, time.perf_counter() - started))
    report_path.parent.mkdir(parents=True, exist_ok=True)
    report_path.write_text(json.dumps(report, indent=1))
    s = report["summary"]
    print(
        f"deidentify: {s['deidentified']} de-identified, {s['no_face']} without a face (copied), "
        f"{s['failed']} failed, {s['skipped_existing']} already done; {s['faces']} faces"
        + (f", mean recogniser similarity {s['mean_similarity']:.3f}" if s["mean_similarity"] is not None else "")
        + f"; report {report_path}"
    )
    return 1 if s["failed"] else 0


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
    strip: bool = False  # re-encode a face-less picture instead of copying it (no source metadata)


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


def deidentify_files(
    deid: Any,
    files: list[tuple[Path, str]],
    out_root: Path,
    attributes: dict[str, dict[str, Any]] | None = None,
    overwrite: bool = False,
    bar: Any = None,
    chunk_files: int | None = None,
    chunk_pixels: int | None = None,
    release: Any = None,
) -> list[dict[str, Any]]:
    """De-identify ``files`` (``(path, relative name)``) into ``out_root``; one report entry per file, in order.

    Photos are decoded into chunks of up to ``chunk_files`` (default: the batch size, so one-face
    photos fill one generator call) and ``chunk_pixels`` pixels (default :data:`CHUNK_MAX_PIXELS`),
    and each chunk goes through :meth:`Deidentifier.process` at once, so G batches faces across
    photos while memory stays bounded. A chunk that raises is redone photo by photo, so only the bad
    photo fails. Videos are their own chunks (the pending photos are finished first, keeping the file
    order). ``bar`` (tqdm-like) advances once per file when that file is done. ``release``
    (:class:`kssgan.seal.release.Release`) names the outputs and seals each entry before its output
    is published.
    """
    from kssgan.data.readers.image_io import load_image, sniff_format
    from kssgan.deidentify.pipeline import Frame
    from kssgan.deidentify.video import deidentify_video, is_video_path

    attributes = attributes or {}
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
        _run_chunk(deid, chunk, advance)

    for src, rel in files:
        released = release.name(src, rel) if release is not None else rel
        dst = out_root / released
        entry: dict[str, Any] = {"path": released} if released == rel else {"path": released, "source": rel}
        entries.append(entry)
        queued = False
        meta = attributes.get(rel, {})
        seal = release.sealer(rel, deid.options.identity or meta.get("identity")) if release is not None else None
        try:
            video = is_video_path(src)
            entry["kind"] = "video" if video else "image"
            if dst.exists() and not overwrite:
                entry["status"] = "skipped_existing"
                continue
            with src.open("rb") as fh:
                head = fh.read(16)
            fmt = sniff_format(head)
            if not video and fmt is None and src.suffix.lower() not in IMAGE_EXTENSIONS:
                entry.update(kind="other", status="skipped_not_media", reason="neither an image nor a video")
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            if video:
                flush()
                tmp = dst.with_name(f".{dst.stem}.partial{dst.suffix}")
                entry.update(deidentify_video(deid, src, tmp, rel, progress=bar is not None))
                entry["status"] = "deidentified" if entry["face_detections"] else "no_face"
                if seal is not None:
                    seal(entry)
                os.replace(tmp, dst)
                continue
            image, notes = load_image(src)
            frame = Frame(image, rel, meta.get("identity"), meta, "converted:grey" in notes)
            strip = release is not None and release.strip_metadata
            pending.append(_Photo(src, dst, entry, frame, fmt, seal, strip))
            pending_pixels += image.shape[0] * image.shape[1]
            queued = True
        except Exception as err:
            _fail(entry, err)
        finally:
            if not queued:
                advance()
        if len(pending) >= chunk_files or pending_pixels >= chunk_pixels:
            flush()
    flush()
    return entries


def _run_chunk(deid: Any, chunk: list[_Photo], advance: Callable[[], None]) -> None:
    """Process a chunk of photos in one :meth:`Deidentifier.process` call and write each result."""
    if not chunk:
        return
    try:
        results = deid.process([p.frame for p in chunk])
    except Exception as err:
        if len(chunk) == 1:
            _fail(chunk[0].entry, err)
            advance()
            return
        log.debug("a chunk of %d photos failed (%s); redoing them one by one", len(chunk), err)
        for photo in chunk:
            _run_chunk(deid, [photo], advance)
        return
    for photo, (out, faces) in zip(chunk, results, strict=True):
        try:
            _write_result(photo, out, faces)
        except Exception as err:
            _fail(photo.entry, err)
        finally:
            advance()


def _write_result(photo: _Photo, out: np.ndarray, faces: list[Any]) -> None:
    entry, rel = photo.entry, photo.entry["path"]
    if not faces:
        entry.update(
            status="no_face", reason="no face detected: " + ("re-encoded" if photo.strip else "copied unchanged")
        )
        if photo.seal is not None:
            photo.seal(entry)
        if photo.strip:  # the same pixels, none of the source file's metadata
            write_image(photo.dst, photo.frame.image, photo.fmt, bool(photo.frame.grey))
        else:
            shutil.copyfile(photo.src, photo.dst)
        log.info("%s: no face detected, copied unchanged", rel)
        return
    entry.update(status="deidentified", faces=[f.to_dict() for f in faces])
    if photo.seal is not None:
        photo.seal(entry)
    write_image(photo.dst, out, photo.fmt, bool(photo.frame.grey))


def build_report(args: argparse.Namespace, deid: Any, entries: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    faces = [f for e in entries for f in e.get("faces", [])]
    sims = [f["similarity"] for f in faces if "similarity" in f]
    sims += [t["mean_similarity"] for e in entries for t in e.get("tracks", []) if t["mean_similarity"] is not None]
    counts = {s: 0 for s in ("deidentified", "no_face", "failed", "skipped_existing", "skipped_not_media")}
    for e in entries:
        counts[e.get("status", "failed")] = counts.get(e.get("status", "failed"), 0) + 1
    n_faces = len(faces) + sum(e.get("face_detections", 0) for e in entries)
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
        "options": deid.options.to_dict(),
        "summary": {
            **counts,
            "files": len(entries),
            "faces": n_faces,
            "mean_similarity": round(float(np.mean(sims)), 4) if sims else None,
            "still_matching": sum(bool(f.get("match")) for f in faces),
            "seconds": round(seconds, 2),
        },
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
