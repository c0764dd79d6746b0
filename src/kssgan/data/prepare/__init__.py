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

Modules: :mod:`.recipe` (recipes, crop settings), :mod:`.store` (the manifest journal, resume),
:mod:`.processing` (detect/align/crop/embed per image), :mod:`.grouping_step` (k-Same grouping,
``--regroup``), :mod:`.run` (:func:`prepare_dataset`), :mod:`.report` (summary, benchmark),
:mod:`.cli` (the command). A finished folder is read through
:class:`kssgan.data.prepared.PreparedDataset`.
"""

from __future__ import annotations

from typing import Any

# Names are imported on first use (PEP 562): a worker process of ``prepare`` imports only
# :mod:`.workers` and :mod:`.processing` (no pandas, no jsonargparse), so that it starts fast.
_EXPORTS = {
    "main": "cli",
    "identity_groups": "grouping_step",
    "regroup": "grouping_step",
    "CropSettings": "recipe",
    "load_recipe": "recipe",
    "resolve_path": "recipe",
    "print_summary": "report",
    "prepare_dataset": "run",
    "CORE_COLUMNS": "store",
    "EXTRA_COLUMNS": "store",
    "LANDMARK_COLUMNS": "store",
    "PrepareConfigMismatch": "store",
    "dataset_selection": "store",
    "selection_difference": "store",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "CORE_COLUMNS",
    "EXTRA_COLUMNS",
    "LANDMARK_COLUMNS",
    "CropSettings",
    "PrepareConfigMismatch",
    "dataset_selection",
    "identity_groups",
    "load_recipe",
    "main",
    "prepare_dataset",
    "print_summary",
    "regroup",
    "resolve_path",
    "selection_difference",
]
