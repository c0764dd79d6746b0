"""What ``kssgan deidentify`` reads: the checked ``--input``/``--output`` pair, the files under the
input (links and hidden names handled) and the optional ``--attributes`` CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kssgan.deidentify.options import DeidentifyError


def check_paths(root: Path, output: Path) -> None:
    """Refuse an ``--output`` that would overwrite or mix with the input, or that is a file."""
    if not root.exists() and not root.is_symlink():
        raise DeidentifyError(f"--input {root} does not exist")
    if output.exists() and not output.is_dir():
        raise DeidentifyError(f"--output {output} is an existing file; give a folder (it is created when missing)")
    src, out = root.resolve(), output.resolve()
    if root.is_file():
        if out == src.parent:
            raise DeidentifyError(f"--output {output} is the folder of --input {root}: the output would replace it")
        return
    if out == src:
        raise DeidentifyError(f"--output {output} is the --input folder itself; give a separate folder")
    if src in out.parents:
        raise DeidentifyError(f"--output {output} lies inside --input {root}; give a folder outside it")


def scan_inputs(root: Path, output: Path) -> tuple[list[tuple[Path, str]], list[dict[str, Any]]]:
    """``(files, skipped)``: ``(path, relative name)`` of every file to handle under ``root`` (or
    ``root`` itself), and a report entry for each path that is passed over with its reason (dangling
    or looping links, links leading outside ``root``). Hidden names and the output folder are left out."""
    if root.is_file():
        return [(root, root.name)], []
    if not root.is_dir():
        raise DeidentifyError(f"--input {root} does not exist")
    out, base = output.resolve(), root.resolve()
    files: list[tuple[Path, str]] = []
    skipped: list[dict[str, Any]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if path.is_symlink():
            try:
                target = path.resolve(strict=True)
            except (OSError, RuntimeError) as err:  # dangling, or a loop (ELOOP / RuntimeError)
                why = "symlink loop" if "loop" in str(err).lower() else "dangling link (its target does not exist)"
                skipped.append({"path": rel, "kind": "link", "status": "skipped", "reason": why})
                continue
            if base != target and base not in target.parents:
                skipped.append(
                    {"path": rel, "kind": "link", "status": "skipped", "reason": "link to a file outside --input"}
                )
                continue
        if not path.is_file():
            continue
        if out == path.resolve().parent or out in path.resolve().parents:
            continue
        files.append((path, rel))
    return files, skipped


def collect_inputs(root: Path, output: Path) -> list[tuple[Path, str]]:
    """``(path, relative name)`` for a file, or every file under a folder (not the output folder)."""
    return scan_inputs(root, output)[0]


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
