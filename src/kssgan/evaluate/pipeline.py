"""``kssgan evaluate``: de-identify one release set with every method, measure, write the report.

Methods (all on the same aligned crops, at the same resolution, with the same groups):

* ``original`` — the images themselves (the reference: re-identification ≈ 1).
* ``blur``, ``pixelate`` — do not depend on k (drawn as flat lines in the plots).
* ``k-same-pixel``, ``k-same-eigen`` — at every k of the list, on the grouping of that k.
* ``kss-gan`` (Siamese loss) and ``stargan-l1`` (L1 cycle loss, the ablation) — one checkpoint is
  trained for one grouping, so each is evaluated only at its own k, with the checkpoint's
  ``groups``; baselines at that k use exactly that grouping.

Nothing here trains a generator, and the Siamese net of a checkpoint is never used to measure
privacy. Embeddings are cached per dataset, method, k and recogniser under ``<out>/cache``.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from kssgan.data.grouping import GroupAssignment
from kssgan.evaluate import baselines, privacy, utility
from kssgan.evaluate.checkpoints import ABLATION, KSS_GAN, LoadedModel, check_framing, load_models, translate_release
from kssgan.evaluate.release import ReleaseSet, load_release, recogniser_crops, resolve_dataset
from kssgan.evaluate.report import write_report
from kssgan.evaluate.results import EvalSettings, MethodOutput

__all__ = ["ABLATION", "KSS_GAN", "EvalSettings", "MethodOutput", "load_models", "run_evaluation"]

REFERENCE = "original"
PARROT_NOTE = "parrot attack not measured: it needs at least two images of an identity in the release set"


# ----------------------------------------------------------------------------------------------
# embeddings with a cache
# ----------------------------------------------------------------------------------------------
class EmbeddingCache:
    """``<dir>/<method>_k<k>_<recogniser>.npz`` holding the embeddings and a digest of the images."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.hits = 0
        self.misses = 0

    def get(self, key: str, recogniser: Any, images: np.ndarray, margin: float) -> np.ndarray:
        digest = hashlib.sha1(images.tobytes() + f"{images.shape}{margin}".encode()).hexdigest()
        path = self.dir / f"{key}_{recogniser.name}.npz"
        if path.is_file():
            with np.load(path, allow_pickle=False) as z:
                if str(z["digest"]) == digest:
                    self.hits += 1
                    return z["embedding"]
        self.misses += 1
        emb = recogniser.embed(recogniser_crops(images, margin)).astype(np.float32)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, embedding=emb, digest=np.array(digest))
        tmp.replace(path)
        return emb


def _method_key(m: MethodOutput) -> str:
    return m.method.replace(" ", "_") + ("" if m.k is None else f"_k{m.k}")


# ----------------------------------------------------------------------------------------------
# the run
# ----------------------------------------------------------------------------------------------
def build_outputs(
    release: ReleaseSet,
    settings: EvalSettings,
    groupings: dict[int, GroupAssignment],
    models: list[LoadedModel],
) -> list[MethodOutput]:
    ids = release.identities
    outs = [
        MethodOutput(REFERENCE, None, release.images, "the source crops (reference)"),
        MethodOutput(
            "blur",
            None,
            baselines.blur(release.images, settings.blur_sigma_fraction),
            f"Gaussian σ = {settings.blur_sigma_fraction} × side",
        ),
        MethodOutput(
            "pixelate",
            None,
            baselines.pixelate(release.images, settings.pixelate_blocks),
            f"{settings.pixelate_blocks}×{settings.pixelate_blocks} cells",
        ),
    ]
    for k, g in sorted(groupings.items()):
        mapping = g.identity_to_group
        outs.append(MethodOutput("k-same-pixel", k, baselines.k_same_pixel(release.images, ids, mapping)))
        eig = baselines.k_same_eigen(release.images, ids, mapping, settings.eigen_components)
        outs.append(MethodOutput("k-same-eigen", k, eig, f"eigenfaces keeping {settings.eigen_components}"))
    for lm in models:
        images = translate_release(lm.model, release, lm.groups, settings.batch_size)
        outs.append(MethodOutput(lm.label, lm.k, images, f"checkpoint {lm.path}"))
    return outs


def _groupings(release: ReleaseSet, ks: list[int], models: list[LoadedModel]) -> tuple[dict, list[str]]:
    notes: list[str] = []
    n_ids = len(set(release.identities))
    out: dict[int, GroupAssignment] = {}
    for lm in models:
        missing = sorted(set(release.identities) - set(lm.groups.identity_to_group))
        if missing:  # open-set identities (val/test only, identity-disjoint): nearest group, best effort
            if release.identity_means is None or any(i not in release.identity_means for i in missing):
                raise ValueError(f"{lm.path}: identities {missing[:5]} are not in the checkpoint's groups")
            g = lm.groups
            mapping = dict(g.identity_to_group) | {i: g.nearest_group(release.identity_means[i]) for i in missing}
            lm.groups = GroupAssignment(g.k, g.method, g.recogniser, g.seed, mapping, g.centroids)
            notes.append(
                f"{len(missing)} identities outside the training closed set of {lm.path} were given their "
                "nearest group (open-set, best effort)"
            )
        if lm.k in out and out[lm.k].identity_to_group != lm.groups.identity_to_group:
            raise ValueError(f"two checkpoints for k={lm.k} use different groupings")
        out[lm.k] = lm.groups
    for k in sorted(set(ks)):
        if k in out:
            continue
        if k > n_ids:
            notes.append(f"k={k} skipped: only {n_ids} identities")
            continue
        out[k] = release.grouping(k)
    return out, notes


def run_evaluation(
    dataset: str,
    out_dir: str | Path,
    ckpts: Iterable[str] = (),
    ablation_ckpts: Iterable[str] = (),
    settings: EvalSettings | None = None,
    repo_root: Path | None = None,
    methods: Iterable[str] = (),
) -> dict[str, Any]:
    """Evaluate; writes ``metrics.json``, ``report.md``, plots and the embedding cache to ``out_dir``."""
    from kssgan.faces import get_recognizer

    settings = settings or EvalSettings()
    if settings.release_draws < 1:
        raise ValueError(f"--release-draws must be >= 1, got {settings.release_draws}")
    if settings.release_labels not in RELEASE_LABELS:
        raise ValueError(f"--release-labels must be one of {RELEASE_LABELS}, got {settings.release_labels!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(settings.seed)
    recognisers = {}  # first: a missing model file should fail before any work is done
    for rname in settings.recognisers:
        model_dir = settings.insightface_dir if rname in ("insightface", "arcface") else None
        recognisers[rname] = get_recognizer(rname, model_dir)
    models = load_models(ckpts, ablation_ckpts, methods)
    sizes = {int(lm.model.hparams.image_size) for lm in models}
    if len(sizes) > 1:
        raise ValueError(f"checkpoints of different image sizes {sorted(sizes)} cannot share one evaluation")
    if settings.image_size and sizes and settings.image_size not in sizes:
        raise ValueError(
            f"--image-size {settings.image_size} conflicts with the checkpoint's image size {min(sizes)}; "
            "leave --image-size out (evaluate reads it from the checkpoint)"
        )
    size = settings.image_size or (sizes.pop() if sizes else None)
    name, root = resolve_dataset(dataset, repo_root)
    release = load_release(root, size, settings.split, name)
    for lm in models:
        check_framing(lm, release)
    ks = sorted(set(settings.ks) | {lm.k for lm in models})
    groupings, notes = _groupings(release, ks, models)
    for k, g in groupings.items():  # provenance: the exact groups every k-Same number was measured on
        g.save(out / "groups" / f"groups_k{k}.json")
    outputs = build_outputs(release, settings, groupings, models)

    cache = EmbeddingCache(out / "cache" / release.name)
    ids = np.asarray(release.identities)
    metrics: dict[str, Any] = {
        "dataset": {
            "name": release.name,
            "prepared_dir": str(release.root),
            "split": settings.split,
            "images": len(ids),
            "identities": len(set(ids)),
            "image_size": int(release.images.shape[1]),
        },
        "settings": asdict(settings),
        "checkpoints": [asdict(lm.record()) for lm in models],
        "groupings": {
            str(k): privacy.group_audit(g.identity_to_group, k) | {"method": g.method} for k, g in groupings.items()
        },
        "notes": notes,
        "recognisers": {},
        "results": [],
    }
    total = len(outputs) * len(recognisers)
    bar = tqdm(total=total, desc="re-identification", disable=not settings.progress, dynamic_ncols=True)
    orig_emb = {}
    for rname, rec in recognisers.items():
        emb = cache.get(_method_key(outputs[0]), rec, release.images, release.margin)
        orig_emb[rname] = emb
        metrics["recognisers"][rname] = {
            "threshold": rec.threshold,
            "metric": rec.metric,
            "dim": int(emb.shape[1]),
            "real_pairs": privacy.same_vs_different_match_rates(rec, emb, ids),
        }
    results: dict[tuple[str, int | None], dict[str, Any]] = {}
    degraded_cache: dict[int, np.ndarray] = {}

    def degraded(m: MethodOutput) -> np.ndarray:
        from kssgan.evaluate.attacks import degrade

        if id(m) not in degraded_cache:
            degraded_cache[id(m)] = degrade(m.images, settings.attacker_jpeg_quality, settings.attacker_scale)
        return degraded_cache[id(m)]

    for m in outputs:
        row = {"method": m.method, "k": m.k, "note": m.note, "privacy": {}}
        clusters, unit = _clusters(m, groupings, ids)
        for rname, rec in recognisers.items():
            emb = orig_emb[rname] if m.method == REFERENCE else cache.get(_method_key(m), rec, m.images, release.margin)
            ident = privacy.identify(orig_emb[rname], ids, emb, ids, settings.max_rank, clusters, unit)
            parrot = privacy.parrot_attack(emb, ids, settings.max_rank, clusters, unit)
            if parrot.n_probes == 0 and PARROT_NOTE not in notes:
                notes.append(PARROT_NOTE)
            ver = privacy.verification(rec, orig_emb[rname], emb)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                kid = utility.kid(orig_emb[rname], emb, settings.kid_subsets, settings.kid_subset_size, settings.seed)
            row["privacy"][rname] = {
                "identification": ident.to_dict(),
                "parrot": parrot.to_dict(),
                "verification": ver.to_dict(),
                "kid": kid | {"features": f"{rname} embeddings"},
                "fid": {"value": utility.fid(orig_emb[rname], emb), "features": f"{rname} embeddings"},
            }
            if settings.attacker_jpeg_quality and m.method != REFERENCE:
                q, sc = settings.attacker_jpeg_quality, settings.attacker_scale
                key = f"{_method_key(m)}_jpeg{q}_x{sc:g}"
                emb_a = cache.get(key, rec, degraded(m), release.margin)
                row.setdefault("privacy_attacker", {})[rname] = {
                    "preprocessing": f"JPEG quality {q}, resized to {sc:g}x and back",
                    "identification": privacy.identify(
                        orig_emb[rname], ids, emb_a, ids, settings.max_rank, clusters, unit
                    ).to_dict(),
                    "parrot": privacy.parrot_attack(emb_a, ids, settings.max_rank, clusters, unit).to_dict(),
                    "verification": privacy.verification(rec, orig_emb[rname], emb_a).to_dict(),
                }
            bar.update(1)
        results[(m.method, m.k)] = row
    bar.close()

    if settings.release_level and models:
        _release_level(release, models, recognisers, results, settings, notes)
    _utility(release, outputs, results, settings, root)
    for row in results.values():  # the release's fidelity, measured on its full photos
        fid = row.pop("release_fidelity", None)
        if fid is not None:
            row.setdefault("utility", {}).update(fid["utility"] | {"measured_on": "released full photos"})
            row["quality"] = row.get("quality", {}) | fid["quality"]
    metrics["results"] = list(results.values())
    metrics["cache"] = {"dir": str(cache.dir), "hits": cache.hits, "misses": cache.misses}
    sample_k = settings.sample_k or (models[0].k if models else (min(groupings) if groupings else None))
    write_report(out, metrics, outputs, release, sample_k, settings)
    return metrics


#: Where the released photos' kept attributes come from (``EvalSettings.release_labels``).
RELEASE_LABELS = ("estimated", "population", "person", "given")


def release_masks(settings: EvalSettings) -> list[tuple[str, dict[str, Any]]]:
    """``(name, DeidentifyOptions fields)`` of each release attacked per checkpoint: the default
    (deidentify's own defaults, or ``release_region``/``_reach``/``_jitter``/``_follow``/``_colour``/
    ``_blend``/``_sharpen``) first, then each ``release_sweep`` entry: ``REGION[:REACH[:JITTER]]``
    (``inner``, ``head:1.3``, ``head:1.3:0``) or ``name=value,...`` over the default
    (``follow=shape``, ``colour=none,blend=alpha``, ``labels=given``). ``labels`` is not a
    ``deidentify`` option but where the kept attributes come from (:data:`RELEASE_LABELS`)."""
    from dataclasses import replace

    from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions, MaskShape

    base = DeidentifyOptions()
    shape, jitter = base.mask, base.paste_jitter
    if settings.release_region is not None:
        shape = replace(shape, region=settings.release_region)
    if settings.release_reach is not None:
        shape = replace(shape, reach=float(settings.release_reach))
    if settings.release_jitter is not None:
        jitter = float(settings.release_jitter)
    default: dict[str, Any] = {
        "mask": shape,
        "paste_jitter": jitter,
        "jitter_seed": settings.seed,
        "labels": settings.release_labels,
    }
    for name in ("follow", "follow_reference", "colour", "blend", "sharpen", "upscale"):
        value = getattr(settings, f"release_{name}")
        default[name] = getattr(base, name) if value is None else value
    out = [("default", default)]
    for entry in settings.release_sweep:
        try:
            if "=" in str(entry):
                out.append((str(entry), _sweep_options(str(entry), default)))
                continue
            region, _, rest = str(entry).partition(":")
            reach, _, jit = rest.partition(":")
            mask = replace(MaskShape(), region=region, **({"reach": float(reach)} if reach else {}))
            j = float(jit) if jit else base.paste_jitter
        except (DeidentifyError, ValueError) as err:
            raise ValueError(
                f"--release-sweep entry {entry!r}: use REGION[:REACH[:JITTER]] or name=value,... ({err})"
            ) from err
        out.append((str(entry), default | {"mask": mask, "paste_jitter": j}))
    return out


def _sweep_options(entry: str, default: dict[str, Any]) -> dict[str, Any]:
    """``name=value,...`` over the default release: ``follow``, ``colour``, ``blend``, ``sharpen``
    (a number, or ``null``: the checkpoint's), ``upscale`` (true/false), ``follow_reference``
    (auto | source | person | rest), ``follow_strength``,
    ``colour_strength``, ``region``, ``reach``, ``jitter``, ``labels`` (estimated | population | person | given)."""
    from dataclasses import replace

    from kssgan.deidentify.options import DeidentifyOptions

    out = dict(default)
    for pair in entry.split(","):
        name, _, value = pair.partition("=")
        name = name.strip()
        if name in ("region", "reach"):
            out["mask"] = replace(out["mask"], **{name: value if name == "region" else float(value)})
        elif name == "jitter":
            out["paste_jitter"] = float(value)
        elif name == "sharpen" and value.strip().lower() in ("null", "none"):
            out[name] = None
        elif name in ("sharpen", "follow_strength", "colour_strength"):
            out[name] = float(value)
        elif name == "upscale":
            if value.strip().lower() not in ("true", "false"):
                raise ValueError(f"upscale={value!r}: use true or false")
            out[name] = value.strip().lower() == "true"
        elif name in ("follow", "follow_reference", "colour", "blend"):
            out[name] = value
        elif name == "labels":
            if value.strip() not in RELEASE_LABELS:
                raise ValueError(f"labels={value!r}: use one of {RELEASE_LABELS}")
            out[name] = value.strip()
        else:
            raise ValueError(f"unknown release option {name!r}")
    DeidentifyOptions(**_deidentify_fields(out)).check()
    return out


def _deidentify_fields(options: dict[str, Any]) -> dict[str, Any]:
    """A :func:`release_masks` entry as ``DeidentifyOptions`` fields: ``labels`` is not one, but
    ``labels=population|person`` is ``deidentify --attribute-reference`` so (``estimated``: auto, the
    checkpoint's recipe's, as ``deidentify`` reads attributes it is not given)."""
    out = {k: v for k, v in options.items() if k != "labels"}
    if options.get("labels") in ("population", "person"):
        out["attribute_reference"] = options["labels"]
    return out


def _release_level(
    release: ReleaseSet,
    models: list[LoadedModel],
    recognisers: dict[str, Any],
    results: dict[tuple[str, int | None], dict[str, Any]],
    settings: EvalSettings,
    notes: list[str],
) -> None:
    """``privacy_release`` of every checkpoint's row: its full-photo release, attacked (closed set),
    ``privacy_release_open_set`` for the strangers, ``privacy_release_sweep`` for further masks."""
    from dataclasses import asdict

    from kssgan.deidentify.options import DeidentifyOptions
    from kssgan.deidentify.pipeline import Deidentifier
    from kssgan.evaluate import release_level
    from kssgan.evaluate.release import stranger_photos
    from kssgan.faces.detect import YuNetDetector

    photos, why = release_level.full_photos(release.root, release.manifest["source"].astype(str).tolist())
    if photos is None:
        notes.append(f"release-level attack not run: {why}")
        return
    ids = release.identities
    strangers = stranger_photos(release.root) if settings.open_set else None
    s_photos: list[np.ndarray] = []
    s_ids: list[str] = []
    if strangers is not None and len(strangers):
        got, why = release_level.full_photos(release.root, strangers["source"].astype(str).tolist())
        if got is None:
            notes.append(f"open-set release not run: {why}")
        else:
            s_photos, s_ids = got, strangers["identity"].astype(str).tolist()
    detector = YuNetDetector()  # the attacker's own detector, whatever the checkpoint was prepared with
    q, scale = settings.attacker_jpeg_quality, settings.attacker_scale
    originals = release_level.attacker_faces(photos + s_photos, detector)  # detected and embedded once
    original_emb = {rname: release_level.embed_faces(originals, rec) for rname, rec in recognisers.items()}
    n = len(photos)
    closed_emb = {rname: tuple(a[:n] for a in emb) for rname, emb in original_emb.items()}
    boxes = release_level.head_boxes(photos, detector)
    measure = None
    if settings.fidelity:
        from kssgan.evaluate.fidelity import against

        measure = against(photos, detector, kind=settings.gender, progress=settings.progress)
    for lm in tqdm(models, desc="release-level attack", disable=not settings.progress):
        row = results[(lm.label, lm.k)]
        by_group = release_level.donors_by_group(lm.model, lm.groups.identity_to_group)
        clusters = [lm.groups.identity_to_group.get(i, f"person:{i}") for i in ids]
        given = release_level.given_attributes(release.manifest, lm.model.spec)
        for mask_name, options in release_masks(settings):
            deid = Deidentifier.from_checkpoint(
                lm.path, DeidentifyOptions(**_deidentify_fields(options)), record_alpha=measure is not None
            )
            attrs = given if options["labels"] == "given" else None
            alphas: list[np.ndarray | None] = []
            released, groups = release_level.release_photos(deid, photos, ids, alphas, attrs)
            fid = measure(released, alphas) if measure is not None else None
            kept = release_level.kept_fraction(photos, released, boxes)
            donors = [by_group.get(g, []) if g is not None else [] for g in groups]
            entry_of, plain = release_level.attack_release(
                released, closed_emb, ids, clusters, recognisers, detector, q, scale, settings.max_rank, donors
            )
            for entry in entry_of.values():
                entry |= {
                    "kept_head_fraction": kept,
                    "mask": asdict(deid.options.mask),  # the region resolved (auto: the checkpoint's)
                    "paste_jitter": options["paste_jitter"],
                }
            options_record = {k: asdict(v) if k == "mask" else v for k, v in options.items() if k != "jitter_seed"}
            options_record["mask"] = asdict(deid.options.mask)
            options_record["follow"] = deid.options.follow  # resolved (auto: the checkpoint's release_follow)
            options_record["follow_reference"] = deid.options.follow_reference
            if mask_name == "default" and settings.release_draws > 1:
                _parrot_draws(
                    entry_of, photos, released, lm, options, ids, clusters, recognisers, detector, settings, attrs,
                    deid.jitter_draws == 0,
                )  # fmt: skip
            if mask_name == "default":
                row["privacy_release"] = entry_of
                row["release_options"] = options_record
                if fid is not None:
                    row["release_fidelity"] = fid
                if s_photos:
                    s_attrs = release_level.given_attributes(strangers, lm.model.spec) if attrs is not None else None
                    row["privacy_release_open_set"] = _open_set(
                        deid, s_photos, s_ids, plain, ids, original_emb, recognisers, by_group, lm, settings, detector,
                        s_attrs,
                    )  # fmt: skip
            else:
                row.setdefault("privacy_release_sweep", []).append(
                    {"mask": mask_name, "kept_head_fraction": kept, "options": options_record}
                    | release_level.headline(entry_of)
                    | ({"fidelity": _fidelity_headline(fid)} if fid is not None else {})
                )


def _parrot_draws(
    entry_of: dict[str, Any],
    photos: list[np.ndarray],
    released: list[np.ndarray | None],
    lm: LoadedModel,
    options: dict[str, Any],
    ids: list[str],
    clusters: list[object],
    recognisers: dict[str, Any],
    detector: Any,
    settings: EvalSettings,
    attributes: list[dict[str, str]] | None = None,
    deterministic: bool = False,
) -> None:
    """``parrot_draws`` (:func:`~kssgan.evaluate.release_level.parrot_over_draws`) beside each
    recogniser's ``parrot``, plain and after the attack: ``released`` (the release of ``photos``) and
    ``settings.release_draws`` − 1 further releases of the same photos, each with its own jitter seed."""
    from kssgan.deidentify.options import DeidentifyOptions
    from kssgan.deidentify.pipeline import Deidentifier
    from kssgan.evaluate import release_level

    q, scale = settings.attacker_jpeg_quality, settings.attacker_scale
    draws = [release_level.release_embeddings(released, recognisers, detector, q, scale)]
    for r in tqdm(range(1, settings.release_draws), desc="release draws", disable=not settings.progress):
        if deterministic:  # nothing random in the release (region frame): every draw is the first
            draws.append(draws[0])
            continue
        redraw = DeidentifyOptions(**_deidentify_fields(options | {"jitter_seed": settings.seed + r}))
        deid = Deidentifier.from_checkpoint(lm.path, redraw)
        again, _ = release_level.release_photos(deid, photos, ids, None, attributes)
        draws.append(release_level.release_embeddings(again, recognisers, detector, q, scale))
    for rname, entry in entry_of.items():
        for kind in draws[0][rname]:
            fig = entry if kind == "plain" else entry.get(kind)
            if fig is not None:
                fig["parrot_draws"] = release_level.parrot_over_draws(
                    [d[rname][kind] for d in draws], ids, clusters, settings.max_rank
                )


def _fidelity_headline(fid: dict[str, Any]) -> dict[str, Any]:
    """The sweep table's fidelity columns."""
    geo = fid["utility"]["geometry"]
    return {
        **{f"{n}_r": geo[n]["pearson"] for n in geo},
        "delta_e_median": fid["utility"]["skin_tone"]["delta_e_median"],
        "sharpness_ratio": fid["quality"]["inner_sharpness_ratio"],
        "seam_ratio": fid["quality"].get("seam_ratio"),
    }


def _open_set(
    deid: Any,
    s_photos: list[np.ndarray],
    s_ids: list[str],
    closed_released: dict[str, tuple[np.ndarray, np.ndarray]],
    ids: list[str],
    original_emb: dict[str, tuple[np.ndarray, np.ndarray]],
    recognisers: dict[str, Any],
    by_group: dict[int, list[str]],
    lm: LoadedModel,
    settings: EvalSettings,
    detector: Any,
    attributes: list[dict[str, str]] | None = None,
) -> dict[str, Any]:
    """Strangers released as ``deidentify`` releases a face it was not trained on (no identity: the
    nearest group centroid), attacked like the closed set. Rank-1 and protection against every
    original (closed set and strangers); the parrot attack with the whole population released in the
    gallery (judged against 1/k: a stranger shares its output with a whole group) and with strangers
    alone (judged against ``strangers_only.bound``: 1 / the strangers that share a probe's group)."""
    from kssgan.evaluate import release_level

    n = len(ids)
    released, groups = release_level.release_photos(
        deid, s_photos, [None] * len(s_photos), None, attributes, persons=s_ids
    )
    s_faces = release_level.attacker_faces(released, detector)
    mask = np.array([r is not None for r in released])
    all_ids = np.asarray(list(ids) + list(s_ids))
    stranger_rows = np.r_[np.zeros(n, bool), np.ones(len(s_ids), bool)]
    groups_arr = np.array([-1 if g is None else g for g in groups])
    share = release_level.strangers_per_group(groups_arr, s_ids)
    out: dict[str, Any] = {
        "identities": len(set(s_ids)),
        "photos": len(s_ids),
        "bound": f"1/k = {1 / lm.k:.3f} (population gallery)",
        "groups_used": len(share),
    }
    for rname, rec in recognisers.items():
        s_emb, s_found = release_level.embed_faces(s_faces, rec)
        c_emb, c_found = closed_released[rname]  # the closed set's release, embedded once
        o_emb, o_found = original_emb[rname]
        entry = release_level.figures((o_emb, o_found), _pad(s_emb, s_found, n), np.r_[np.zeros(n, bool), mask],
                                      all_ids, all_ids, rec, settings.max_rank)  # fmt: skip
        entry["photos"], entry["withheld"] = len(s_ids), int((~mask).sum())
        # the parrot attack over the released population; probes: strangers only
        emb = np.concatenate([c_emb, s_emb])
        found = np.r_[c_found, s_found]
        entry["parrot"] = release_level.parrot_on(emb, found, all_ids, stranger_rows, settings.max_rank)
        alone = release_level.parrot_on(s_emb, s_found, np.asarray(s_ids), np.ones(len(s_ids), bool), settings.max_rank)
        entry["parrot_strangers_only"] = alone | {"bound": release_level.strangers_bound(groups_arr, s_ids, s_found)}
        donors = [[]] * n + [by_group.get(int(g), []) if g >= 0 else [] for g in groups_arr]
        entry["donor"] = release_level.donor_check((o_emb, o_found), _pad(s_emb, s_found, n), all_ids, donors, rec)
        out[rname] = entry
    return out


def _pad(emb: np.ndarray, found: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Stranger rows placed after ``n`` closed-set rows that are not probes (nothing found there)."""
    return np.concatenate([np.zeros((n, emb.shape[1]), emb.dtype), emb]), np.r_[np.zeros(n, bool), found]


def _clusters(m: MethodOutput, groupings: dict[int, GroupAssignment], ids: np.ndarray) -> tuple[np.ndarray, str]:
    """The independent units of a row's probes: its k-Same groups at k, else the persons."""
    if m.k is not None and m.k in groupings:
        mapping = groupings[m.k].identity_to_group
        return np.asarray([str(mapping[str(i)]) for i in ids]), "k-Same group"
    return ids, "person"


def _utility(
    release: ReleaseSet,
    outputs: list[MethodOutput],
    results: dict[tuple[str, int | None], dict[str, Any]],
    settings: EvalSettings,
    root: Path,
) -> None:
    """Sharpness, SSIM/PSNR, detection rate, expression and gender preservation, per method."""
    detector = None
    if settings.detection:
        from kssgan.faces import get_detector

        detector = get_detector("yunet")
    expr = _expression_setup(release, settings, root)
    gender = None
    if settings.gender:
        try:
            gender = utility.GenderEstimator()
            gender_orig = gender.predict(release.images)
        except Exception as err:  # optional model: say why it is missing
            warnings.warn(f"gender estimation unavailable: {err}", stacklevel=2)
            gender = None
    for m in tqdm(outputs, desc="utility and quality", disable=not settings.progress, dynamic_ncols=True):
        u: dict[str, Any] = {"sharpness_laplacian_var": float(utility.laplacian_variance(m.images).mean())}
        u |= utility.ssim_psnr(release.images, m.images)
        if detector is not None:
            u["detection_rate_yunet"] = utility.detection_rate(detector, m.images)
        if expr is not None:
            clf, test_mask, labels = expr
            u["expression"] = clf.evaluate(m.images[test_mask], labels) | {"classes": clf.classes_}
        if gender is not None:
            pred = gender.predict(m.images)
            u["gender_agreement"] = utility.gender_agreement(gender_orig, pred)
            if "gender" in release.manifest.columns:
                truth = release.manifest["gender"].astype(str).str.lower().to_numpy()
                u["gender_accuracy"] = float(np.mean(np.asarray(pred) == truth))
        if settings.fid_inception_weights:
            try:
                u["fid_inception"] = utility.inception_fid(release.images, m.images, settings.fid_inception_weights)
            except (ImportError, ModuleNotFoundError, OSError, RuntimeError) as err:
                u["fid_inception"] = f"not computed: {err}"
        results[(m.method, m.k)]["utility"] = u


def _expression_setup(release: ReleaseSet, settings: EvalSettings, root: Path) -> tuple | None:
    """Classifier trained on the real training split; tested on the held-out (val + test) rows."""
    col = settings.expression_column
    if not col or col not in release.manifest.columns:
        return None
    labels = release.manifest[col].astype(str)
    held_out = (release.splits != "train") if settings.split == "all" else np.ones(len(labels), bool)
    test_mask = held_out & (labels != "").to_numpy()
    if settings.split in ("all", "train"):
        train = release
        train_mask = (train.splits == "train") & (train.manifest[col].astype(str) != "").to_numpy()
    else:
        train = load_release(root, release.images.shape[1], "train")
        train_mask = (train.manifest[col].astype(str) != "").to_numpy()
    y_train = train.manifest[col].astype(str).to_numpy()[train_mask]
    if len(set(y_train)) < 2 or not test_mask.any():
        return None
    clf = utility.ExpressionClassifier(seed=settings.seed).fit(train.images[train_mask], y_train)
    return clf, test_mask, labels.to_numpy()[test_mask]
