"""Experiments are ``experiments/base.yaml`` plus a short per-dataset delta.

``kssgan fit`` composes them with LightningCLI's repeated ``--config`` (jsonargparse, ``omegaconf+``
mode: ``${trainer.default_root_dir}`` is resolved once every file is merged). Code that needs an
experiment as data — a sweep, which writes one complete config per trial — composes it here with
the same rules: mappings merge key by key, anything else (a list of callbacks, a number) is
replaced by the later file.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

BASE_NAME = "base.yaml"


def experiment_files(path: str | Path) -> list[Path]:
    """The files ``kssgan fit`` composes for one experiment: the base beside it, then the file itself
    (a file that is the base, or with no base beside it, stands alone)."""
    path = Path(path)
    base = path.parent / BASE_NAME
    if path.name == BASE_NAME or not base.is_file():
        return [path]
    return [base, path]


def merge(into: dict[str, Any], delta: dict[str, Any]) -> dict[str, Any]:
    """``delta`` merged into a copy of ``into`` (mappings key by key; other values replaced)."""
    out = copy.deepcopy(into)
    for key, value in delta.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            same_class = value.get("class_path", out[key].get("class_path")) == out[key].get("class_path")
            out[key] = merge(out[key], value) if same_class else copy.deepcopy(value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def compose(paths: Sequence[str | Path]) -> dict[str, Any]:
    """The files merged in order, interpolations (``${...}``) left for :func:`resolve`."""
    cfg: dict[str, Any] = {}
    for p in paths:
        loaded = yaml.safe_load(Path(p).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{p}: an experiment config is a YAML mapping")
        cfg = merge(cfg, loaded)
    return cfg


def load_experiment(path: str | Path) -> dict[str, Any]:
    """One experiment as ``kssgan fit`` would read it, before interpolation."""
    return compose(experiment_files(path))


def resolve(cfg: dict[str, Any]) -> dict[str, Any]:
    """``cfg`` with its ``${...}`` interpolations resolved (what the trainer receives)."""
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.create(cfg), resolve=True)  # type: ignore[return-value]
