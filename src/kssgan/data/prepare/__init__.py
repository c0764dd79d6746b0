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

from kssgan.data.prepare.cli import main
from kssgan.data.prepare.grouping_step import identity_groups, regroup
from kssgan.data.prepare.recipe import CropSettings, load_recipe, resolve_path
from kssgan.data.prepare.report import bench_prepare, print_summary
from kssgan.data.prepare.run import prepare_dataset
from kssgan.data.prepare.store import (
    CORE_COLUMNS,
    EXTRA_COLUMNS,
    LANDMARK_COLUMNS,
    PrepareConfigMismatch,
    dataset_selection,
    selection_difference,
)

__all__ = [
    "CORE_COLUMNS",
    "EXTRA_COLUMNS",
    "LANDMARK_COLUMNS",
    "CropSettings",
    "PrepareConfigMismatch",
    "bench_prepare",
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
