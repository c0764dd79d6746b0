"""Experiment tracking: W&B offline unless an API key is configured; never an error, never a hang."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import WandbLogger


def wandb_api_key_configured() -> bool:
    """True when W&B has credentials: WANDB_API_KEY or a netrc entry for its host."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    try:
        return "api.wandb.ai" in netrc.read_text()
    except OSError:
        return False


class KSSGANWandbLogger(WandbLogger):
    """``WandbLogger`` that goes offline by itself when no API key is configured.

    ``offline=None`` (the default) means: online with a key, offline without. W&B's own network
    calls are then never attempted; runs sync later with ``wandb sync``.
    """

    def __init__(self, offline: bool | None = None, **kwargs: Any) -> None:
        if offline is None:
            offline = not wandb_api_key_configured()
        if offline:
            os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        kwargs.setdefault("log_model", False)
        save_dir = kwargs.get("save_dir")
        if save_dir:
            Path(save_dir).mkdir(parents=True, exist_ok=True)
            kwargs["name"] = kwargs.get("name") or Path(save_dir).name  # named after its output folder
        super().__init__(offline=offline, **kwargs)
