"""Load a trained model from a checkpoint file the user named, with one clear line for every bad file.

:func:`load_model` wraps :func:`kssgan.system.load_kssgan` (``torch.load(weights_only=True)``: a
pickle payload is refused, never run) and turns whatever goes wrong into a :class:`CheckpointError`
whose text names the kind of problem — empty, not a torch checkpoint, truncated, holds code or
objects the safe loader refuses, not a kssgan checkpoint, weights that do not fit — and never
suggests turning the safe loader off.
"""

from __future__ import annotations

import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

ZIP_MAGIC = b"PK\x03\x04"


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used (the message is one line for the user)."""


def describe_problem(path: Path) -> str | None:
    """What is wrong with ``path`` as a torch checkpoint judged from its bytes alone, or None."""
    if not path.is_file():
        return f"checkpoint {path} not found"
    size = path.stat().st_size
    if size == 0:
        return f"checkpoint {path} is empty (0 bytes)"
    with path.open("rb") as fh:
        head = fh.read(4)
    if head != ZIP_MAGIC:
        return f"{path} is not a torch checkpoint (torch.save / Lightning write a zip archive; this is not one)"
    if not zipfile.is_zipfile(path):
        return f"{path} is truncated or corrupt (its zip archive has no end; was the copy or the save interrupted?)"
    return None


def load_model(path: str | Path, map_location: str = "cpu") -> Any:
    """The :class:`~kssgan.system.KSSGAN` in ``path`` (safe loader), or :class:`CheckpointError`."""
    from kssgan.system import load_kssgan

    path = Path(path)
    problem = describe_problem(path)
    if problem:
        raise CheckpointError(problem)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return load_kssgan(str(path), map_location)
    except pickle.UnpicklingError as err:
        raise CheckpointError(
            f"{path} holds Python objects beyond plain weights and settings, which the safe loader refuses "
            "(nothing in it was run); use a checkpoint written by `kssgan fit`"
        ) from err
    except (EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"{path} is truncated or corrupt ({type(err).__name__})") from err
    except RuntimeError as err:
        first = _first_line(err)
        if "state_dict" in first:
            raise CheckpointError(f"{path}: its weights do not fit the model its settings describe ({first})") from err
        raise CheckpointError(f"{path} is truncated or corrupt ({first})") from err
    except ValueError as err:  # load_kssgan: no 'kssgan' section
        raise CheckpointError(_first_line(err)) from err
    except (KeyError, TypeError, AttributeError) as err:
        raise CheckpointError(
            f"{path} is not a kssgan checkpoint written by `kssgan fit` "
            f"({type(err).__name__}: {_first_line(err) or 'missing entry'})"
        ) from err


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if "weights_only" in text:  # torch's own advice to disable the safe loader is never passed on
        text = "refused by the safe loader"
    return text[:200]
