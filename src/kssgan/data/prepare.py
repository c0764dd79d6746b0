"""``kssgan prepare``: raw photos → a *prepared dataset* (ARCHITECTURE.md, contract 1).

For every image the reader lists: load it (format sniffed from the bytes; greyscale, CMYK, 16-bit
converted), detect faces with 5 landmarks, keep one (largest, ties → most central), align it by a
similarity transform to the ArcFace 5-point template, write the crop, and embed a 112×112 aligned
copy with the face recogniser. Then identities are grouped (k-Same, ``groups.json``).

Guarantees
    * **Resumable.** Rows are appended to ``manifest.csv`` chunk by chunk (one write + fsync per
      chunk), after that chunk's crops and embeddings are on disk. A re-run skips every source
      already in the manifest; a run killed at any point loses at most the chunk in flight (a torn
      last line is discarded, an ``ok`` row without its embedding is redone).
    * **Bad input is recorded, never fatal**: every source gets a row with ``status`` ``ok`` or
      ``skipped`` and a ``reason`` (``unreadable``, ``empty_file``, ``not_an_image``,
      ``truncated``, ``decode_error``, ``no_face``, ``tiny_face:<px>``, ``missing_file``,
      ``unparsed_name`` …); notes on ok rows (``converted:grey``, ``several_faces:3``) go there too.
    * **k-anonymity** holds for the closed set of identities in ``groups.json``: every identity with
      at least one usable *training* image (all of them under ``closed_set``); each group holds
      k … 2k−1 of them, and every group is seen in training. Identities only in val/test
      (``identity_disjoint``) and unseen faces get their nearest group: best effort only.
    * Face images are never logged; only counts and file names are printed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kssgan.data.grouping import GroupAssignment, GroupingError, KSameGrouping
from kssgan.data.readers._common import printable

__all__ = [
    "PrepareConfigMismatch",
    "bench_prepare",
    "identity_groups",
    "load_recipe",
    "main",
    "prepare_dataset",
    "regroup",
]

LANDMARK_COLUMNS = [f"lm{i}_{a}" for i in range(5) for a in ("x", "y")]
CORE_COLUMNS = ["source", "crop", "identity", "split", "status", "reason", "det_score", *LANDMARK_COLUMNS]
EXTRA_COLUMNS = ["n_faces", "face_size", "width", "height"]
# settings that change the crops: a resumed run must use the same ones
FINGERPRINT_KEYS = ("reader", "image_size", "margin", "detector", "recogniser", "min_face", "det_score_threshold")
REPO_ROOT = Path(__file__).resolve().parents[3]
# a file name that is not valid UTF-8 is recorded (reason non_utf8_name, shown with \xNN escapes) by the
# folder reader; should one still reach the manifest, its bytes are kept rather than aborting the run
NAME_ERRORS = "surrogateescape"


class PrepareConfigMismatch(RuntimeError):
    """A resumed run asks for settings different from those the existing crops were made with."""


# ----------------------------------------------------------------------------------------------
# recipes (data_modules/*.yaml)
# ----------------------------------------------------------------------------------------------
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


def _expand(value: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` from the environment, then ``~``."""
    out = _VAR.sub(lambda m: os.environ.get(m["name"]) or (m["default"] or ""), value)
    return os.path.expanduser(out)


def load_recipe(path: str | Path) -> dict[str, Any]:
    """A dataset recipe (``data_modules/<name>.yaml``) as a dict, with ``${VAR:-default}`` expanded.

    Relative ``data_dir`` / ``prepared_dir`` are left as written (relative to the working
    directory, normally the repository root); :func:`resolve_path` applies that rule.
    """
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dataset recipe must be a mapping, got {type(data).__name__}")
    for key in ("data_dir", "prepared_dir", "labels_csv", "model_dir"):
        if isinstance(data.get(key), str):
            data[key] = _expand(data[key])
    return data


def resolve_path(value: str | Path) -> Path:
    """A relative path from a recipe: relative to the working directory if it exists there,
    else to the repository root."""
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    alt = REPO_ROOT / p
    return alt if alt.exists() else p


# ----------------------------------------------------------------------------------------------
# manifest I/O
# ----------------------------------------------------------------------------------------------
def _read_partial_manifest(path: Path) -> pd.DataFrame:
    """Manifest rows written so far; a torn last line (killed mid-write) is dropped."""
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=CORE_COLUMNS)
    text = path.read_text(encoding="utf-8", errors=NAME_ERRORS)
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if not text.strip():
        return pd.DataFrame(columns=CORE_COLUMNS)
    import io

    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    if "status" not in df.columns or "source" not in df.columns:
        raise PrepareConfigMismatch(f"{path} is not a kssgan manifest (columns {list(df.columns)})")
    df = df[df["status"].isin(["ok", "skipped"])]
    return df.drop_duplicates("source", keep="last").reset_index(drop=True)


def _append_rows(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=columns, dtype=object)  # object: ints stay ints next to blanks
    new = not path.is_file() or path.stat().st_size == 0
    text = frame.to_csv(index=False, header=new, lineterminator="\n")
    with open(path, "a", encoding="utf-8", errors=NAME_ERRORS) as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors=NAME_ERRORS)
    tmp.replace(path)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "x"


def _crop_name(source: str, identity: str) -> str:
    stem = _safe_name(source.replace("/", "__"))
    return f"crops/{_safe_name(identity)}/{stem}.png"


def _load_embeddings(out: Path) -> dict[str, np.ndarray]:
    found: dict[str, np.ndarray] = {}
    files = [out / "embeddings.npz"] if (out / "embeddings.npz").is_file() else []
    files += sorted((out / ".parts").glob("emb_*.npz")) if (out / ".parts").is_dir() else []
    for f in files:
        try:
            with np.load(f, allow_pickle=False) as z:
                for c, e in zip(z["crop"].tolist(), z["embedding"], strict=True):
                    found[str(c)] = np.asarray(e, np.float32)
        except (OSError, ValueError, KeyError):  # a part torn by a kill: its rows are redone
            continue
    return found


def _save_npz_atomic(path: Path, crops: Sequence[str], emb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # plain open(): normal permissions
    with open(tmp, "wb") as fh:
        np.savez(fh, crop=np.asarray(list(crops), dtype=str), embedding=np.asarray(emb, np.float32))
    os.replace(tmp, path)


# ----------------------------------------------------------------------------------------------
# the work
# ----------------------------------------------------------------------------------------------
@dataclass
class _Timer:
    load: float = 0.0
    detect: float = 0.0
    align: float = 0.0
    embed: float = 0.0
    write: float = 0.0


def _process_chunk(
    rows: list[dict[str, Any]],
    raw_root: Path,
    out: Path,
    detector: Any,
    recognizer: Any,
    image_size: int,
    margin: float,
    min_face: float,
    timer: _Timer,
) -> tuple[list[dict[str, Any]], list[str], np.ndarray]:
    """Manifest rows, crop names and embeddings for one chunk of reader rows."""
    import cv2

    from kssgan.data.readers.image_io import ImageLoadError, load_image
    from kssgan.faces.align import align_faces
    from kssgan.faces.detect import select_face

    results: list[dict[str, Any]] = []
    keep_images, keep_lms, keep_rows = [], [], []
    for row in rows:
        rec = dict(row)
        rec.update(status="skipped", crop="", reason="", det_score="")
        t0 = time.perf_counter()
        try:
            image, notes = load_image(raw_root / row["source"])
        except ImageLoadError as err:
            timer.load += time.perf_counter() - t0
            rec["reason"] = err.reason
            results.append(rec)
            continue
        t1 = time.perf_counter()
        timer.load += t1 - t0
        rec["height"], rec["width"] = image.shape[:2]
        dets = detector.detect(image)
        timer.detect += time.perf_counter() - t1
        face, n = select_face(dets, image.shape)
        rec["n_faces"] = n
        if n > 1:
            notes.append(f"several_faces:{n}")
        if face is None:
            rec["reason"] = ";".join(["no_face", *notes])
            results.append(rec)
            continue
        rec["det_score"] = round(face.score, 4)
        rec["face_size"] = round(face.size, 1)
        for i, (x, y) in enumerate(face.landmarks):
            rec[f"lm{i}_x"], rec[f"lm{i}_y"] = round(float(x), 2), round(float(y), 2)
        if face.size < min_face:
            rec["reason"] = ";".join([f"tiny_face:{face.size:.0f}px", *notes])
            results.append(rec)
            continue
        if not np.all(np.isfinite(face.landmarks)):
            rec["reason"] = ";".join(["bad_landmarks", *notes])
            results.append(rec)
            continue
        rec["reason"] = ";".join(notes)
        keep_images.append(image)
        keep_lms.append(face.landmarks)
        keep_rows.append(rec)
        results.append(rec)

    crops_out: list[str] = []
    emb = np.zeros((0, getattr(recognizer, "dim", 0)), np.float32)
    if keep_rows:
        t0 = time.perf_counter()
        crops = align_faces(keep_images, keep_lms, image_size, margin=margin)
        rec_crops = align_faces(keep_images, keep_lms, 112, margin=0.0)
        t1 = time.perf_counter()
        timer.align += t1 - t0
        emb = recognizer.embed(rec_crops)
        t2 = time.perf_counter()
        timer.embed += t2 - t1
        for rec, crop in zip(keep_rows, crops, strict=True):
            name = _crop_name(rec["source"], rec["identity"])
            path = out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), crop):
                raise OSError(f"could not write {path}")
            rec["crop"], rec["status"] = name, "ok"
            crops_out.append(name)
        timer.write += time.perf_counter() - t2
    return results, crops_out, emb


def _progress(total: int, enabled: bool):
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]prepare[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
        refresh_per_second=2,  # a slow refresh thread: it competes with OpenCV's workers on small CPUs
    )


def prepare_dataset(
    raw_root: str | Path,
    out_dir: str | Path,
    reader: str = "folder",
    image_size: int = 128,
    detector: str = "yunet",
    recogniser: str = "sface",
    k: int = 3,
    grouping_method: str = "mdav",
    seed: int = 0,
    grouping_stratify: str | None = None,
    model_dir: str | Path | None = None,
    reader_options: Mapping[str, Any] | None = None,
    margin: float = 0.0,
    min_face: float = 24.0,
    det_score_threshold: float = 0.6,
    chunk_size: int = 32,
    device: str = "cpu",
    limit: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    labels: Mapping[str, Any] | None = None,
    name: str | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Prepare ``raw_root`` into ``out_dir`` and return the summary (also saved in prepare.json).

    ``reader_options`` go to the reader (e.g. ``labels_csv``, ``angles``, ``protocol``,
    ``max_identities``); ``limit`` keeps the first n reader rows (for benchmarks and tests).
    ``margin`` > 0 zooms the crops out (``0`` = exact ArcFace framing, what the recognisers want).
    Raises :class:`~kssgan.data.readers.DatasetLayoutError` for a wrong layout,
    :class:`PrepareConfigMismatch` when resuming with different crop settings (use a new
    ``out_dir`` or ``overwrite=True``), and :class:`~kssgan.data.grouping.GroupingError` when fewer
    than k identities have a usable image (the manifest, crops and embeddings are kept; use
    :func:`regroup` with a smaller k).
    """
    from kssgan.data.readers import get_reader
    from kssgan.faces.align import template
    from kssgan.faces.detect import get_detector
    from kssgan.faces.recognize import get_recognizer

    raw_root = Path(raw_root).expanduser()
    out = Path(out_dir).expanduser()
    started = time.perf_counter()
    settings = {
        "reader": reader,
        "image_size": int(image_size),
        "margin": float(margin),
        "detector": detector,
        "recogniser": recogniser,
        "min_face": float(min_face),
        "det_score_threshold": float(det_score_threshold),
    }
    opts = dict(reader_options or {})
    opts.setdefault("seed", seed)
    table = get_reader(reader)(raw_root, **opts)  # DatasetLayoutError before touching out/
    reader_skipped = list(table.attrs.get("skipped", []))
    if limit is not None:
        table = table.head(int(limit)).reset_index(drop=True)
    attr_cols = [c for c in table.columns if c not in ("source", "identity", "split")]
    columns = CORE_COLUMNS + EXTRA_COLUMNS + attr_cols

    manifest_path, info_path = out / "manifest.csv", out / "prepare.json"
    if overwrite and out.exists():
        import shutil

        for sub in ("crops", ".parts"):
            shutil.rmtree(out / sub, ignore_errors=True)
        for f in ("manifest.csv", "embeddings.npz", "groups.json", "prepare.json"):
            (out / f).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)
    selection = dataset_selection(raw_root, opts, limit)
    if info_path.is_file():
        old_info = json.loads(info_path.read_text())
        old = old_info.get("settings", {})
        diff = {
            key: (old.get(key), settings[key]) for key in FINGERPRINT_KEYS if key in old and old[key] != settings[key]
        }
        if diff:
            raise PrepareConfigMismatch(
                f"{out} was prepared with different settings {diff} (old, new); "
                "use another output folder or --overwrite"
            )
        other = selection_difference(old_info, selection)
        if other:
            raise PrepareConfigMismatch(
                f"{out} holds a different dataset ({other}); use another output folder or --overwrite"
            )
    info: dict[str, Any] = {"status": "running", "settings": settings, **selection}
    _atomic_write_text(info_path, json.dumps(info, indent=1))

    done = _read_partial_manifest(manifest_path)
    header = list(done.columns)
    if not done.empty:  # keep the existing column order, add any new attribute columns
        columns = header + [c for c in columns if c not in header]
    embeddings = _load_embeddings(out)
    # an ok row whose embedding never reached disk is redone
    lost = done[(done["status"] == "ok") & ~done["crop"].isin(list(embeddings))]
    done = done.drop(lost.index)
    torn = manifest_path.is_file() and not manifest_path.read_bytes().endswith(b"\n")
    if done.empty:
        manifest_path.unlink(missing_ok=True)  # a header alone (or a torn first line): start it afresh
    elif not lost.empty or torn or header != columns:
        # rewrite what is kept (atomically) so that appended rows match the header
        _atomic_write_text(manifest_path, done.reindex(columns=columns).to_csv(index=False, lineterminator="\n"))
    done_sources = set(done["source"])
    pending = [r for r in table.to_dict("records") if r["source"] not in done_sources]
    resumed = len(table) - len(pending)

    det = get_detector(detector, model_dir=model_dir, score_threshold=det_score_threshold, device=device)
    rec = get_recognizer(recogniser, model_dir=model_dir, device=device)
    timer = _Timer()
    parts = out / ".parts"
    part_no = len(list(parts.glob("emb_*.npz"))) if parts.is_dir() else 0
    work_start = time.perf_counter()
    processed = 0
    with _progress(len(table), progress and not quiet) as bar:
        task = bar.add_task("prepare", total=len(table), completed=resumed, rate="")
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start : start + chunk_size]
            rows, crops, emb = _process_chunk(chunk, raw_root, out, det, rec, image_size, margin, min_face, timer)
            if crops:
                while (parts / f"emb_{part_no:06d}.npz").exists():
                    part_no += 1
                _save_npz_atomic(parts / f"emb_{part_no:06d}.npz", crops, emb)
                embeddings.update(zip(crops, emb, strict=True))
                part_no += 1
            _append_rows(manifest_path, rows, columns)
            processed += len(chunk)
            rate = processed / max(time.perf_counter() - work_start, 1e-9)
            bar.update(task, advance=len(chunk), rate=f"{rate:.1f} img/s")
    work_seconds = time.perf_counter() - work_start

    # -- consolidate: the final manifest (plus the reader's own skips), embeddings.npz -----------
    manifest = _read_partial_manifest(manifest_path)
    # rows of an earlier run over a different selection (e.g. another max_identities) are dropped
    manifest = manifest[manifest["source"].isin(set(table["source"]))]
    known = set(manifest["source"])
    extra = [
        {"source": s, "identity": "", "split": "", "status": "skipped", "reason": why, "crop": ""}
        for s, why in reader_skipped
        if s not in known
    ]
    if extra:
        manifest = pd.concat([manifest, pd.DataFrame(extra)], ignore_index=True)
    manifest = manifest.reindex(columns=columns).fillna("")
    order = {s: i for i, s in enumerate(table["source"])}
    manifest["_o"] = manifest["source"].map(lambda s: order.get(s, len(order)))
    manifest = manifest.sort_values(["_o", "source"], kind="stable").drop(columns="_o").reset_index(drop=True)
    _atomic_write_text(manifest_path, manifest.to_csv(index=False, lineterminator="\n"))
    ok = manifest[manifest["status"] == "ok"]
    missing_emb = [c for c in ok["crop"] if c not in embeddings]
    if missing_emb:  # cannot happen unless files were deleted by hand
        raise RuntimeError(
            f"{len(missing_emb)} ok crops lack an embedding (e.g. {missing_emb[0]}); re-run with --overwrite"
        )
    emb_matrix = np.stack([embeddings[c] for c in ok["crop"]]) if len(ok) else np.zeros((0, rec.dim), np.float32)
    _save_npz_atomic(out / "embeddings.npz", list(ok["crop"]), emb_matrix)
    if parts.is_dir():
        for f in parts.glob("*.npz*"):
            f.unlink(missing_ok=True)
        parts.rmdir()

    # -- summary -------------------------------------------------------------------------------
    reasons = Counter()
    for status, reason in zip(manifest["status"], manifest["reason"], strict=True):
        if status == "skipped":
            reasons[str(reason).split(";")[0].split(":")[0]] += 1
    notes = Counter(re.sub(r":\d+$", "", n) for r in ok["reason"] for n in str(r).split(";") if n)
    attributes = {
        c: sorted({str(v) for v in ok[c] if str(v) != ""})
        for c in attr_cols
        if c in ok.columns and ok[c].nunique() <= 64
    }
    summary: dict[str, Any] = {
        "status": "done",
        "name": name or raw_root.name,
        "settings": settings,
        **selection,
        "template": template(image_size, margin).round(4).tolist(),
        "landmark_order": ["right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth"],
        "recogniser_dim": int(rec.dim),
        "recogniser_threshold": float(rec.threshold),
        "recogniser_metric": rec.metric,
        "counts": {
            "sources": len(manifest),
            "ok": len(ok),
            "skipped": int((manifest["status"] == "skipped").sum()),
            "identities": int(ok["identity"].nunique()),
            "by_split": {s: int(n) for s, n in ok["split"].value_counts().sort_index().items()},
            "skipped_by_reason": dict(sorted(reasons.items())),
            "notes_on_ok": dict(sorted(notes.items())),
            "resumed": resumed,
            "processed_this_run": processed,
        },
        "attributes": attributes,
        "labels": dict(labels or {}),
        "timing": {
            "seconds": round(work_seconds, 3),
            "images_per_s": round(processed / work_seconds, 2) if processed and work_seconds > 0 else None,
            "stage_seconds": {k_: round(v, 3) for k_, v in vars(timer).items()},
        },
    }

    # -- k-Same grouping -----------------------------------------------------------------------
    group_error: GroupingError | None = None
    try:
        assignment = _fit_groups(ok, emb_matrix, k, grouping_method, seed, recogniser, grouping_stratify)
        assignment.save(out / "groups.json")
        summary["groups"] = {
            "k": k,
            "method": grouping_method,
            "num_groups": assignment.num_groups,
            "group_sizes": assignment.group_sizes,
            "audit": assignment.audit() or "ok",
        }
    except GroupingError as err:
        group_error = err
        (out / "groups.json").unlink(missing_ok=True)
        summary["groups"] = {"k": k, "method": grouping_method, "error": str(err)}
    summary["timing"]["total_seconds"] = round(time.perf_counter() - started, 3)
    _atomic_write_text(info_path, json.dumps(summary, indent=1))
    if not quiet:
        print_summary(summary, manifest)
    if group_error is not None:
        raise group_error
    return summary


def dataset_selection(raw_root: Path, reader_options: Mapping[str, Any], limit: int | None) -> dict[str, Any]:
    """What defines the dataset in a prepared folder besides the crop settings: raw root and selection."""
    simple = {k: v for k, v in reader_options.items() if isinstance(v, str | int | float | bool | list | None)}
    return {
        "raw_root": str(raw_root.resolve()),
        "reader_options": json.loads(json.dumps(simple)),
        "limit": None if limit is None else int(limit),
    }


def selection_difference(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    """One phrase naming how ``new`` differs from the dataset recorded in ``old`` (prepare.json), or ''."""
    if "raw_root" in old and old["raw_root"] != new["raw_root"]:
        return f"raw root {old['raw_root']}, not {new['raw_root']}"
    if "limit" in old and old["limit"] != new["limit"]:
        return f"--limit {old['limit']}, not {new['limit']}"
    if "reader_options" in old:
        a, b = old["reader_options"], new["reader_options"]
        changed = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
        if changed:
            return "reader options " + ", ".join(f"{k}={a.get(k)!r}, not {b.get(k)!r}" for k in changed)
    return ""


def _fit_groups(
    ok: pd.DataFrame, emb: np.ndarray, k: int, method: str, seed: int, recogniser: str, stratify: str | None = None
) -> GroupAssignment:
    """Group the identities the model trains on (those with a ``train`` image), and only those: no
    group may exist that the model never saw. Identities seen only in val/test (the identity-disjoint
    protocol) are open-set: they get their nearest group at use (best effort, no k guarantee)."""
    if len(ok) == 0:
        raise GroupingError(f"no usable face in the dataset, cannot build k={k} groups")
    train = (ok["split"].astype(str) == "train").to_numpy() if "split" in ok.columns else np.ones(len(ok), bool)
    if not train.any():
        raise GroupingError(f"no usable face in the train split, cannot build k={k} groups")
    ok, emb = ok[train], np.asarray(emb)[train]
    means = KSameGrouping.mean_embeddings(list(ok["identity"].astype(str)), emb)
    strata = None
    if stratify:
        if stratify not in ok.columns:
            raise GroupingError(
                f"grouping.stratify: {stratify!r} is not a manifest column; columns: {list(ok.columns)}"
            )
        strata = dict(zip(ok["identity"].astype(str), ok[stratify].astype(str), strict=True))
    grouping = KSameGrouping(k=int(k), method=method, seed=int(seed), recogniser=recogniser)
    return grouping.fit(means, strata, stratify)


def regroup(
    prepared_dir: str | Path,
    k: int,
    method: str = "mdav",
    seed: int = 0,
    out: str | Path | None = None,
    stratify: str | None = None,
) -> GroupAssignment:
    """Rebuild the k-Same grouping of a prepared folder from ``embeddings.npz`` (no detection).

    Writes ``out`` (default ``<prepared>/groups.json``; pass e.g. ``groups_k5.json`` to keep
    several) and returns the assignment. Same identities and per-identity mean embeddings as
    :func:`prepare_dataset`, so ``regroup(d, k)`` equals what ``prepare`` with that k writes.
    """
    root = Path(prepared_dir)
    manifest = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False, encoding_errors=NAME_ERRORS)
    ok = manifest[manifest["status"] == "ok"].reset_index(drop=True)
    with np.load(root / "embeddings.npz", allow_pickle=False) as z:
        lookup = dict(zip(z["crop"].tolist(), z["embedding"], strict=True))
    missing = [c for c in ok["crop"] if c not in lookup]
    if missing:
        raise GroupingError(f"{len(missing)} ok crops have no embedding in embeddings.npz (e.g. {missing[0]})")
    emb = np.stack([lookup[c] for c in ok["crop"]]) if len(ok) else np.zeros((0, 1), np.float32)
    info_path = root / "prepare.json"
    info = json.loads(info_path.read_text()) if info_path.is_file() else {}
    recogniser = info.get("settings", {}).get("recogniser", "unknown")
    assignment = _fit_groups(ok, emb, k, method, seed, recogniser, stratify)
    target = Path(out) if out is not None else root / "groups.json"
    if not target.is_absolute() and target.parent == Path("."):
        target = root / target
    assignment.save(target)
    if target == root / "groups.json" and info:
        info["groups"] = {
            "k": k,
            "method": method,
            "num_groups": assignment.num_groups,
            "group_sizes": assignment.group_sizes,
            "audit": assignment.audit() or "ok",
        }
        _atomic_write_text(info_path, json.dumps(info, indent=1))
    return assignment


def identity_groups(
    prepared_dir: str | Path, groups_path: str | Path | None = None, identities: Sequence[str] | None = None
) -> dict[str, tuple[int, str]]:
    """``identity -> (group, how)`` with ``how`` = ``closed`` (in groups.json, k-anonymous) or
    ``nearest`` (an identity outside the grouping, mapped to the nearest centroid of its mean
    embedding: best effort, no guarantee). ``identities`` defaults to every ok identity."""
    root = Path(prepared_dir)
    groups = GroupAssignment.load(groups_path or root / "groups.json")
    manifest = pd.read_csv(root / "manifest.csv", dtype=str, keep_default_na=False, encoding_errors=NAME_ERRORS)
    ok = manifest[manifest["status"] == "ok"]
    wanted = sorted(set(ok["identity"])) if identities is None else [str(i) for i in identities]
    out: dict[str, tuple[int, str]] = {}
    unseen = [i for i in wanted if i not in groups.identity_to_group]
    for i in wanted:
        if i in groups.identity_to_group:
            out[i] = (groups.identity_to_group[i], "closed")
    if unseen:
        with np.load(root / "embeddings.npz", allow_pickle=False) as z:
            lookup = dict(zip(z["crop"].tolist(), z["embedding"], strict=True))
        rows = ok[ok["identity"].isin(unseen)]
        means = KSameGrouping.mean_embeddings(list(rows["identity"]), np.stack([lookup[c] for c in rows["crop"]]))
        for i, e in means.items():
            out[i] = (groups.nearest_group(e), "nearest")
    return out


# ----------------------------------------------------------------------------------------------
# reporting
# ----------------------------------------------------------------------------------------------
def print_summary(summary: Mapping[str, Any], manifest: pd.DataFrame | None = None) -> None:
    """Rich tables: counts by status and reason, splits, groups, throughput (to stderr)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    c = summary["counts"]
    t = Table(title=f"kssgan prepare: {summary.get('name', '')}", show_lines=False)
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("source files", str(c["sources"]))
    t.add_row("[green]ok[/] (aligned crops)", str(c["ok"]))
    t.add_row("[yellow]skipped[/]", str(c["skipped"]))
    for reason, n in c["skipped_by_reason"].items():
        t.add_row(f"  skipped: {reason}", str(n))
    for note, n in c.get("notes_on_ok", {}).items():
        t.add_row(f"  ok, note: {note}", str(n))
    t.add_row("identities", str(c["identities"]))
    for split, n in c["by_split"].items():
        t.add_row(f"  split {split}", str(n))
    g = summary.get("groups", {})
    if "error" in g:
        t.add_row("[red]groups[/]", g["error"])
    elif g:
        t.add_row(f"groups (k={g['k']}, {g['method']})", f"{g['num_groups']} sizes {sorted(set(g['group_sizes']))}")
        t.add_row("audit", "ok" if g["audit"] == "ok" else "; ".join(g["audit"]))
    tm = summary["timing"]
    if tm.get("images_per_s"):
        t.add_row("throughput", f"{tm['images_per_s']:.1f} images/s")
    if c.get("resumed"):
        t.add_row("already done (resumed)", str(c["resumed"]))
    console.print(t)
    if manifest is not None:
        bad = manifest[manifest["status"] == "skipped"]
        if len(bad):
            console.print(f"skipped files ({len(bad)}), first ones:")
            for s, r in list(zip(bad["source"], bad["reason"], strict=True))[:10]:
                console.print(f"  {printable(s)}: {r}", markup=False)


# ----------------------------------------------------------------------------------------------
# benchmark
# ----------------------------------------------------------------------------------------------
def bench_prepare(n_images: int = 64, raw_root: str | Path | None = None, reader: str = "folder") -> dict[str, Any]:
    """Throughput of a fresh ``prepare`` run on the first ``n_images`` of Yale (or ``raw_root``).

    Returns ``{"images", "seconds", "images_per_s", "stage_seconds", "device", "dataset"}``; when
    no data is found it returns ``{"skipped": reason}`` instead of raising.
    """
    import torch

    if raw_root is None:
        shared = Path(os.environ.get("KSSGAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "datasets"))
        raw_root = shared / "yale"
    raw_root = Path(raw_root)
    if not raw_root.is_dir():
        return {"skipped": f"no data at {raw_root} (set KSSGAN_SHARED_DATA)"}
    with tempfile.TemporaryDirectory(prefix="kssgan-bench-") as tmp:
        s = prepare_dataset(raw_root, tmp, reader=reader, k=1, limit=n_images, progress=False, quiet=True)
    tm = s["timing"]
    return {
        "images": s["counts"]["processed_this_run"],
        "ok": s["counts"]["ok"],
        "seconds": tm["seconds"],
        "images_per_s": tm["images_per_s"],
        "stage_seconds": tm["stage_seconds"],
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "dataset": str(raw_root),
    }


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kssgan prepare",
        description="Detect, align and crop faces, embed them and build k-Same groups (a prepared dataset).",
        epilog=(
            "examples:\n"
            "  kssgan prepare --dataset folder --data-dir ../shared/datasets/yale --k 3\n"
            "  kssgan prepare --config data_modules/orl.yaml\n"
            "  kssgan prepare --regroup outputs/prepared/yale --k 5 --groups-out groups_k5.json"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--config", help="dataset recipe YAML (data_modules/<name>.yaml); flags override it")
    p.add_argument("--dataset", help="recipe name (data_modules/<name>.yaml) or a reader: folder, rafd, celeba")
    p.add_argument("--data-dir", help="raw dataset root")
    p.add_argument("--out", help="prepared folder (default: the recipe's prepared_dir or outputs/prepared/<name>)")
    p.add_argument("--reader", choices=["folder", "rafd", "celeba"], help="reader (default from the recipe)")
    p.add_argument("--labels-csv", help="folder reader: labels.csv relative to the data dir")
    p.add_argument("--protocol", choices=["closed_set", "identity_disjoint"], help="split protocol")
    p.add_argument("--max-identities", type=int, help="keep only the first N identities (subsets)")
    p.add_argument(
        "--allow-outside-root", action="store_true", help="folder reader: read labels.csv paths outside --data-dir"
    )
    p.add_argument("--limit", type=int, help="process only the first N images")
    p.add_argument("--image-size", type=int)
    p.add_argument("--margin", type=float, help="zoom out the crop (0 = ArcFace framing)")
    p.add_argument("--detector", choices=["yunet", "insightface"])
    p.add_argument("--recogniser", "--recognizer", dest="recogniser", choices=["sface", "dlib", "insightface"])
    p.add_argument("--model-dir", help="folder with insightface ONNX files (never downloaded)")
    p.add_argument("--device", default=None, choices=["cpu", "cuda"])
    p.add_argument("--k", type=int)
    p.add_argument("--grouping", choices=["mdav", "random"], help="grouping method")
    p.add_argument("--stratify", metavar="COLUMN", help="no group mixes values of this attribute (e.g. gender)")
    p.add_argument("--seed", type=int)
    p.add_argument("--min-face", type=float, help="smallest face (box side, px) kept")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--regroup", metavar="PREPARED_DIR", help="only rebuild groups.json of a prepared folder")
    p.add_argument("--groups-out", help="with --regroup: output file (default groups.json in the folder)")
    return p


def _recipe_for(args: argparse.Namespace) -> dict[str, Any]:
    if args.config:
        return load_recipe(args.config)
    if args.dataset:
        for cand in (
            Path("data_modules") / f"{args.dataset}.yaml",
            REPO_ROOT / "data_modules" / f"{args.dataset}.yaml",
        ):
            if cand.is_file():
                return load_recipe(cand)
        if args.dataset in ("folder", "rafd", "celeba"):
            return {"name": args.dataset, "reader": args.dataset}
        raise SystemExit(f"kssgan prepare: no recipe data_modules/{args.dataset}.yaml and not a reader name")
    return {}


def main(argv: list[str] | None = None) -> int:
    """``kssgan prepare``; returns a process exit code (0 ok, 1 grouping failed, 2 bad input)."""
    from kssgan.data.readers import DatasetLayoutError

    args = _parser().parse_args(argv)
    if args.regroup:
        if args.k is None:
            print("kssgan prepare --regroup needs --k", file=sys.stderr)
            return 2
        try:
            a = regroup(args.regroup, args.k, args.grouping or "mdav", args.seed or 0, args.groups_out, args.stratify)
        except (GroupingError, FileNotFoundError) as err:
            print(f"kssgan prepare: {err}", file=sys.stderr)
            return 1
        print(
            json.dumps({"k": a.k, "num_groups": a.num_groups, "group_sizes": a.group_sizes, "audit": a.audit() or "ok"})
        )
        return 0
    recipe = _recipe_for(args)
    data_dir = args.data_dir or recipe.get("data_dir")
    if not data_dir:
        print("kssgan prepare: give --data-dir or a recipe with data_dir", file=sys.stderr)
        return 2
    data_dir = resolve_path(data_dir) if not args.data_dir else Path(args.data_dir).expanduser()
    reader = args.reader or recipe.get("reader", "folder")
    generic = recipe.get("name") in (None, "folder", "rafd", "celeba")
    name = Path(data_dir).resolve().name if (args.data_dir and generic) else recipe.get("name") or Path(data_dir).name
    out = (
        args.out
        or (recipe.get("prepared_dir") if not (args.data_dir and generic) else None)
        or f"outputs/prepared/{name}"
    )
    grouping = recipe.get("grouping") or {}
    reader_options = dict(recipe.get("reader_options") or {})
    for key in ("labels_csv", "protocol", "angles", "gazes", "expressions", "attributes", "max_identities"):
        if key in recipe and key not in reader_options:
            reader_options[key] = recipe[key]
    if args.labels_csv:
        reader_options["labels_csv"] = args.labels_csv
    if args.protocol:
        reader_options["protocol"] = args.protocol
    if args.max_identities:
        reader_options["max_identities"] = args.max_identities
    if args.allow_outside_root:
        reader_options["allow_outside_root"] = True
    model_dir = args.model_dir or recipe.get("model_dir")
    try:
        prepare_dataset(
            data_dir,
            out,
            reader=reader,
            image_size=args.image_size or int(recipe.get("image_size", 128)),
            detector=args.detector or recipe.get("detector", "yunet"),
            recogniser=args.recogniser or recipe.get("recogniser", "sface"),
            k=args.k or int(recipe.get("k", 3)),
            grouping_method=args.grouping or grouping.get("method", "mdav"),
            seed=args.seed if args.seed is not None else int(grouping.get("seed", 0)),
            grouping_stratify=args.stratify or grouping.get("stratify"),
            model_dir=model_dir,
            reader_options=reader_options,
            margin=args.margin if args.margin is not None else float(recipe.get("margin", 0.0)),
            min_face=args.min_face if args.min_face is not None else float(recipe.get("min_face", 24)),
            device=args.device or recipe.get("device", "cpu"),
            limit=args.limit,
            progress=not args.no_progress,
            overwrite=args.overwrite,
            labels=recipe.get("labels"),
            name=name,
        )
    except DatasetLayoutError as err:
        print(f"kssgan prepare: {err}", file=sys.stderr)
        return 2
    except (PrepareConfigMismatch, FileNotFoundError) as err:
        print(f"kssgan prepare: {err}", file=sys.stderr)
        return 2
    except GroupingError as err:
        print(
            f"kssgan prepare: grouping failed: {err} (crops and manifest are kept; use --regroup with a smaller k)",
            file=sys.stderr,
        )
        return 1
    print(f"prepared dataset written to {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
