"""The JSON report of ``kssgan deidentify``, its console summary line and the exit status."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.deidentify.policy import EXIT_WITHHELD

REPORT_NAME = "deidentify-report.json"


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
