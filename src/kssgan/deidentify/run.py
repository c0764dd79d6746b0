"""One ``kssgan deidentify`` run: check the paths, load the model, de-identify every file, write the report."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

from kssgan.deidentify.encode import part_path
from kssgan.deidentify.files import deidentify_files
from kssgan.deidentify.inputs import check_paths, read_attributes, scan_inputs
from kssgan.deidentify.journal import JOURNAL_NAME, Journal
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions
from kssgan.deidentify.policy import ReleasePolicy
from kssgan.deidentify.recorder import Recorder
from kssgan.deidentify.report import REPORT_NAME, build_report, exit_status, summary_line

log = logging.getLogger("kssgan.deidentify")
LOG_NAME = "deidentify.log"


def _setup_log(path: Path) -> logging.Handler:
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8", errors="backslashreplace")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    return handler


def run(args: argparse.Namespace, opts: DeidentifyOptions) -> int:
    """De-identify ``args.input`` into ``args.output`` with ``opts`` (the parsed ``kssgan deidentify``
    options); the exit status of :func:`~kssgan.deidentify.report.exit_status`."""
    from kssgan.deidentify.pipeline import Deidentifier
    from kssgan.seal.release import Release

    policy = ReleasePolicy(opts.on_no_face, opts.on_still_matching)  # a bad choice fails before any work
    in_root, out_root = Path(args.input), Path(args.output)
    check_paths(in_root, out_root)
    files, passed_over = scan_inputs(in_root, out_root)  # before anything is loaded: a wrong path fails fast
    release = Release(out_root, args.rename, args.seal_to, args.ckpt, in_root if in_root.is_dir() else in_root.parent)
    files = release.order(files)
    deid = Deidentifier.from_checkpoint(args.ckpt, opts, args.backend, args.onnx, args.image_size)
    attributes = read_attributes(args.attributes, args.identity_column)
    inputs = {rel for _, rel in files}
    # an empty or unknown value of a file to release: one line, nothing done
    deid.labels.check_rows({rel: row for rel, row in attributes.items() if rel in inputs}, args.attributes)
    asked = deid.options.attribute_reference == "person" and not deid.reference_from_recipe
    if asked and opts.identity is None:  # --attribute-reference person, a photo of no known person: one line
        from kssgan.deidentify.video import is_video_path

        unknown = [rel for src, rel in files if not is_video_path(src) and not attributes.get(rel, {}).get("identity")]
        if unknown:
            raise DeidentifyError(
                f"{unknown[0]}: --attribute-reference person reads each photo against its person's photos, and "
                f"this one's person is unknown ({len(unknown)} such photo(s)): give --identity, or an identity "
                "column in --attributes"
            )
    for line in policy.warnings(opts.similarity):
        print(f"kssgan deidentify: WARNING: {line}", file=sys.stderr)
    if opts.audio == "keep":
        print(
            "kssgan deidentify: WARNING: --audio keep: released videos carry their sound, and a voice identifies "
            "a person",
            file=sys.stderr,
        )
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
        rec = Recorder(journal, release)
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
    tmp = part_path(report_path)
    tmp.write_text(json.dumps(report, indent=1))
    os.replace(tmp, report_path)
    print(summary_line(report["this_run"], report_path))
    silenced = sum(any(a.get("kept") == "dropped" for a in e.get("audio") or []) for e in entries)
    if silenced:
        print(f"kssgan deidentify: the sound of {silenced} video(s) was dropped (--audio keep keeps it)")
    return exit_status(report["this_run"])
