"""The files of a prepared folder while ``kssgan prepare`` writes it: an append-only
``manifest.csv`` journal (one write + fsync per chunk, a torn last line dropped on resume),
embedding parts in ``.parts/``, atomic replacement of ``embeddings.npz`` / ``prepare.json``, and
the record of which dataset a folder holds (so a resume cannot mix two datasets).

Finished folders are read through :class:`kssgan.data.prepared.PreparedDataset`; this module
reads only the partial state of a run in progress.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from kssgan.data.prepared import NAME_ERRORS

LANDMARK_COLUMNS = [f"lm{i}_{a}" for i in range(5) for a in ("x", "y")]
CORE_COLUMNS = ["source", "crop", "identity", "split", "status", "reason", "det_score", *LANDMARK_COLUMNS]
EXTRA_COLUMNS = ["n_faces", "face_size", "width", "height"]


class PrepareConfigMismatch(RuntimeError):
    """A resumed run asks for settings different from those the existing crops were made with."""


def read_partial_manifest(path: Path) -> pd.DataFrame:
    """Manifest rows written so far; a torn last line (killed mid-write) is dropped."""
    if not path.is_file() or path.stat().st_size == 0:
        return pd.DataFrame(columns=CORE_COLUMNS)
    text = path.read_text(encoding="utf-8", errors=NAME_ERRORS)
    if not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    if not text.strip():
        return pd.DataFrame(columns=CORE_COLUMNS)
    df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
    if "status" not in df.columns or "source" not in df.columns:
        raise PrepareConfigMismatch(f"{path} is not a kssgan manifest (columns {list(df.columns)})")
    df = df[df["status"].isin(["ok", "skipped"])]
    return df.drop_duplicates("source", keep="last").reset_index(drop=True)


def append_rows(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Append ``rows`` to the manifest journal, flushed and fsynced (header on a new file). Plain
    ``csv`` (a pandas frame per chunk cost the driver more than the rest of its work), the dialect
    :func:`finish_manifest` writes the finished manifest in."""
    if not rows:
        return
    new = not path.is_file() or path.stat().st_size == 0
    with open(path, "a", encoding="utf-8", errors=NAME_ERRORS, newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if new:
            writer.writerow(columns)
        writer.writerows([["" if r.get(c) is None else r.get(c) for c in columns] for r in rows])
        fh.flush()
        os.fsync(fh.fileno())


@dataclass
class FinishedManifest:
    """What the final pass over the manifest found (see :func:`finish_manifest`)."""

    ok: pd.DataFrame  # the ok rows, only the columns asked for
    skipped: pd.DataFrame  # source, status, reason of every skipped row
    sources: int = 0
    attributes: dict[str, list[str]] = field(default_factory=dict)


def finish_manifest(
    path: Path,
    columns: list[str],
    order: Sequence[str],
    extra: Sequence[Mapping[str, Any]],
    ok_columns: Sequence[str],
    attribute_columns: Sequence[str] = (),
    max_values: int = 64,
) -> FinishedManifest:
    """Rewrite the journal as the finished manifest, streamed: one row per source (the last one
    written), in the reader's ``order``; sources the reader no longer lists dropped; then ``extra``
    rows (the reader's own skips) by source. Bytes as pandas' ``to_csv`` of the same table (the same
    ``csv`` dialect); memory of one serialised line per row, not of a frame of every cell.
    Returns the ok rows' ``ok_columns``, the skipped rows, the count, and the values of each
    ``attribute_columns`` column with at most ``max_values`` distinct values among ok rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")

    def line(values: Sequence[Any]) -> str:
        buf.seek(0)
        buf.truncate()
        writer.writerow(values)
        return buf.getvalue()

    lines: dict[str, str] = {}
    with open(path, encoding="utf-8", errors=NAME_ERRORS, newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, [])
        where = [header.index(c) if c in header else -1 for c in columns]
        status_at = header.index("status") if "status" in header else -1
        for row in reader:
            if len(row) != len(header) or row[status_at] not in ("ok", "skipped"):
                continue
            lines[row[0]] = line(["" if i < 0 else row[i] for i in where])
    extra_by_source = {str(r["source"]): r for r in extra}
    ordered = [s for s in order if s in lines] + sorted(s for s in extra_by_source if s not in lines)
    pick = {c: columns.index(c) for c in {*ok_columns, "source", "status", "reason", *attribute_columns}}
    ok_rows: list[list[str]] = []
    skipped_rows: list[list[str]] = []
    values: dict[str, set[str]] = {c: set() for c in attribute_columns}
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", errors=NAME_ERRORS, newline="") as out:
        out.write(line(columns))
        for source in ordered:
            if source in lines:
                text = lines.pop(source)
            else:
                row_of = extra_by_source[source]
                text = line(["" if row_of.get(c) is None else row_of[c] for c in columns])
            out.write(text)
            row = next(csv.reader([text]))
            if row[pick["status"]] == "ok":
                ok_rows.append([row[pick[c]] for c in ok_columns])
                for c, seen in values.items():
                    if len(seen) <= max_values:
                        seen.add(row[pick[c]])
            else:
                skipped_rows.append([row[pick["source"]], row[pick["status"]], row[pick["reason"]]])
    tmp.replace(path)
    attributes = {c: sorted(v for v in seen if v != "") for c, seen in values.items() if len(seen) <= max_values}
    return FinishedManifest(
        ok=pd.DataFrame(ok_rows, columns=list(ok_columns), dtype=str),
        skipped=pd.DataFrame(skipped_rows, columns=["source", "status", "reason"], dtype=str),
        sources=len(ok_rows) + len(skipped_rows),
        attributes=attributes,
    )


class JournalWriter:
    """The one writer of a running ``prepare``. For each finished chunk: its crops, then one
    embedding part, then its rows appended to the manifest and fsynced, in that order, so that a row
    in the journal always has its crop and embedding on disk, and a kill loses no finished chunk."""

    def __init__(self, out: Path, manifest: Path, columns: list[str]) -> None:
        self.out, self.manifest, self.columns = out, manifest, columns
        self.parts = out / ".parts"
        self.part_no = len(list(self.parts.glob("emb_*.npz"))) if self.parts.is_dir() else 0
        self.dim = 0

    def add(self, rows: list[dict[str, Any]], crops: Sequence[tuple[str, bytes]], embeddings: np.ndarray) -> None:
        for name, png in crops:
            path = self.out / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(png)
        if len(crops):
            while (self.parts / f"emb_{self.part_no:06d}.npz").exists():
                self.part_no += 1
            save_npz_atomic(self.parts / f"emb_{self.part_no:06d}.npz", [n for n, _ in crops], embeddings)
            self.part_no += 1
            self.dim = int(embeddings.shape[1])
        append_rows(self.manifest, rows, self.columns)


def release_free_memory() -> None:
    """Give the allocator's free pages back to the system (glibc ``malloc_trim``) after a phase that
    made many short-lived objects (listing 10,000s of files, the final manifest pass), so that the
    next phase's peak does not stack on their leftovers. A no-op where glibc is not there."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # pragma: no cover - not glibc
        pass


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", errors=NAME_ERRORS)
    tmp.replace(path)


def _embedding_files(out: Path) -> list[Path]:
    files = [out / "embeddings.npz"] if (out / "embeddings.npz").is_file() else []
    return files + (sorted((out / ".parts").glob("emb_*.npz")) if (out / ".parts").is_dir() else [])


def embedded_crops(out: Path) -> set[str]:
    """The crops that have an embedding on disk (``embeddings.npz`` and an unfinished run's parts)."""
    found: set[str] = set()
    for f in _embedding_files(out):
        try:
            with np.load(f, allow_pickle=False) as z:
                found.update(str(c) for c in z["crop"].tolist())
        except (OSError, ValueError, KeyError):  # a part torn by a kill: its rows are redone
            continue
    return found


def embedding_matrix(out: Path, crops: Sequence[str], dim: int) -> tuple[np.ndarray, list[str]]:
    """The embeddings of ``crops``, in that order (later parts win, as they were written later), and
    the crops that have none. Filled in place: no per-crop objects, memory of the matrix alone."""
    index = {c: i for i, c in enumerate(crops)}
    matrix = np.zeros((len(crops), dim), np.float32)
    filled = np.zeros(len(crops), bool)
    for f in _embedding_files(out):
        try:
            with np.load(f, allow_pickle=False) as z:
                names, emb = z["crop"].tolist(), z["embedding"]
        except (OSError, ValueError, KeyError):
            continue
        rows = [(index[str(c)], j) for j, c in enumerate(names) if str(c) in index]
        if rows and emb.shape[1] == dim:
            dst, src = zip(*rows, strict=True)
            matrix[list(dst)] = emb[list(src)]
            filled[list(dst)] = True
    return matrix, [c for c, ok in zip(crops, filled, strict=True) if not ok]


def embedding_dim(out: Path) -> int:
    """The width of the embeddings already on disk (0 when there are none)."""
    for f in _embedding_files(out):
        try:
            with np.load(f, allow_pickle=False) as z:
                if z["embedding"].ndim == 2 and len(z["embedding"]):
                    return int(z["embedding"].shape[1])
        except (OSError, ValueError, KeyError):
            continue
    return 0


def save_npz_atomic(path: Path, crops: Sequence[str], emb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")  # plain open(): normal permissions
    with open(tmp, "wb") as fh:
        np.savez(fh, crop=np.asarray(list(crops), dtype=str), embedding=np.asarray(emb, np.float32))
    os.replace(tmp, path)


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
