"""What a kssgan checkpoint carries beyond Lightning's state: ``checkpoint["kssgan"]``.

``label_spec`` and ``groups`` (the domain labels and the k-Same grouping, kept out of the
hyper-parameters that loggers publish), ``image_size`` and ``prepare`` (how the training faces were
framed, so ``deidentify`` and ``evaluate`` frame faces the same way) and ``surrogates`` (what the
surrogate bank was built from: for drawn faces their latents, detection scores, genders, and the
skin-tone shift each was toned by). See ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Any

CHECKPOINT_KEY = "kssgan"
FORMAT_VERSION = 1


class CheckpointMetadata:
    """Mixed into the LightningModule: writes and reads ``checkpoint["kssgan"]``."""

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.groups is None and CHECKPOINT_KEY in checkpoint:
            self.groups = checkpoint[CHECKPOINT_KEY]["groups"]
        if self.prepare_info is None and CHECKPOINT_KEY in checkpoint:
            self.prepare_info = checkpoint[CHECKPOINT_KEY].get("prepare")
        if getattr(self, "surrogate_record", None) is None and CHECKPOINT_KEY in checkpoint:
            self.surrogate_record = checkpoint[CHECKPOINT_KEY].get("surrogates")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if self.prepare_info is None:  # how the training faces were framed: what inference must repeat
            dm = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
            self.prepare_info = getattr(dm, "prepare_record", None)
        checkpoint[CHECKPOINT_KEY] = {
            "format_version": FORMAT_VERSION,
            "label_spec": self.spec.to_dict(),
            "groups": self.groups,
            "image_size": self.hparams.image_size,
            "prepare": self.prepare_info,
            "surrogates": getattr(self, "surrogate_record", None),
        }
