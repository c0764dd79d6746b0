"""Privacy metrics: closed-set re-identification (rank-1, CMC), the parrot attack, verification.

All scores come from recognisers that played no part in training (SFace, dlib, ArcFace); the
Siamese net of the model under test is never used here.

* **Identification** (the k-Same papers' attack): the gallery holds the *original* images of every
  identity, the probes are the de-identified images. A probe's score for an identity is its best
  cosine similarity to any gallery image of that identity; its rank is the position of its true
  identity. Ties are broken at random *in expectation* (a probe tied with t other identities at
  the top counts 1/(t+1) at rank 1), so a method that maps every member of a group to one image
  scores exactly 1/group size, not 1.0. k-Same methods promise rank-1 ≤ 1/k.
* **Parrot attack**: the attacker de-identifies their own gallery the same way, so gallery and
  probes are both de-identified (disjoint images of each identity).
* **Intervals.** Every proportion carries a 95 % Wilson interval, which treats the probes as
  independent coin flips. They are neither: a probe's rank-1 is an *expected* hit (ties split
  evenly), and the probes of one k-Same group depend on each other (a method that maps a group to one
  face gives each member exactly 1/group size). So rank-1 figures also carry a **clustered**
  interval: the ratio estimator's cluster-robust standard error over the independent units — the
  k-Same groups for a method at k, the persons otherwise — with a t quantile on G − 1 degrees of
  freedom (:func:`clustered_interval`). When every probe is at 0 or every probe at 1 that variance
  is 0, and the Wilson interval over the G clusters is used instead.
* **Verification**: the share of (original, de-identified) pairs that a recogniser still calls
  the same person under its published rule (SFace cosine ≥ 0.363, dlib L2 ≤ 0.6); the protection
  success rate is one minus that.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

#: Scores closer than this are treated as ties (float noise of identical images).
TIE_TOLERANCE = 1e-6
#: z for a two-sided 95 % interval.
Z_95 = 1.959963984540054


@dataclass
class Proportion:
    """A success count out of n trials, with a 95 % Wilson score interval."""

    successes: float
    n: int
    value: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def wilson_interval(successes: float, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (well behaved at 0, 1 and small n)."""
    if n <= 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def clustered_interval(values: np.ndarray, clusters: Sequence[object]) -> tuple[float, float]:
    """95 % interval of the mean of per-probe ``values`` in [0, 1] drawn in ``clusters``.

    The mean is the ratio Σv / N; its cluster-robust (linearised) variance is
    G/(G−1) · Σ_g (V_g − mean·n_g)² / N², with V_g and n_g the sum and count of cluster g, and the
    interval is mean ± t_{0.975, G−1} · SE. With fewer than two clusters, or all values 0 or all 1
    (no spread to estimate a variance from), it is the Wilson interval of Σv out of G clusters.
    """
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return (0.0, 1.0)
    labels = np.asarray([str(c) for c in clusters])
    if labels.shape != v.shape:
        raise ValueError(f"{v.size} values but {labels.size} cluster labels")
    names, inverse = np.unique(labels, return_inverse=True)
    g = len(names)
    mean = float(v.mean())
    if g < 2 or np.all(v == 0) or np.all(v == 1):
        return wilson_interval(mean * g, g)
    sums = np.bincount(inverse, weights=v, minlength=g)
    counts = np.bincount(inverse, minlength=g)
    var = g / (g - 1) * float(np.sum((sums - mean * counts) ** 2)) / v.size**2
    half = float(student_t.ppf(0.975, g - 1)) * math.sqrt(var)
    return (max(0.0, mean - half), min(1.0, mean + half))


def proportion(successes: float, n: int) -> Proportion:
    low, high = wilson_interval(successes, n)
    value = successes / n if n else float("nan")
    return Proportion(float(successes), int(n), float(value), low, high)


def _l2n(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x / np.clip(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12, None)


@dataclass
class IdentificationResult:
    """Closed-set identification: ``cmc[r-1]`` = expected share of probes identified within rank r."""

    cmc: np.ndarray
    n_probes: int
    n_identities: int
    rank1: Proportion
    #: rank-1's clustered interval (``ci_low``, ``ci_high``, ``n_clusters``, ``unit``), when clusters were given
    rank1_clustered: dict | None = None

    def to_dict(self) -> dict:
        out = {
            "rank1": self.rank1.to_dict(),
            "cmc": [round(float(v), 6) for v in self.cmc],
            "n_probes": self.n_probes,
            "n_identities": self.n_identities,
        }
        if self.rank1_clustered is not None:
            out["rank1_clustered"] = self.rank1_clustered
        return out


def identity_scores(
    gallery: np.ndarray, gallery_ids: Sequence[str], probes: np.ndarray
) -> tuple[np.ndarray, list[str]]:
    """P×I matrix: each probe's best cosine similarity to any gallery image of each identity."""
    names = sorted({str(i) for i in gallery_ids})
    index = {n: j for j, n in enumerate(names)}
    cols = np.array([index[str(i)] for i in gallery_ids])
    sims = _l2n(probes) @ _l2n(gallery).T
    scores = np.full((len(probes), len(names)), -np.inf)
    for j in range(len(names)):
        scores[:, j] = sims[:, cols == j].max(axis=1)
    return scores, names


def identify(
    gallery: np.ndarray,
    gallery_ids: Sequence[str],
    probes: np.ndarray,
    probe_ids: Sequence[str],
    max_rank: int = 10,
    probe_clusters: Sequence[object] | None = None,
    cluster_unit: str = "group",
) -> IdentificationResult:
    """Rank-1 and CMC up to ``max_rank`` (capped at the number of identities).

    ``probe_clusters`` (one label per probe: its k-Same group, or its person) adds rank-1's
    clustered interval (:func:`clustered_interval`).
    """
    if len(probes) != len(probe_ids):
        raise ValueError(f"{len(probes)} probe embeddings but {len(probe_ids)} probe identities")
    scores, names = identity_scores(gallery, gallery_ids, probes)
    index = {n: j for j, n in enumerate(names)}
    missing = sorted({str(i) for i in probe_ids} - set(index))
    if missing:
        raise ValueError(f"probe identities without gallery images: {missing[:5]}")
    n_ids = len(names)
    ranks = np.arange(1, min(max_rank, n_ids) + 1)
    hits = np.zeros(len(ranks))
    first = np.zeros(len(probe_ids))  # each probe's expected rank-1 hit
    for i, (row, ident) in enumerate(zip(scores, probe_ids, strict=True)):
        true = row[index[str(ident)]]
        better = int(np.sum(row > true + TIE_TOLERANCE))
        tied = int(np.sum(np.abs(row - true) <= TIE_TOLERANCE)) - 1  # others tied with the truth
        # rank uniform over better+1 .. better+1+tied: P(rank <= r)
        at = np.clip((ranks - better) / (tied + 1), 0.0, 1.0)
        hits += at
        first[i] = at[0]
    n = len(probes)
    cmc = hits / n if n else np.zeros(len(ranks))
    clustered = None
    if probe_clusters is not None and n:
        if len(probe_clusters) != n:
            raise ValueError(f"{n} probes but {len(probe_clusters)} cluster labels")
        low, high = clustered_interval(first, probe_clusters)
        clustered = {
            "ci_low": low,
            "ci_high": high,
            "n_clusters": len({str(c) for c in probe_clusters}),
            "unit": cluster_unit,
        }
    return IdentificationResult(cmc, n, n_ids, proportion(float(first.sum()), n), clustered)


def parrot_split(identities: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per identity, the first half of its images (in order) to the gallery, the rest to probes.

    Identities with a single image go to the gallery only. Returns two boolean masks.
    """
    ids = np.asarray([str(i) for i in identities])
    gallery = np.zeros(len(ids), bool)
    for ident in np.unique(ids):
        rows = np.flatnonzero(ids == ident)
        gallery[rows[: max(1, (len(rows) + 1) // 2)]] = True
    return gallery, ~gallery


def parrot_attack(
    deidentified: np.ndarray,
    identities: Sequence[str],
    max_rank: int = 10,
    clusters: Sequence[object] | None = None,
    cluster_unit: str = "group",
) -> IdentificationResult:
    """Identification where the gallery is de-identified the same way as the probes.

    ``clusters`` (one label per image, like ``identities``) adds rank-1's clustered interval.
    """
    g, p = parrot_split(identities)
    ids = np.asarray([str(i) for i in identities])
    probe_clusters = None if clusters is None else np.asarray([str(c) for c in clusters])[p]
    return identify(deidentified[g], ids[g], deidentified[p], ids[p], max_rank, probe_clusters, cluster_unit)


@dataclass
class VerificationResult:
    """How often a recogniser still matches an original with its de-identified version."""

    match: Proportion
    protection_rate: float
    mean_similarity: float
    threshold: float
    metric: str

    def to_dict(self) -> dict:
        return {
            "match": self.match.to_dict(),
            "protection_rate": self.protection_rate,
            "mean_similarity": self.mean_similarity,
            "threshold": self.threshold,
            "metric": self.metric,
        }


def verification(recogniser: object, originals: np.ndarray, deidentified: np.ndarray) -> VerificationResult:
    """Share of (original, de-identified) pairs above the recogniser's own match rule."""
    if originals.shape != deidentified.shape:
        raise ValueError(f"pair shapes differ: {originals.shape} vs {deidentified.shape}")
    matched = np.asarray(recogniser.is_match(originals, deidentified), bool)
    sims = np.sum(_l2n(originals) * _l2n(deidentified), axis=-1)
    prop = proportion(float(matched.sum()), len(matched))
    return VerificationResult(
        prop, 1.0 - prop.value, float(sims.mean()), float(recogniser.threshold), str(recogniser.metric)
    )


def same_vs_different_match_rates(recogniser: object, embeddings: np.ndarray, identities: Sequence[str]) -> dict:
    """Match rates of all same-person and all different-person pairs (a recogniser sanity check)."""
    ids = np.asarray([str(i) for i in identities])
    i, j = np.triu_indices(len(ids), k=1)
    matched = np.asarray(recogniser.is_match(embeddings[i], embeddings[j]), bool)
    same = ids[i] == ids[j]
    return {
        "same_person": proportion(float(matched[same].sum()), int(same.sum())).to_dict(),
        "different_person": proportion(float(matched[~same].sum()), int((~same).sum())).to_dict(),
    }


def group_audit(identity_to_group: dict[str, int], k: int) -> dict:
    """k-audit of a grouping: every group must hold at least k distinct identities."""
    from kssgan.data.grouping import group_sizes_of, undersized_groups

    sizes = group_sizes_of(identity_to_group)
    violations = undersized_groups(sizes, k)
    return {
        "k": int(k),
        "num_groups": len(sizes),
        "min_group_size": min(sizes.values()) if sizes else 0,
        "max_group_size": max(sizes.values()) if sizes else 0,
        "ok": not violations and bool(sizes),
        "violations": violations,
    }
