"""Finishing one file of a release in a crash-safe order: seal its entry, journal it, then publish
its output. Every path of :mod:`.files` that writes a file goes through :class:`Recorder`."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kssgan.deidentify.encode import part_path
from kssgan.deidentify.journal import Journal
from kssgan.deidentify.options import DeidentifyError

log = logging.getLogger("kssgan.deidentify")


def fail_entry(entry: dict[str, Any], err: BaseException) -> None:
    """Mark ``entry`` failed and log why; unexpected errors get their trace in the log."""
    from kssgan.data.readers.image_io import ImageLoadError

    rel = entry["path"]
    if isinstance(err, (ImageLoadError, DeidentifyError, OSError, ValueError)):
        entry.update(status="failed", reason=f"{type(err).__name__}: {err}")
        log.error("%s: %s", rel, entry["reason"])
    else:  # one bad file must never stop the batch; the trace goes to the log
        entry.update(status="failed", reason=f"unexpected {type(err).__name__}: {err}")
        log.error("%s: %s", rel, entry["reason"], exc_info=err)


class Recorder:
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
        self.journal_entry(entry)
        if tmp is not None:
            os.replace(tmp, dst)

    def failed(
        self,
        entry: dict[str, Any],
        dst: Path,
        err: BaseException,
        seal: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        fail_entry(entry, err)
        for leftover in (part_path(dst), dst.with_name(f".{dst.stem}.partial{dst.suffix}")):
            leftover.unlink(missing_ok=True)
        if seal is not None:
            seal(entry)
        self.journal_entry(entry)

    def journal_entry(self, entry: dict[str, Any]) -> None:
        if self.journal is not None:
            self.journal.append(self.release.plain_entry(entry) if self.release is not None else entry)
