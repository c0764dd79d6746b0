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

4. **donors** (:func:`donor_check`): a released face must not be any real person's likeness. For
   each released face, the real identities of the dataset other than its source are ranked by the
   recogniser (gallery: each identity's mean original embedding). ``first_ranked_is_donor`` is the
   share whose first-ranked other identity is one of the people the surrogate was made from (the
   donors, :func:`donors_by_group`), against ``chance`` (donors / other identities);
   ``verifies_as_donor`` the share a donor verifies as; ``verifies_as_other.released`` the share
   that verifies as *any* identity other than the source, against ``verifies_as_other.originals``,
   the same share for the original photos (the recogniser's own false-match rate on this gallery).

Metrics go to ``metrics.json`` as ``results[].privacy_release.<recogniser>``, with the inner schema
of ``privacy`` (identification, parrot, verification) plus ``attacker_found_face``, ``withheld``,
``donor`` and ``kept_head_fraction`` (:func:`kept_fraction`).
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
    deidentifier: Any,
    photos: Sequence[np.ndarray],
    identities: Sequence[str],
    alphas: list[np.ndarray | None] | None = None,
    attributes: Sequence[dict[str, str]] | None = None,
    persons: Sequence[str] | None = None,
) -> tuple[list[np.ndarray | None], list[int | None]]:
    """What ``deidentify`` releases for each photo and the group it used; None where it withholds the
    photo (no face found, or, with its similarity check on, an output still matching its source).
    ``alphas``: receives each photo's paste mask (a deidentifier built with ``record_alpha``).
    ``attributes``: each photo's kept attributes as ``deidentify --attributes`` gives them (the data
    holder's labels); None: read off each face, as ``deidentify`` does without a CSV.
    ``persons``: whose each photo is (default: ``identities``); with ``attribute_reference`` or
    ``follow_reference`` person every photo is read first, as ``deidentify`` reads its inputs, so that
    each is read against its person's photos (strangers: against their own, the model knowing none of them)."""
    from kssgan.deidentify.pipeline import Frame

    released: list[np.ndarray | None] = []
    groups: list[int | None] = []
    given = attributes if attributes is not None else [{} for _ in photos]
    whose = list(persons) if persons is not None else list(identities)
    frames = [
        Frame(np.ascontiguousarray(photo), key=f"photo{i}", identity=identity, attributes=dict(attrs), person=who)
        for i, (photo, identity, attrs, who) in enumerate(zip(photos, identities, given, whose, strict=True))
    ]
    if getattr(deidentifier, "reads_people", False):
        deidentifier.forget_people()  # this release's people only (a deidentifier may release twice)
        deidentifier.observe_people(frames)
    for frame in frames:
        [(image, faces)] = deidentifier.process([frame])
        still_matching = any(f.match for f in faces)
        released.append(image if faces and not still_matching else None)
        groups.append(faces[0].group if faces else None)
        if alphas is not None:
            alphas.append(deidentifier.alphas[0] if getattr(deidentifier, "alphas", None) else None)
    return released, groups


def given_attributes(manifest: Any, spec: Any) -> list[dict[str, str]]:
    """Each manifest row's values of ``spec``'s kept fields (every field but ``group``) that the
    manifest holds, as ``deidentify --attributes`` would pass them: the data holder's own labels."""
    names = [f.name for f in spec.fields[1:] if f.name in manifest.columns]
    rows = manifest[names].astype(str).to_dict("records") if names else [{} for _ in range(len(manifest))]
    return [{k: v for k, v in r.items() if v not in ("", "nan")} for r in rows]


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


def parrot_on(
    emb: np.ndarray, found: np.ndarray, ids: np.ndarray, probe_rows: np.ndarray, max_rank: int = 10
) -> dict[str, Any]:
    """The parrot attack (:func:`~kssgan.evaluate.privacy.parrot_split`) over the photos with a face,
    with only ``probe_rows`` as probes (e.g. strangers against a gallery of the whole population);
    rank-1's clustered interval is by person."""
    rows = np.flatnonzero(found)
    gallery, probe = privacy.parrot_split(ids[rows])
    gal, prb = rows[gallery], rows[probe]
    prb = prb[probe_rows[prb] & np.isin(ids[prb], ids[gal])]
    if not len(prb):
        return {"n_probes": 0}
    ident = privacy.identify(emb[gal], ids[gal], emb[prb], ids[prb], max_rank, ids[prb], "person")
    return ident.to_dict()


def release_embeddings(
    released: Sequence[np.ndarray | None],
    recognisers: dict[str, Any],
    detector: Any,
    quality: int = 75,
    scale: float = 0.5,
) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """The attacker's :func:`embed_faces` of one release, per recogniser: ``plain`` and, with
    ``quality``, ``after_attack`` (:func:`attacker_view`)."""
    views = {"plain": attacker_faces(released, detector)}
    if quality:
        shown = [None if r is None else attacker_view(r, quality, scale) for r in released]
        views["after_attack"] = attacker_faces(shown, detector)
    return {rname: {kind: embed_faces(f, rec) for kind, f in views.items()} for rname, rec in recognisers.items()}


def parrot_over_draws(
    draws: Sequence[tuple[np.ndarray, np.ndarray]],
    identities: Sequence[str],
    clusters: Sequence[object],
    max_rank: int = 10,
) -> dict[str, Any]:
    """The parrot attack over several releases of the same photos (``draws``: each release's
    :func:`embed_faces`; they differ in the release's own randomness, the paste jitter).

    What it estimates is the probability that the parrot attack re-identifies a released photo,
    averaged over the release's randomness: one release draws that once per photo, so its rank-1
    carries the noise of which group member a tie falls to; here every draw of each probe photo is a
    probe (its clustered interval still by group, so the draws of one group count as one cluster).
    The attacker is stronger than with one draw: it releases its gallery photos every time and
    averages each photo's (L2-normalised) embeddings over the draws, cancelling the jitter on its
    own side. The split into gallery and probe photos is :func:`~kssgan.evaluate.privacy.parrot_split`
    over the photos with a face in at least one draw."""
    ids = np.asarray([str(i) for i in identities])
    groups = np.asarray([str(c) for c in clusters])
    found = np.stack([f for _, f in draws])  # R x N
    embs = np.stack([privacy._l2n(e) for e, _ in draws])  # R x N x D
    any_found = found.any(0)
    rows = np.flatnonzero(any_found)
    if len(rows) < 2:
        return {"n_probes": 0, "draws": len(draws)}
    gallery, probe = privacy.parrot_split(ids[rows])
    gal, prb = rows[gallery], rows[probe]
    gal_emb = np.stack([(embs[:, i][found[:, i]]).mean(0) for i in gal])
    prb = prb[np.isin(ids[prb], ids[gal])]
    p_emb, p_ids, p_groups = [], [], []
    for r in range(len(draws)):
        for i in prb:
            if found[r, i]:
                p_emb.append(embs[r, i])
                p_ids.append(ids[i])
                p_groups.append(groups[i])
    if not p_emb:
        return {"n_probes": 0, "draws": len(draws)}
    ident = privacy.identify(gal_emb, ids[gal], np.stack(p_emb), p_ids, max_rank, p_groups)
    return ident.to_dict() | {
        "draws": len(draws),
        "probe_photos": len(prb),
        "note": "every draw of each probe photo is a probe; gallery: each photo's embedding averaged over the draws",
    }


def strangers_per_group(groups: np.ndarray, identities: Sequence[str]) -> dict[int, int]:
    """How many distinct strangers have a photo released as each group (``groups``: one per photo,
    -1 where none was chosen)."""
    people: dict[int, set[str]] = {}
    for g, ident in zip(groups.tolist(), identities, strict=True):
        if g >= 0:
            people.setdefault(int(g), set()).add(str(ident))
    return {g: len(p) for g, p in people.items()}


def strangers_bound(groups: np.ndarray, identities: Sequence[str], found: np.ndarray) -> float | None:
    """What the parrot attack among strangers alone gives at best for a release that is one face per
    group: the mean, over probes, of 1 / the strangers whose photos share the probe's group."""
    share = strangers_per_group(groups, identities)
    bound = [1.0 / share[int(g)] for g, f in zip(groups.tolist(), found, strict=True) if f and g >= 0]
    return float(np.mean(bound)) if bound else None


def donors_by_group(model: Any, identity_to_group: dict[str, int]) -> dict[int, list[str]]:
    """The real people whose photos each group's released face is made from: the members of the
    group whose mean it receives (``surrogate_images`` ``all``/``medoid``; ``own`` is the group
    itself); none for drawn synthetic faces, and none for the paper's G(x, c) (it has no donors:
    its output derives from the source alone)."""
    bank = getattr(model, "surrogates", None)
    hp = getattr(model, "hparams", {})
    if bank is None or str(getattr(hp, "surrogate_images", "all")) == "synthetic":
        return {}
    members: dict[int, list[str]] = {}
    for ident, group in identity_to_group.items():
        members.setdefault(int(group), []).append(str(ident))
    source = [int(g) for g in bank.source_group.tolist()]
    return {g: sorted(members.get(source[g], [])) for g in range(len(source))}


def _identity_means(emb: np.ndarray, found: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    names = np.unique(ids[found])
    means = np.stack([emb[found & (ids == n)].mean(0) for n in names]) if len(names) else emb[:0]
    return means, names


def _pairwise(rule: Callable[[np.ndarray, np.ndarray], Any], probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """P×G values of a recogniser's row-wise ``rule`` (similarity, is_match) for every pair."""
    a = np.repeat(probes, len(gallery), axis=0)
    b = np.tile(gallery, (len(probes), 1))
    return np.asarray(rule(a, b)).reshape(len(probes), len(gallery))


def _verifies(recogniser: Any, probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    """P×G: does probe p verify as gallery entry g (the recogniser's own rule)?"""
    if not len(probes) or not len(gallery):
        return np.zeros((len(probes), len(gallery)), bool)
    return _pairwise(recogniser.is_match, probes, gallery).astype(bool)


def donor_check(
    originals: tuple[np.ndarray, np.ndarray],
    released: tuple[np.ndarray, np.ndarray],
    identities: Sequence[str],
    donors: Sequence[Sequence[str]],
    recogniser: Any,
) -> dict[str, Any]:
    """Faces of nobody (module doc, 4.): ``donors[i]``: the people photo i's released face was made
    from (empty: none)."""
    orig_emb, orig_found = originals
    rel_emb, rel_found = released
    ids = np.asarray([str(i) for i in identities])
    means, names = _identity_means(orig_emb, orig_found, ids)
    probes = np.flatnonzero(rel_found & np.isin(ids, names))
    out: dict[str, Any] = {"gallery_identities": len(names), "probes": len(probes)}
    if len(names) < 2 or not len(probes):
        return out
    sims = _pairwise(recogniser.similarity, rel_emb[probes], means).astype(np.float64)
    own = names[None, :] == ids[probes][:, None]
    first = np.where(own, -np.inf, sims).argmax(1)
    is_donor = np.array([names[f] in set(donors[p]) for p, f in zip(probes, first, strict=True)])
    n_donors = np.array([len(set(donors[p]) & (set(names) - {ids[p]})) for p in probes])
    chance = float(np.mean(n_donors / (len(names) - 1)))
    ver = _verifies(recogniser, rel_emb[probes], means) & ~own
    donor_cols = np.array([[n in set(donors[p]) for n in names] for p in probes], bool)
    o_probes = np.flatnonzero(orig_found & np.isin(ids, names))
    o_own = names[None, :] == ids[o_probes][:, None]
    o_ver = _verifies(recogniser, orig_emb[o_probes], means) & ~o_own
    first_share = privacy.proportion(float(is_donor.sum()), len(probes))
    return out | {
        "first_ranked_is_donor": first_share.to_dict(),
        "chance": chance,
        "ratio_to_chance": float(first_share.value / chance) if chance > 0 else None,
        "verifies_as_donor": privacy.proportion(float((ver & donor_cols).any(1).sum()), len(probes)).to_dict(),
        "verifies_as_other": {
            "released": privacy.proportion(float(ver.any(1).sum()), len(probes)).to_dict(),
            "originals": privacy.proportion(float(o_ver.any(1).sum()), len(o_probes)).to_dict(),
        },
        "note": "gallery: each identity's mean original embedding; the source itself is left out",
    }


def head_boxes(photos: Sequence[np.ndarray], detector: Any) -> list[tuple[int, int, int, int] | None]:
    """Each original photo's head region ``(x0, y0, x1, y1)``: the largest face's detection box
    doubled about its centre (face, hair, ears, neck), clipped to the photo; None without a face."""
    from kssgan.faces.detect import select_face

    boxes: list[tuple[int, int, int, int] | None] = []
    for photo in photos:
        face = select_face(detector.detect(photo), photo.shape)[0]
        if face is None:
            boxes.append(None)
            continue
        boxes.append(face.region(0.5, photo.shape))  # doubled about its centre
    return boxes


def kept_fraction(
    originals: Sequence[np.ndarray],
    released: Sequence[np.ndarray | None],
    boxes: Sequence[tuple[int, int, int, int] | None],
) -> float:
    """Mean share of the head region (:func:`head_boxes`) kept unchanged (≤ 2 grey levels in every
    channel) in the released photos: what is left of the source there is what an attacker may use."""
    shares = []
    for orig, rel, box in zip(originals, released, boxes, strict=True):
        if rel is None or box is None:
            continue
        x0, y0, x1, y1 = box
        diff = np.abs(orig[y0:y1, x0:x1].astype(np.int16) - rel[y0:y1, x0:x1].astype(np.int16))
        shares.append(float(np.mean(diff.max(axis=2) <= 2)))
    return float(np.mean(shares)) if shares else float("nan")


def attacker_view(image_bgr: np.ndarray, quality: int, scale: float) -> np.ndarray:
    """A released photo as the attacker re-encodes it: JPEG ``quality`` and resized by ``scale`` and
    back (:func:`kssgan.evaluate.attacks.degrade`)."""
    from kssgan.evaluate.attacks import degrade

    return np.ascontiguousarray(degrade(image_bgr[None, :, :, ::-1].copy(), quality, scale)[0][:, :, ::-1])


def attack_release(
    released: Sequence[np.ndarray | None],
    originals: dict[str, tuple[np.ndarray, np.ndarray]],
    identities: Sequence[str],
    clusters: Sequence[object],
    recognisers: dict[str, Any],
    detector: Any,
    quality: int = 75,
    scale: float = 0.5,
    max_rank: int = 10,
    donors: Sequence[Sequence[str]] | None = None,
) -> tuple[dict[str, Any], dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Every recogniser's :func:`figures` (and :func:`donor_check` with ``donors``) of one release,
    plain and, with ``quality``, after :func:`attacker_view` (``entry["after_attack"]``);
    ``originals``: each recogniser's :func:`embed_faces` of the original photos. Also returns the
    plain release's embeddings, for attacks that reuse them."""
    mask = np.array([r is not None for r in released])
    faces = {"plain": attacker_faces(released, detector)}
    if quality:
        shown = [None if r is None else attacker_view(r, quality, scale) for r in released]
        faces["after_attack"] = attacker_faces(shown, detector)
    entries: dict[str, Any] = {}
    plain: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for rname, rec in recognisers.items():
        found = {}
        for kind, f in faces.items():
            emb = embed_faces(f, rec)
            plain.setdefault(rname, emb)
            found[kind] = figures(originals[rname], emb, mask, identities, clusters, rec, max_rank)
            if donors is not None:
                found[kind]["donor"] = donor_check(originals[rname], emb, identities, donors, rec)
        entry = found["plain"]
        if "after_attack" in found:
            entry["after_attack"] = found["after_attack"] | {
                "preprocessing": f"JPEG quality {quality}, resized to {scale:g}x and back"
            }
        entries[rname] = entry
    return entries, plain


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


def headline(entry_of: dict[str, Any]) -> dict[str, Any]:
    """The headline figures of one mask's release, per recogniser (plain and after the attack)."""
    out: dict[str, Any] = {}
    for rname, e in entry_of.items():
        cell: dict[str, Any] = {}
        for kind, fig in (("plain", e), ("after_attack", e.get("after_attack"))):
            if fig:
                cell[kind] = {
                    "parrot_rank1": fig.get("parrot", {}).get("rank1", {}).get("value"),
                    "parrot_upper": fig.get("parrot", {}).get("rank1_clustered", {}).get("ci_high"),
                    "rank1": fig.get("identification", {}).get("rank1", {}).get("value"),
                    "protection_rate": fig["verification"]["protection_rate"],
                }
                if "parrot_draws" in fig:
                    cell[kind]["parrot_draws_rank1"] = fig["parrot_draws"].get("rank1", {}).get("value")
                    cell[kind]["parrot_draws_upper"] = fig["parrot_draws"].get("rank1_clustered", {}).get("ci_high")
                    cell[kind]["draws"] = fig["parrot_draws"].get("draws")
        out[rname] = cell
    return out


def release_summary(
    ckpt: str | Path,
    prepared_root: str | Path,
    recognisers: dict[str, Any],
    jpeg_quality: int = 75,
    scale: float = 0.5,
    fidelity: bool = True,
    draws: int = 1,
) -> dict[str, Any]:
    """The headline release-level figures of one checkpoint on its own prepared dataset's full
    photos (the closed set; strangers left out), with deidentify's default options: per recogniser
    the parrot rank-1 and its clustered upper bound, rank-1 against the originals and protection,
    plain and after the attacker's JPEG/resize (:func:`headline`); with ``fidelity``, what the
    release keeps of its sources (:func:`kssgan.evaluate.fidelity.release_fidelity`); with ``draws``
    > 1, also the parrot attack over that many releases (:func:`parrot_over_draws`, each release its
    own jitter seed). ``{"not_run": why}`` where the photos are not here."""
    from dataclasses import asdict

    from kssgan.data.prepared import PreparedDataset
    from kssgan.data.readers import STRANGER_SPLIT
    from kssgan.deidentify.options import DeidentifyOptions
    from kssgan.deidentify.pipeline import Deidentifier
    from kssgan.faces.detect import YuNetDetector

    data = PreparedDataset.open(prepared_root)
    man = data.manifest[data.manifest["split"].astype(str) != STRANGER_SPLIT]
    photos, why = full_photos(Path(prepared_root), man["source"].astype(str).tolist())
    if photos is None:
        return {"not_run": why}
    ids = man["identity"].astype(str).tolist()
    clusters = [data.groups.identity_to_group.get(i, f"person:{i}") for i in ids]
    deid = Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(), record_alpha=fidelity)
    alphas: list[np.ndarray | None] = []
    released, _ = release_photos(deid, photos, ids, alphas)
    detector = YuNetDetector()
    originals = attacker_faces(photos, detector)
    orig = {rname: embed_faces(originals, rec) for rname, rec in recognisers.items()}
    entries, _ = attack_release(released, orig, ids, clusters, recognisers, detector, jpeg_quality, scale)
    if draws > 1:
        embs = [release_embeddings(released, recognisers, detector, jpeg_quality, scale)]
        for r in range(1, draws):
            if deid.jitter_draws == 0:  # nothing random in the release (region frame): the same photos
                embs.append(embs[0])
                continue
            again = Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(jitter_seed=r))
            redrawn, _ = release_photos(again, photos, ids)
            embs.append(release_embeddings(redrawn, recognisers, detector, jpeg_quality, scale))
        for rname, entry in entries.items():
            for kind in embs[0][rname]:
                fig = entry if kind == "plain" else entry.get(kind)
                if fig is not None:
                    fig["parrot_draws"] = parrot_over_draws([e[rname][kind] for e in embs], ids, clusters)
    out = {
        "photos": len(photos),
        "withheld": int(sum(r is None for r in released)),
        "kept_head_fraction": round(kept_fraction(photos, released, head_boxes(photos, detector)), 4),
        "mask": asdict(deid.options.mask),
        "paste_jitter": deid.options.paste_jitter,
        "release_options": {n: getattr(deid.options, n) for n in ("follow", "colour", "blend", "upscale", "sharpen")},
    } | headline(entries)
    if fidelity:
        from kssgan.evaluate.fidelity import against

        out["fidelity"] = against(photos, detector)(released, alphas)
    return out


__all__ = [
    "attack_release",
    "attacker_faces",
    "attacker_view",
    "donor_check",
    "donors_by_group",
    "embed_faces",
    "figures",
    "full_photos",
    "given_attributes",
    "head_boxes",
    "headline",
    "kept_fraction",
    "parrot_on",
    "parrot_over_draws",
    "release_embeddings",
    "release_level_privacy",
    "release_photos",
    "release_summary",
    "strangers_bound",
    "strangers_per_group",
]
