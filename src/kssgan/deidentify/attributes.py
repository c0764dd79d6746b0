"""Source attributes (expression, gender, …) of a face the user gave no labels for.

kSS-GAN keeps the source's attributes and changes only the group. For a photo without an
attributes CSV, the attributes are read off the face with the model's own auxiliary domain
classifier — the critic head ``D_cls`` that was trained on real images to predict exactly these
label fields (eq. 5). The group part of its output is ignored (the group is chosen by
:class:`~kssgan.deidentify.groups.GroupChooser`). Estimates are reported per face.

``attribute_reference: person`` (``deidentify --attribute-reference person``) reads each face against
the person's own photos instead: the critic's scores minus the mean of that person's scores, so a
photo is "smiling" when it smiles more than the person's photos do on average. A person whose
photos the critic misreads the same way (a face that looks smiling at rest) is then not released
with the same label in all of them: that person-consistent error is what let the parrot attack link
London's released photos (docs/evaluation.md). The release keeps the change within a person, not
the person's level: a person whose photos all share one value gets the values the critic ranks
highest among them, and a person with one photo gets the value the critic reads most often over
the whole release; a change within the person counts only beyond ``attribute_margin`` of the
critic's scores (:func:`relative_scores`).
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
        return self.decide(self.scores(crops_rgb))

    def scores(self, crops_rgb: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """The critic's raw classifier outputs (N × label width; the group part is never read)."""
        if not self.fields or len(crops_rgb) == 0:
            return np.zeros((len(crops_rgb), self.spec.dim), np.float32)
        x = torch.from_numpy(np.stack(crops_rgb).astype(np.float32)).permute(0, 3, 1, 2) / 127.5 - 1.0
        with torch.inference_mode():
            _, logits = self.critic(x.to(self.device))
        return logits.float().cpu().numpy()

    def decide(self, scores: np.ndarray) -> list[dict[str, Any]]:
        """Each row's field values: the highest one-hot score, a binary score above 0."""
        if not self.fields:
            return [{} for _ in range(len(scores))]
        slices = self.spec.slices()
        out = []
        for row in scores:
            rec: dict[str, Any] = {}
            for f in self.fields:
                part = row[slices[f.name]]
                rec[f.name] = f.values[int(part.argmax())] if f.kind == "onehot" else int(part[0] > 0)
            out.append(rec)
        return out


#: ``attribute_margin`` when none is given: photos take any change within the person (on London a
#: margin of 2 left 8 of 82 people one label in both photos, a trait again); a video's tracks need
#: 2 logits, or their near-identical frames flicker between values (docs/evaluation.md).
PHOTO_ATTRIBUTE_MARGIN = 0.0
VIDEO_ATTRIBUTE_MARGIN = 2.0


def relative_scores(
    scores: np.ndarray, person_mean: np.ndarray, population_mean: np.ndarray, spec: LabelSpec, margin: float = 0.0
) -> np.ndarray:
    """One face's scores read against its person's photos (``attribute_reference: person``), as scores
    :meth:`CriticAttributeEstimator.decide` decides: for each field, the person's *reference value* (the
    value the whole release's mean scores favour; the field's first value where there is no release
    mean, a video) unless, after the person's mean scores are subtracted, another value scores more
    than ``margin`` above it. The margin keeps noise (a video's near-identical frames, two photos of
    one expression) from picking a value; what it takes is a real change within the person."""
    rel = np.asarray(scores, np.float64) - np.asarray(person_mean, np.float64)
    pop = np.asarray(population_mean, np.float64)
    out = np.zeros_like(rel)
    slices = spec.slices()
    for f in spec.fields[1:]:
        part, ref = rel[slices[f.name]], pop[slices[f.name]]
        if f.kind == "onehot":
            tie = int(ref.argmax())  # all equal (no release mean): the first value
            best = int(part.argmax())
            choice = best if part[best] - part[tie] > margin else tie
            out[slices[f.name]] = np.eye(len(part))[choice]
        else:
            tie = 1 if ref[0] > 0 else 0
            flip = part[0] < -margin if tie else part[0] > margin
            out[slices[f.name]] = 1.0 if (tie != flip) else -1.0
    return out
