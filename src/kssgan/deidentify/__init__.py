"""De-identification of real photos, folders and videos with a trained kSS-GAN generator.

detect (``faces.detect``) → align (``faces.align``, the template ``kssgan prepare`` used) →
choose the k-Same group (:mod:`.groups`) → domain label (``LabelSpec``) → G (:mod:`.backends`,
torch or onnxruntime) → inverse similarity warp + feathered blend (:mod:`.blend`). Videos add an
IoU/embedding tracker (:mod:`.tracker`) so one person keeps one group through a clip.
"""

from __future__ import annotations

from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions

__all__ = ["DeidentifyError", "DeidentifyOptions"]
