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


def attacker_embeddings(
    photos: Sequence[np.ndarray | None], recogniser: Any, detector: Any
) -> tuple[np.ndarray, np.ndarray]:
    """Each photo's face as the attacker gets it: detect, keep the largest, align, embed.
    Returns N×D embeddings (zeros where no face) and the mask of photos with a face."""
    from kssgan.faces.align import align_faces
    from kssgan.faces.detect import select_face

    crops, found = [], np.zeros(len(photos), bool)
    for i, photo in enumerate(photos):
        if photo is None:
            continue
        face, _ = select_face(detector.detect(photo), photo.shape)
        if face is None:
            continue
        crops.append(align_faces([photo], [np.asarray(face.landmarks, np.float64)], 112, margin=0.0)[0])
        found[i] = True
    emb = np.zeros((len(photos), int(recogniser.dim)), np.float32)
    if crops:
        emb[found] = recogniser.embed(crops)
    return emb, found


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
    """The figures of one recogniser on released full photos (``degrade``: the attacker's own
    preprocessing of each released photo first, e.g. JPEG and resize)."""
    ids = np.asarray([str(i) for i in identities])
    groups = np.asarray([str(c) for c in clusters])
    shown = [None if r is None else (degrade(r) if degrade else r) for r in released]
    orig_emb, orig_found = attacker_embeddings(originals, recogniser, detector)
    rel_emb, rel_found = attacker_embeddings(shown, recogniser, detector)
    released_mask = np.array([r is not None for r in released])
    usable = rel_found & orig_found
    out: dict[str, Any] = {
        "photos": len(ids),
        "withheld": int((~released_mask).sum()),
        "attacker_found_face": privacy.proportion(float(rel_found.sum()), int(released_mask.sum())).to_dict(),
    }
    gallery = orig_found
    if usable.any() and gallery.any():
        probe_ids = ids[usable]
        known = np.isin(probe_ids, ids[gallery])
        ident = privacy.identify(
            orig_emb[gallery], ids[gallery], rel_emb[usable][known], probe_ids[known], max_rank, groups[usable][known]
        )
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


__all__ = ["attacker_embeddings", "full_photos", "release_level_privacy", "release_photos"]
