"""The durable record of a folder run: ``<output>/deidentify-journal.jsonl``.

One JSON line per finished file, appended, flushed and fsynced *before* the file's output is moved
into place, so a run killed at any point (kill -9 included) never leaves an output without its
entry. A line cut short by a kill is ignored when read back. Re-runs append to the same journal;
:meth:`Journal.merged` keeps the newest entry per path, so a file skipped because its output exists
keeps the entry it was released with (status, faces, groups, similarities, matches).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

JOURNAL_NAME = "deidentify-journal.jsonl"


class Journal:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.entries: dict[str, dict[str, Any]] = {}  # path -> newest entry (insertion order: first seen)
        self.torn_lines = 0
        data = self.path.read_bytes() if self.path.is_file() else b""
        self._read(data)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "ab")  # kept open for the run; closed by close()
        if data and not data.endswith(b"\n"):
            # the previous run was killed mid-line: start ours on a fresh line
            self._fh.write(b"\n")
            self._sync()

    def _read(self, data: bytes) -> None:
        for raw in data.split(b"\n"):
            if not raw.strip():
                continue
            try:
                entry = json.loads(raw)
            except ValueError:
                self.torn_lines += 1
                continue
            if isinstance(entry, dict) and isinstance(entry.get("path"), str):
                self.entries[entry["path"]] = entry

    def previous(self, rel: str) -> dict[str, Any] | None:
        return self.entries.get(rel)

    def append(self, entry: dict[str, Any]) -> None:
        """Record ``entry`` durably (flush + fsync) and make it the newest for its path."""
        line = json.dumps(entry, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"
        self._fh.write(line)
        self._sync()
        self.entries[entry["path"]] = dict(entry)

    def _sync(self) -> None:
        self._fh.flush()
        os.fsync(self._fh.fileno())

    def merged(self) -> list[dict[str, Any]]:
        """The newest entry of every path ever recorded in this output folder, in first-seen order."""
        return [dict(e) for e in self.entries.values()]

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
