"""Dataset recipes (``data_modules/*.yaml``) and the crop settings they fix.

A recipe is a config file of ``kssgan prepare`` (its keys are the job's options, see
:mod:`kssgan.data.prepare.cli`). :class:`CropSettings` are the settings that change the crops:
``prepare.json`` records them and a resumed run must ask for the same ones.
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[4]


def shared_data_root() -> Path:
    """The shared real-face datasets: ``$KSSGAN_SHARED_DATA``, else ``../shared/datasets`` beside the repo."""
    return Path(os.environ.get("KSSGAN_SHARED_DATA", REPO_ROOT.parent / "shared" / "datasets"))


READERS = ("folder", "rafd", "celeba")
# recipe values that may hold ${VAR} / ${VAR:-default} and ~
PATH_KEYS = ("data_dir", "prepared_dir", "labels_csv", "model_dir")
_VAR = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")


@dataclass(frozen=True)
class CropSettings:
    """What makes a crop: the same source gives the same crop only under the same settings."""

    reader: str = "folder"
    image_size: int = 128
    margin: float = 0.0
    detector: str = "yunet"
    recogniser: str = "sface"
    min_face: float = 24.0
    det_score_threshold: float = 0.6

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def differences(self, recorded: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
        """``key -> (recorded, asked)`` for every setting ``recorded`` (prepare.json) holds differently."""
        mine = self.to_dict()
        return {key: (recorded[key], mine[key]) for key in mine if key in recorded and recorded[key] != mine[key]}


def expand(value: str) -> str:
    """``${VAR}`` / ``${VAR:-default}`` from the environment, then ``~``."""
    out = _VAR.sub(lambda m: os.environ.get(m["name"]) or (m["default"] or ""), value)
    return os.path.expanduser(out)


def load_recipe(path: str | Path) -> dict[str, Any]:
    """A dataset recipe (``data_modules/<name>.yaml``) as a dict, with ``${VAR:-default}`` expanded.

    Relative ``data_dir`` / ``prepared_dir`` are left as written (relative to the working
    directory, normally the repository root); :func:`resolve_path` applies that rule.
    """
    import yaml

    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a dataset recipe must be a mapping, got {type(data).__name__}")
    for key in PATH_KEYS:
        if isinstance(data.get(key), str):
            data[key] = expand(data[key])
    return data


def find_recipe(name: str) -> Path | None:
    """``data_modules/<name>.yaml`` in the working directory or the repository, if there is one."""
    for cand in (Path("data_modules") / f"{name}.yaml", REPO_ROOT / "data_modules" / f"{name}.yaml"):
        if cand.is_file():
            return cand
    return None


def resolve_path(value: str | Path) -> Path:
    """A relative path from a recipe: relative to the working directory if it exists there,
    else to the repository root."""
    p = Path(value).expanduser()
    if p.is_absolute() or p.exists():
        return p
    alt = REPO_ROOT / p
    return alt if alt.exists() else p
