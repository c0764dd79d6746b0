"""What ``kssgan deidentify`` does for a sealed release: keyed-hash output names, one sealed entry
per released file, and a plain report without source names or identities.

:class:`Release` is handed to :func:`kssgan.deidentify.files.deidentify_files`, which asks it for each
file's released name (:meth:`Release.name`) and, before publishing the output, seals the file's
entry (:meth:`Release.sealer`): a run killed at any point leaves no released file without its entry,
and the re-run's entries win where it redoes a file.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
import uuid
from collections.abc import Callable
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Any

from kssgan.seal import SEALED_NAME, SealError
from kssgan.seal.keys import fingerprint_hex, load_public
from kssgan.seal.sealed_log import HEADER_SIZE, SealedWriter, check_continuable

RENAME_MODES = ("keep", "hash")
# fields of a report entry that are sealed (beside the source, identity and checkpoint)
SEALED_FIELDS = (
    "kind",
    "status",
    "reason",
    "withheld_for",
    "faces",
    "tracks",
    "frames",
    "frames_with_faces",
    "face_detections",
    "still_matching_detections",
    "fallback_frames",
    "fps",
    "audio",
    "alpha",
)
# fields of an entry that the plain report and journal of a sealed release keep as they are
PLAIN_FIELDS = (
    "path",
    "kind",
    "status",
    "withheld_for",
    "frames",
    "face_detections",
    "still_matching_detections",
    "audio",
    "alpha",
)
# statuses whose reason is one of deidentify's own fixed sentences (no names, no error text)
PLAIN_REASON_STATUSES = ("withheld", "obscured", "no_face", "skipped", "skipped_not_media", "skipped_unsupported")
_NAME_TAG = b"kssgan-rename v1\0"


def hashed_name(src: Path, rel: str) -> str:
    """``HMAC-SHA256(key = SHA-256 of the source file's bytes, message = its relative path)`` in hex
    (128 bits) plus the output's extension. Without the exact source file nobody can recompute or
    invert it; whoever holds that file could link it anyway, through the pixels around the face."""
    from kssgan.data.readers.image_io import sniff_format
    from kssgan.deidentify.encode import ENCODE_EXTENSION, IMAGE_EXTENSIONS
    from kssgan.deidentify.video import VIDEO_EXTENSIONS

    digest, head = hashlib.sha256(), b""
    try:
        with open(src, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                head = head or block[:16]
                digest.update(block)
        key = digest.digest()
    except OSError:  # unreadable: it fails later; its name must still say nothing
        key = os.urandom(32)
    name = hmac.new(key, _NAME_TAG + rel.encode(), hashlib.sha256).hexdigest()[:32]
    ext = src.suffix.lower()
    if ext not in IMAGE_EXTENSIONS and ext not in VIDEO_EXTENSIONS:  # e.g. Yale's "subject01.happy"
        fmt = sniff_format(head)
        ext = ".gif" if fmt == "gif" else ENCODE_EXTENSION.get(fmt or "", "")
    return name + ext


class Release:
    """Output naming (``rename``: keep | hash) and, with ``seal_to``, the sealed mapping in ``out_root``."""

    def __init__(
        self,
        out_root: Path,
        rename: str = "keep",
        seal_to: str | Path | None = None,
        ckpt: str | Path | None = None,
        input_root: str | Path | None = None,
    ) -> None:
        if rename not in RENAME_MODES:
            raise SealError(f"--rename must be one of {', '.join(RENAME_MODES)}, got {rename!r}")
        self.out_root, self.rename = Path(out_root), rename
        self.sealed_path = self.out_root / SEALED_NAME
        self.public = load_public(seal_to) if seal_to else None  # before the model loads: fail fast
        if self.public is None and self.sealed_path.exists():
            raise SealError(
                f"{self.out_root} holds {SEALED_NAME}: pass --seal-to with its holder.pub to continue this release"
            )
        if self.public is not None and self.sealed_path.is_file():  # continuing: same key, same naming?
            data = self.sealed_path.read_bytes()
            if len(data) >= HEADER_SIZE:
                check_continuable(data, self.sealed_path, self.public, self._info, ("rename",))
        self.ckpt = Path(ckpt) if ckpt else None
        self.input_root = str(Path(input_root).resolve()) if input_root else None
        self.writer: SealedWriter | None = None
        self.run_id = uuid.uuid4().hex[:12]
        self.ckpt_sha256: str | None = None
        self._names: dict[tuple[Path, str], str] = {}

    @property
    def _info(self) -> dict[str, Any]:
        return {"rename": self.rename}  # plain in each run header: may be public

    @property
    def sealing(self) -> bool:
        return self.public is not None

    @property
    def strip_metadata(self) -> bool:
        """Re-encode pictures that would be copied unchanged, so that no metadata of the source survives."""
        return self.sealing or self.rename == "hash"

    def open(self) -> None:
        if not self.sealing or self.writer is not None:
            return
        if self.ckpt is not None and self.ckpt.is_file():
            self.ckpt_sha256 = _sha256_file(self.ckpt)
        self.writer = SealedWriter(self.sealed_path, self.public, self._info, must_match=("rename",))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def name(self, src: Path, rel: str) -> str:
        """The released relative path of ``src`` (``rel`` itself unless ``rename == "hash"``: a flat name)."""
        if self.rename != "hash":
            return rel
        if (src, rel) not in self._names:
            self._names[(src, rel)] = hashed_name(src, rel)
        return self._names[(src, rel)]

    def order(self, files: list[tuple[Path, str]]) -> list[tuple[Path, str]]:
        """``files`` in the order to process them: with hashed names, by released name, so that
        neither the report's order nor the outputs' times follow the sorted source names."""
        return sorted(files, key=lambda f: self.name(*f)) if self.rename == "hash" else files

    def sealer(self, source: str, identity: str | None) -> Callable[[dict[str, Any]], None] | None:
        """``seal(entry)`` for one input file (None when not sealing); call it before publishing the output."""
        if self.writer is None:
            return None
        return partial(self._seal, source=source, identity=identity)

    def _seal(self, entry: dict[str, Any], source: str, identity: str | None) -> None:
        assert self.writer is not None
        record: dict[str, Any] = {"released": entry["path"], "source": source, "input": self.input_root}
        record["identity"] = identity
        record.update({k: entry[k] for k in SEALED_FIELDS if k in entry})
        record.update(
            checkpoint_sha256=self.ckpt_sha256,
            sealed_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            run=self.run_id,
        )
        self.writer.append(record)

    def plain_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """``entry`` as the plain journal and report of this release may hold it: unchanged unless
        sealing; sealing, the released path, status, counts and fixed reasons only (no source name,
        identity, box, group or error message: those are sealed)."""
        if not self.sealing:
            return entry
        row = {k: entry[k] for k in PLAIN_FIELDS if k in entry}
        if entry.get("status") in PLAIN_REASON_STATUSES and "reason" in entry:
            row["reason"] = entry["reason"]
        faces = entry.get("faces")
        if isinstance(faces, list):
            row["faces"] = len(faces)
            row["still_matching"] = sum(bool(f.get("match")) for f in faces)
        elif faces is not None:
            row["faces"] = int(faces)
            row["still_matching"] = int(entry.get("still_matching", 0))
        tracks = entry.get("tracks")
        if tracks is not None:
            row["tracks"] = len(tracks) if isinstance(tracks, list) else int(tracks)
        return row

    def redact(self, report: dict[str, Any]) -> dict[str, Any]:
        """The plain report of a sealed release: released paths, statuses and counts, no source
        names, identities, boxes or error messages (those are in the sealed file and the log)."""
        if not self.sealing:
            return report
        out = {k: v for k, v in report.items() if k not in ("files", "options")}
        out["options"] = {k: v for k, v in report.get("options", {}).items() if k != "identity"}
        out["files"] = [self.plain_entry(e) for e in report.get("files", [])]
        sealed = {
            "file": SEALED_NAME,
            "holder_key": fingerprint_hex(self.public),
            "entries_this_run": self.writer.count if self.writer is not None else 0,
            "note": "the mapping released file -> source file, identity, group and boxes is sealed to the "
            "holder key; `kssgan reidentify` with holder.key reads it",
        }
        existing = report.get("this_run", {}).get("skipped_existing")  # files merged from the journal keep their status
        if existing is None:
            existing = sum(e.get("status") == "skipped_existing" for e in report.get("files", []))
        if self.writer is not None and self.writer.created and existing:
            sealed["unsealed_existing"] = existing
            print(
                f"kssgan deidentify: {existing} released files existed before {SEALED_NAME} and are not in it; "
                "re-run with --overwrite to seal them",
                file=sys.stderr,
            )
        out["sealed"] = sealed
        return out


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
