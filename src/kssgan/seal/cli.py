"""``kssgan keygen`` and ``kssgan reidentify``.

    kssgan keygen --out keys/ [--passphrase]
    kssgan reidentify --key keys/holder.key --sealed released/reidentify.sealed [--file RELEASED_PATH]
                      [--format json|csv]

Both read their options from YAML too (``--config FILE``, keys as the option names) and print them
with ``--print_config``.

A wrong key, a damaged, altered or truncated sealed file, or an unknown ``--file`` is one line on
stderr and exit status 2.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Any

from jsonargparse import ArgumentParser

from kssgan.job_config import job_parser
from kssgan.seal import SealError

CSV_COLUMNS = ("released", "source", "input", "identity", "kind", "status", "faces", "groups", "boxes", "tracks",
               "checkpoint_sha256", "sealed_at", "run")  # fmt: skip


def keygen_parser() -> ArgumentParser:
    """The ``kssgan keygen`` parser (:func:`kssgan.job_config.job_parser`)."""
    p = job_parser("kssgan keygen", "write the data holder's key pair")
    p.add_argument("--out", type=str, required=True, help="folder for holder.key (private, mode 0600) and holder.pub")
    p.add_argument(
        "--passphrase",
        action="store_true",
        help="protect holder.key with a passphrase ($KSSGAN_HOLDER_PASSPHRASE, or asked on the terminal)",
    )
    return p


def keygen(argv: list[str] | None = None) -> int:
    from kssgan.seal.keys import PASSPHRASE_ENV, fingerprint_hex, generate_keypair, load_public, read_passphrase

    args = keygen_parser().parse_args(argv)
    try:
        passphrase = read_passphrase("passphrase for holder.key: ", confirm=True) if args.passphrase else None
        key, pub = generate_keypair(args.out, passphrase)
    except SealError as err:
        print(f"kssgan keygen: {err}", file=sys.stderr)
        return 2
    print(
        f"keygen: wrote {key} (private: keep it, mode 0600{', passphrase-protected' if passphrase else ''}) and "
        f"{pub} (public: give it to whoever runs `kssgan deidentify --seal-to`); "
        f"fingerprint {fingerprint_hex(load_public(pub))}"
    )
    if passphrase is None:
        print(f"keygen: holder.key has no passphrase (--passphrase, ${PASSPHRASE_ENV})", file=sys.stderr)
    return 0


def reidentify_parser() -> ArgumentParser:
    """The ``kssgan reidentify`` parser (:func:`kssgan.job_config.job_parser`)."""
    p = job_parser("kssgan reidentify", "read a sealed release mapping with the holder's private key")
    p.add_argument("--key", type=str, required=True, help="holder.key from `kssgan keygen`")
    p.add_argument("--sealed", type=str, required=True, help="reidentify.sealed beside the release")
    p.add_argument(
        "--file", type=str, help="one released file (its path in the release, or a path to it): print its entry"
    )
    p.add_argument("--format", choices=("json", "csv"), default="json", help="output format (default json)")
    p.add_argument("--partial", action="store_true", help="read a file whose last run was interrupted")
    return p


def reidentify(argv: list[str] | None = None) -> int:
    args = reidentify_parser().parse_args(argv)
    try:
        entries = read_mapping(args.key, args.sealed, args.partial)
        if args.file:
            entries = [find_entry(entries, args.file, Path(args.sealed).parent)]
    except SealError as err:
        print(f"kssgan reidentify: {err}", file=sys.stderr)
        return 2
    if args.format == "csv":
        writer = csv.DictWriter(sys.stdout, CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(csv_row(e) for e in entries)
    else:
        print(json.dumps(entries[0] if args.file else entries, indent=1, ensure_ascii=False))
    return 0


def read_mapping(key_path: str | Path, sealed: str | Path, allow_partial: bool = False) -> list[dict[str, Any]]:
    """The merged mapping (one entry per released file) of ``sealed``, read with ``key_path``."""
    from kssgan.seal.keys import load_private
    from kssgan.seal.sealed_log import merge_entries, read_sealed

    return merge_entries(read_sealed(sealed, load_private(key_path), allow_partial))


def find_entry(entries: list[dict[str, Any]], file: str, release_root: Path) -> dict[str, Any]:
    """The entry of ``file``: a path inside the release as written in it, or a path to the released file."""
    wanted = {file.replace("\\", "/")}
    path = Path(file)
    if path.exists():
        try:
            wanted.add(path.resolve().relative_to(release_root.resolve()).as_posix())
        except ValueError:
            pass
    for e in entries:
        if e.get("released") in wanted:
            return e
    raise SealError(f"no entry for {file} among the {len(entries)} released files of the sealed mapping")


def csv_row(e: dict[str, Any]) -> dict[str, Any]:
    faces = e.get("faces", [])
    tracks = e.get("tracks", [])
    groups = [f.get("group") for f in faces] + [t.get("group") for t in tracks]
    return {
        **{k: e.get(k) for k in CSV_COLUMNS if k in e},
        "faces": len(faces) if faces else e.get("face_detections", 0),
        "groups": ";".join(str(g) for g in groups),
        "boxes": json.dumps([f.get("box") for f in faces]) if faces else "",
        "tracks": json.dumps(tracks) if tracks else "",
    }


if __name__ == "__main__":
    sys.exit(reidentify())
