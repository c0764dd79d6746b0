"""Typed data shared by the evaluation pipeline and the report: what ``kssgan evaluate`` was told
(:class:`EvalSettings`), what each method produced (:class:`MethodOutput`) and which checkpoint
produced it (:class:`CheckpointRecord`). The report reads these; it never imports the pipeline."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class EvalSettings:
    """Everything ``kssgan evaluate`` can be told; a YAML file (``--config``) may set any field."""

    ks: list[int] = field(default_factory=lambda: [2, 3, 5, 10])
    recognisers: list[str] = field(default_factory=lambda: ["sface", "dlib"])
    insightface_dir: str | None = None
    split: str = "all"  # the release set: every ok image, or one split
    image_size: int | None = None  # working resolution; default: the checkpoint's, else the crops'
    max_rank: int = 10
    blur_sigma_fraction: float = 0.06  # σ of the Gaussian blur, as a fraction of the crop side
    pixelate_blocks: int = 8  # mosaic cells per side
    eigen_components: float = 0.95  # k-Same-Eigen: variance kept (< 1) or number of eigenfaces
    fid_inception_weights: str | None = None  # Inception FID only with user-supplied weights
    kid_subsets: int = 20
    kid_subset_size: int = 100
    expression_column: str = "expression"
    gender: bool = True
    detection: bool = True
    sample_rows: int = 6
    sample_k: int | None = None  # k of the sample grid; default: the checkpoint's k, else the first k
    originals_in_grid: bool = True  # the grid shows the source faces (only in this user's report)
    batch_size: int = 32
    seed: int = 0
    progress: bool = True
    # the attacker's preprocessing of released images (evaluate/attacks.py); 0 disables
    attacker_jpeg_quality: int = 75
    attacker_scale: float = 0.5
    # attack the full photos `deidentify` writes for each checkpoint (evaluate/release_level.py); it
    # runs where the dataset's raw photos are on this machine, and is noted as not run elsewhere
    release_level: bool = True
    # the release's mask (deidentify's --mask): None keeps deidentify's defaults (DeidentifyOptions)
    release_region: str | None = None  # head | inner
    release_reach: float | None = None
    release_jitter: float | None = None  # deidentify's --paste-jitter
    release_follow: str | None = None  # deidentify's --follow: none | expression | shape
    release_follow_reference: str | None = None  # deidentify's --follow-reference: source | person | rest
    release_colour: str | None = None  # deidentify's --colour: none | match
    release_blend: str | None = None  # deidentify's --blend: alpha | poisson
    release_sharpen: float | None = None  # deidentify's --sharpen (None: deidentify's default)
    release_upscale: bool | None = None  # deidentify's --upscale (None: deidentify's default)
    # the kept attributes (expression, …) of each released photo: "estimated" (read off the face as
    # `deidentify` reads what it is not given: the checkpoint's release_attribute_reference),
    # "population" (the critic's own reading), "person" (read against each person's own photos:
    # `deidentify --attribute-reference person` with identities known; strangers against their own
    # photos too) or "given" (the dataset's own labels, as `deidentify --attributes` passes a data
    # holder's)
    release_labels: str = "estimated"
    # further releases attacked too, for the privacy-vs-kept plot: "REGION[:REACH[:JITTER]]", e.g. "inner",
    # "head:1.3", "head:1.3:0", or deidentify options as "name=value,...", e.g. "follow=shape,colour=match"
    release_sweep: list[str] = field(default_factory=list)
    # releases of the same photos (each its own paste-jitter draw) the default release's parrot attack
    # is also averaged over (privacy_release.<recogniser>.parrot_draws); 1: the one release only
    release_draws: int = 1
    # release and attack the identities `kssgan prepare --open-set-fraction` held out (split stranger)
    open_set: bool = True
    # how the release follows its source (evaluate/fidelity.py): geometry, skin tone, kind, sharpness, seam
    fidelity: bool = True


@dataclass
class MethodOutput:
    method: str
    k: int | None  # None: does not depend on k
    images: np.ndarray
    note: str = ""


@dataclass
class CheckpointRecord:
    """One evaluated checkpoint, as listed in ``metrics.json``."""

    path: str
    method: str
    k: int
    sha256: str
    prepare: dict[str, Any] | None = None  # checkpoint["kssgan"]["prepare"]: how its faces were framed


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
