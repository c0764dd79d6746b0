"""Source attributes (expression, gender, …) of a face the user gave no labels for.

kSS-GAN keeps the source's attributes and changes only the group. For a photo without an
attributes CSV, the attributes are read off the face with the model's own auxiliary domain
classifier — the critic head ``D_cls`` that was trained on real images to predict exactly these
label fields (eq. 5). The group part of its output is ignored (the group is chosen by
:class:`~kssgan.deidentify.groups.GroupChooser`). Estimates are reported per face.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from kssgan.data.labels import LabelSpec


class CriticAttributeEstimator:
    """Predicts the non-group label fields of aligned RGB crops with the checkpoint's critic."""

    def __init__(self, critic: torch.nn.Module, spec: LabelSpec, device: str = "cpu") -> None:
        self.critic = critic.to(device).eval()
        self.spec, self.device = spec, torch.device(device)
        self.fields = [f for f in spec.fields[1:]]

    @property
    def useful(self) -> bool:
        return bool(self.fields)

    def __call__(self, crops_rgb: list[np.ndarray] | np.ndarray) -> list[dict[str, Any]]:
        if not self.fields or len(crops_rgb) == 0:
            return [{} for _ in range(len(crops_rgb))]
        x = torch.from_numpy(np.stack(crops_rgb).astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0
        with torch.inference_mode():
            _, logits = self.critic(x.to(self.device))
        logits = logits.float().cpu().numpy()
        slices = self.spec.slices()
        out = []
        for row in logits:
            rec: dict[str, Any] = {}
            for f in self.fields:
                part = row[slices[f.name]]
                rec[f.name] = f.values[int(part.argmax())] if f.kind == "onehot" else int(part[0] > 0)
            out.append(rec)
        return out
