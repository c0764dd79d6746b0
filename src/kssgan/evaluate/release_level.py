"""The release-level attack: the photos ``kssgan deidentify`` writes, attacked as an attacker would.

The crop-level figures of ``kssgan evaluate`` attack G's aligned crop with the dataset's labels.
A data holder releases whole photos, and what the paste-back keeps from the source (hair line,
ears, outline, background) is part of what an attacker sees. Here:

1. the dataset's own **full photos** (``<raw_root>/<source>`` of prepare.json) go through the same
   code as ``deidentify`` (:class:`~kssgan.deidentify.pipeline.Deidentifier`): the group from the
   person's identity (the closed-set case ``--attributes`` gives), the kept attributes read off each
   face by the model's own classifier, as in deployment. A photo in which no face is found is
   withheld, as ``deidentify`` withholds it;
2. the attacker **detects and aligns** the face in each released photo (YuNet, the largest face),
   and in each original photo, and embeds both with each recogniser;
3. rank-1 against the originals, the **parrot attack** (the attacker releases its own gallery the
   same way: the half split of :func:`~kssgan.evaluate.privacy.parrot_attack`), and protection
   (the released photo does not verify as its source), plain and after the attacker's JPEG and
   resize. A released photo in which the attacker finds no face counts as protected, and is left
   out of the identification probes; ``attacker_found_face`` says how many were.

Metrics go to ``metrics.json`` as ``results[].privacy_release.<recogniser>``, with the inner schema
of ``privacy`` (identification, parrot, verification) plus ``attacker_found_face`` and ``withheld``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kssgan.evaluate import privacy


def full_photos(root: Path, sources: Sequence[str]) -> tuple[list[np.ndarray] | None, str]:
    """The original photos of ``sources`` (BGR), or None and why (raw data not on this machine)."""
    import json

    from kssgan.data.readers.image_io import ImageLoadError, load_image

    info_path = Path(root) / "prepare.json"
    raw = json.loads(info_path.read_text()).get("raw_root") if info_path.is_file() else None
    if not raw or not Path(raw).is_dir():
        return None, f"the full photos are not here (raw_root {raw!r} of {info_path})"
    photos = []
    for source in sources:
        try:
            photos.append(load_image(Path(raw) / source)[0])
        except ImageLoadError as err:
            return None, f"{source}: {err.reason}"
    return photos, ""


def release_photos(
    deidentifier: Any, photos: Sequence[np.ndarray], identities: Sequence[str]
) -> tuple[list[np.ndarray | None], list[int | None]]:
    """What ``deidentify`` releases for each photo and the group it used; None where it withholds the
    photo (no face found, or, with its similarity check on, an output still matching its source)."""
    from kssgan.deidentify.pipeline import Frame

    released: list[np.ndarray | None] = []
    groups: list[int | None] = []
    for i, (photo, identity) in enumerate(zip(photos, identities, strict=True)):
        [(image, faces)] = deidentifier.process(
            [Frame(np.ascontiguousarray(photo), key=f"photo{i}", identity=identity)]
        )
        still_matching = any(f.match for f in faces)
        released.append(image if faces and not still_matching else None)
        groups.append(faces[0].group if faces else None)
    return released, groups


def attacker_faces(photos: Sequence[np.ndarray | None], detector: Any) -> list[np.ndarray | None]:
    """Each photo's face as the attacker gets it: detected, the largest kept, aligned to 112×112
    (ArcFace framing, what every recogniser takes); None for a withheld photo or one without a face.
    Detection runs once per photo, whatever the number of recognisers."""
    from kssgan.faces.align import align_faces
    from kssgan.faces.detect import select_face

    faces: list[np.ndarray | None] = []
    for photo in photos:
        face = None if photo is None else select_face(detector.detect(photo), photo.shape)[0]
        lms = None if face is None else np.asarray(face.landmarks, np.float64)
        faces.append(None if lms is None else align_faces([photo], [lms], 112, margin=0.0)[0])
    return faces


def embed_faces(faces: Sequence[np.ndarray | None], recogniser: Any) -> tuple[np.ndarray, np.ndarray]:
    """N×D embeddings of :func:`attacker_faces` (zeros where there is none) and the mask of faces."""
    found = np.array([f is not None for f in faces], bool)
    emb = np.zeros((len(faces), int(recogniser.dim)), np.float32)
    if found.any():
        emb[found] = recogniser.embed([f for f in faces if f is not None])
    return emb, found


def figures(
    originals: tuple[np.ndarray, np.ndarray],
    released: tuple[np.ndarray, np.ndarray],
    released_mask: np.ndarray,
    identities: Sequence[str],
    clusters: Sequence[object],
    recogniser: Any,
    max_rank: int = 10,
) -> dict[str, Any]:
    """The figures of one recogniser from the attacker's embeddings (:func:`embed_faces`) of the
    original and the released photos; ``released_mask``: the photos that were released at all."""
    orig_emb, orig_found = originals
    rel_emb, rel_found = released
    ids = np.asarray([str(i) for i in identities])
    groups = np.asarray([str(c) for c in clusters])
    usable = rel_found & orig_found
    out: dict[str, Any] = {
        "photos": len(ids),
        "withheld": int((~released_mask).sum()),
        "attacker_found_face": privacy.proportion(float(rel_found.sum()), int(released_mask.sum())).to_dict(),
    }
    if usable.any():
        probe_ids = ids[usable]
        known = np.isin(probe_ids, ids[orig_found])
        ident = privacy.identify(
            orig_emb[orig_found], ids[orig_found], rel_emb[usable][known], probe_ids[known], max_rank,
            groups[usable][known],
        )  # fmt: skip
        out["identification"] = ident.to_dict()
    if rel_found.sum() >= 2:
        parrot = privacy.parrot_attack(rel_emb[rel_found], ids[rel_found], max_rank, groups[rel_found])
        out["parrot"] = parrot.to_dict()
    pairs = released_mask & orig_found
    matched = np.zeros(len(ids), bool)
    both = pairs & rel_found
    if both.any():
        matched[both] = np.asarray(recogniser.is_match(orig_emb[both], rel_emb[both]), bool)
    share = privacy.proportion(float(matched[pairs].sum()), int(pairs.sum()))
    out["verification"] = {
        "match": share.to_dict(),
        "protection_rate": 1.0 - share.value,
        "threshold": float(recogniser.threshold),
        "metric": str(recogniser.metric),
        "note": "a released photo in which the attacker finds no face counts as protected",
    }
    return out


def release_level_privacy(
    originals: Sequence[np.ndarray],
    released: Sequence[np.ndarray | None],
    identities: Sequence[str],
    clusters: Sequence[object],
    recogniser: Any,
    detector: Any,
    max_rank: int = 10,
    degrade: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """:func:`figures` of one recogniser straight from photos (``degrade``: the attacker's own
    preprocessing of each released photo first, e.g. JPEG and resize)."""
    shown = [None if r is None else (degrade(r) if degrade else r) for r in released]
    mask = np.array([r is not None for r in released])
    orig = embed_faces(attacker_faces(originals, detector), recogniser)
    rel = embed_faces(attacker_faces(shown, detector), recogniser)
    return figures(orig, rel, mask, identities, clusters, recogniser, max_rank)


__all__ = ["attacker_faces", "embed_faces", "figures", "full_photos", "release_level_privacy", "release_photos"]
