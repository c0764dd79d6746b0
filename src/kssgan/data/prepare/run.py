"""``prepare_dataset``: the whole ``kssgan prepare`` run over one dataset (see the package doc)."""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from kssgan.data.grouping import GroupingError
from kssgan.data.prepare import processing
from kssgan.data.prepare.grouping_step import fit_groups, groups_summary
from kssgan.data.prepare.recipe import CropSettings
from kssgan.data.prepare.report import print_summary
from kssgan.data.prepare.store import (
    CORE_COLUMNS,
    EXTRA_COLUMNS,
    JournalWriter,
    PrepareConfigMismatch,
    atomic_write_text,
    dataset_selection,
    embedded_crops,
    embedding_dim,
    embedding_matrix,
    finish_manifest,
    read_partial_manifest,
    release_free_memory,
    save_npz_atomic,
    selection_difference,
)
from kssgan.data.prepare.workers import WorkerSpec, chunk_size_for, default_workers, peak_rss_mb, run_chunks


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
    grouping_kind: Mapping[str, float] | None = None,
    model_dir: str | Path | None = None,
    reader_options: Mapping[str, Any] | None = None,
    margin: float = 0.0,
    min_face: float = 24.0,
    det_score_threshold: float = 0.6,
    chunk_size: int | None = None,
    device: str = "cpu",
    limit: int | None = None,
    progress: bool = True,
    overwrite: bool = False,
    labels: Mapping[str, Any] | None = None,
    name: str | None = None,
    quiet: bool = False,
    workers: int | None = None,
    ray: bool | None = None,
    ray_address: str | None = None,
) -> dict[str, Any]:
    """Prepare ``raw_root`` into ``out_dir`` and return the summary (also saved in prepare.json).

    ``reader_options`` go to the reader (e.g. ``labels_csv``, ``angles``, ``protocol``,
    ``max_identities``, ``open_set_fraction``: that share of the identities held out of training and
    grouping as strangers, split ``stranger``); ``limit`` keeps the first n reader rows (for benchmarks and tests).
    ``margin`` > 0 zooms the crops out (``0`` = exact ArcFace framing, what the recognisers want).
    ``workers`` processes do the per-photo work (default: this machine's cores; 1 = in this
    process); ``ray`` (default: whether ``RAY_ADDRESS`` or ``ray_address`` is set) runs it as Ray
    tasks instead (:mod:`.workers`). The output is the same, byte for byte, whichever is used.
    ``chunk_size`` photos go to a worker at a time (default: about 16 chunks per worker, 4 … 32).
    Raises :class:`~kssgan.data.readers.DatasetLayoutError` for a wrong layout,
    :class:`PrepareConfigMismatch` when resuming with different crop settings (use a new
    ``out_dir`` or ``overwrite=True``), and :class:`~kssgan.data.grouping.GroupingError` when fewer
    than k identities have a usable image (the manifest, crops and embeddings are kept; use
    :func:`regroup` with a smaller k).
    """
    from kssgan.data.readers import get_reader, hold_out_strangers
    from kssgan.faces.align import template

    raw_root = Path(raw_root).expanduser()
    out = Path(out_dir).expanduser()
    started = time.perf_counter()
    crop = CropSettings(
        reader, int(image_size), float(margin), detector, recogniser, float(min_face), float(det_score_threshold)
    )
    settings = crop.to_dict()
    opts = dict(reader_options or {})
    opts.setdefault("seed", seed)
    open_set_fraction = float(opts.pop("open_set_fraction", 0.0) or 0.0)
    table = get_reader(reader)(raw_root, **opts)  # DatasetLayoutError before touching out/
    table = hold_out_strangers(table, open_set_fraction, int(opts["seed"]))
    if open_set_fraction:
        opts["open_set_fraction"] = open_set_fraction  # part of what defines the prepared folder
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
        diff = crop.differences(old_info.get("settings", {}))
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
    atomic_write_text(info_path, json.dumps(info, indent=1))

    done = read_partial_manifest(manifest_path)
    header = list(done.columns)
    if not done.empty:  # keep the existing column order, add any new attribute columns
        columns = header + [c for c in columns if c not in header]
    embedded = embedded_crops(out)
    # an ok row whose embedding never reached disk is redone
    lost = done[(done["status"] == "ok") & ~done["crop"].isin(embedded)]
    done = done.drop(lost.index)
    torn = manifest_path.is_file() and not manifest_path.read_bytes().endswith(b"\n")
    if done.empty:
        manifest_path.unlink(missing_ok=True)  # a header alone (or a torn first line): start it afresh
    elif not lost.empty or torn or header != columns:
        # rewrite what is kept (atomically) so that appended rows match the header
        atomic_write_text(manifest_path, done.reindex(columns=columns).to_csv(index=False, lineterminator="\n"))
    done_sources = set(done["source"])
    resumed = int(table["source"].isin(done_sources).sum())
    n_pending = len(table) - resumed
    del done, lost

    ray_address = ray_address or os.environ.get("RAY_ADDRESS") or None
    use_ray = bool(ray_address) if ray is None else bool(ray)
    n_workers = default_workers() if workers is None else max(1, int(workers))
    chunk = int(chunk_size) if chunk_size else chunk_size_for(n_pending, n_workers)
    spec = WorkerSpec(
        str(raw_root.resolve()),  # absolute: Ray workers run in their own folders
        int(image_size),
        float(margin),
        float(min_face),
        detector,
        recogniser,
        float(det_score_threshold),
        None if model_dir is None else str(model_dir),
        device,
    )
    backend = "ray" if use_ray else ("inline" if n_workers == 1 else "processes")
    del embedded  # the driver holds no per-photo data while it runs
    release_free_memory()
    timer = processing.Timer()
    journal = JournalWriter(out, manifest_path, columns)
    work_start, cpu_start = time.perf_counter(), time.process_time()
    processed = 0
    worker_rss: dict[int, float] = {}
    nodes: set[str] = set()
    with processing.progress_bar(len(table), progress and not quiet) as bar:
        task = bar.add_task("prepare", total=len(table), completed=resumed, rate="")
        pending = _pending_chunks(table, done_sources, chunk)
        for result in run_chunks(spec, pending, n_workers, backend, ray_address, out.parent):
            t0 = time.perf_counter()
            journal.add(result.rows, result.crops, result.embeddings)
            timer.add(result.timer)
            timer.write += time.perf_counter() - t0
            if result.node:
                nodes.add(result.node)
            if result.pid:
                worker_rss[result.pid] = max(worker_rss.get(result.pid, 0.0), result.peak_rss_mb)
            processed += len(result.rows)
            rate = processed / max(time.perf_counter() - work_start, 1e-9)
            bar.update(task, advance=len(result.rows), rate=f"{rate:.1f} photos/s")
    work_seconds = time.perf_counter() - work_start
    driver_cpu = time.process_time() - cpu_start

    # -- consolidate: the final manifest (plus the reader's own skips), embeddings.npz -----------
    extra = [
        {"source": s, "identity": "", "split": "", "status": "skipped", "reason": why, "crop": ""}
        for s, why in reader_skipped
    ]
    keep = ["crop", "identity", "split", "reason"]
    kind_cols = ("age",) if (grouping_kind or {}).get("age") else ()
    keep += [c for c in (grouping_stratify, *kind_cols) if c and c in columns and c not in keep]
    finished = finish_manifest(
        manifest_path, columns, list(table["source"]), extra, keep, [c for c in attr_cols if c in columns]
    )
    ok = finished.ok
    release_free_memory()
    dim = journal.dim or embedding_dim(out) or _recogniser_dim(recogniser, model_dir)
    emb_matrix, missing_emb = embedding_matrix(out, list(ok["crop"]), dim)
    if missing_emb:  # cannot happen unless files were deleted by hand
        raise RuntimeError(
            f"{len(missing_emb)} ok crops lack an embedding (e.g. {missing_emb[0]}); re-run with --overwrite"
        )
    save_npz_atomic(out / "embeddings.npz", list(ok["crop"]), emb_matrix)
    parts = out / ".parts"
    if parts.is_dir():
        for f in parts.glob("*.npz*"):
            f.unlink(missing_ok=True)
        parts.rmdir()

    # -- summary -------------------------------------------------------------------------------
    from kssgan.faces.recognize import recogniser_class

    rec_info = recogniser_class(recogniser)
    reasons = Counter(str(r).split(";")[0].split(":")[0] for r in finished.skipped["reason"])
    notes = Counter(re.sub(r":\d+$", "", n) for r in ok["reason"] for n in str(r).split(";") if n)
    attributes = finished.attributes
    summary: dict[str, Any] = {
        "status": "done",
        "name": name or raw_root.name,
        "settings": settings,
        **selection,
        "template": template(image_size, margin).round(4).tolist(),
        "landmark_order": ["right_eye", "left_eye", "nose_tip", "right_mouth", "left_mouth"],
        "recogniser_dim": int(dim),
        "recogniser_threshold": float(rec_info.threshold),
        "recogniser_metric": rec_info.metric,
        "counts": {
            "sources": finished.sources,
            "ok": len(ok),
            "skipped": len(finished.skipped),
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
            "driver_cpu_seconds": round(driver_cpu, 3),
            "backend": backend,
            "workers": n_workers if backend != "ray" else None,
            "ray_nodes": len(nodes) if backend == "ray" else None,
            "chunk_size": chunk,
            "peak_rss_mb": {
                "driver": None,  # set after grouping: the whole run's peak
                "workers": sorted(worker_rss.values(), reverse=True) if backend != "inline" else [],
            },
        },
    }

    # -- k-Same grouping -----------------------------------------------------------------------
    group_error: GroupingError | None = None
    try:
        kind = dict(grouping_kind) if grouping_kind else None
        assignment = fit_groups(ok, emb_matrix, k, grouping_method, seed, recogniser, grouping_stratify, kind, out)
        assignment.save(out / "groups.json")
        summary["groups"] = groups_summary(assignment, k, grouping_method)
    except GroupingError as err:
        group_error = err
        (out / "groups.json").unlink(missing_ok=True)
        summary["groups"] = {"k": k, "method": grouping_method, "error": str(err)}
    summary["timing"]["total_seconds"] = round(time.perf_counter() - started, 3)
    summary["timing"]["peak_rss_mb"]["driver"] = peak_rss_mb()
    atomic_write_text(info_path, json.dumps(summary, indent=1))
    if not quiet:
        print_summary(summary, finished.skipped)
    if group_error is not None:
        raise group_error
    return summary


def _pending_chunks(
    table: pd.DataFrame, done: set[str], size: int, block: int = 4096
) -> Iterator[list[dict[str, Any]]]:
    """Reader rows not in the manifest yet, ``size`` at a time (a few thousand rows as dicts at once)."""
    chunk: list[dict[str, Any]] = []
    for start in range(0, len(table), block):
        for row in table.iloc[start : start + block].to_dict("records"):
            if row["source"] in done:
                continue
            chunk.append(row)
            if len(chunk) == size:
                yield chunk
                chunk = []
    if chunk:
        yield chunk


def _recogniser_dim(name: str, model_dir: str | Path | None) -> int:
    """The embedding width of ``name`` (loads the model only when its class does not say)."""
    from kssgan.faces.recognize import get_recognizer, recogniser_class

    return int(recogniser_class(name).dim or get_recognizer(name, model_dir=model_dir).dim)
