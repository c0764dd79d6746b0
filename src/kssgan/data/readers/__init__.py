"""Dataset readers: raw folders → one DataFrame row per image.

Every reader returns a :class:`pandas.DataFrame` with at least ``source`` (path relative to the raw
root), ``identity`` (str) and ``split`` (train|val|test), plus attribute columns (strings, or 0/1
ints for binary attributes). Files the reader itself had to skip (e.g. a name that does not parse,
a file listed but missing) are in ``df.attrs["skipped"]`` as ``(source, reason)`` pairs, so the
preparation records them instead of failing. A folder that does not look like the dataset raises
:class:`DatasetLayoutError`, saying what was expected and what was found.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd

from kssgan.data.readers._common import (
    PROTOCOLS,
    STRANGER_SPLIT,
    DatasetLayoutError,
    assign_splits,
    hold_out_strangers,
)
from kssgan.data.readers.celeba import CELEBA_ATTRIBUTES, read_celeba
from kssgan.data.readers.folder import read_folder
from kssgan.data.readers.image_io import ImageLoadError, is_image_file, load_image
from kssgan.data.readers.rafd import RAFD_EXPRESSIONS, parse_rafd_name, read_rafd

READERS: dict[str, Callable[..., pd.DataFrame]] = {
    "rafd": read_rafd,
    "celeba": read_celeba,
    "folder": read_folder,
    # ORL and Yale are plain folders with a labels.csv
    "orl": read_folder,
    "yale": read_folder,
}

__all__ = [
    "CELEBA_ATTRIBUTES",
    "PROTOCOLS",
    "RAFD_EXPRESSIONS",
    "READERS",
    "STRANGER_SPLIT",
    "DatasetLayoutError",
    "ImageLoadError",
    "assign_splits",
    "get_reader",
    "hold_out_strangers",
    "is_image_file",
    "load_image",
    "parse_rafd_name",
    "read_celeba",
    "read_folder",
    "read_rafd",
]


def get_reader(name: str) -> Callable[..., pd.DataFrame]:
    """Reader function by dataset name (``rafd``, ``celeba``, ``folder``; ``orl``/``yale`` alias folder)."""
    try:
        return READERS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dataset reader {name!r}; choose one of {sorted(READERS)}") from None
