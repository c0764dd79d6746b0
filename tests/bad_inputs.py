"""The bad-input corpus, generated (no stored binaries): checkpoints and media files that a user may
hand to kssgan by mistake or by malice. Each maker writes into a folder and returns the paths."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch


class _Payload:
    """Unpickling this runs ``open(marker, "w")``: proof that a loader executed the pickle."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_bad_checkpoints(folder: Path, marker: Path) -> dict[str, Path]:
    """``kind -> path``: a zip checkpoint with a pickle payload, a raw pickle payload, random bytes, an
    empty file, a truncated checkpoint and a foreign (non-kssgan) dict."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {k: folder / f"{k}.ckpt" for k in ("pickle_payload", "raw_pickle", "random", "empty", "truncated")}
    paths["foreign_dict"] = folder / "foreign_dict.ckpt"
    torch.save({"state_dict": {}, "evil": _Payload(marker)}, paths["pickle_payload"])
    paths["raw_pickle"].write_bytes(pickle.dumps({"evil": _Payload(marker)}))
    paths["random"].write_bytes(os.urandom(4096))
    paths["empty"].write_bytes(b"")
    torch.save({"state_dict": {"w": torch.zeros(4096)}, "epoch": 3}, paths["foreign_dict"])
    data = paths["foreign_dict"].read_bytes()
    paths["truncated"].write_bytes(data[: len(data) // 2])
    return paths
