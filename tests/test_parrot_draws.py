"""The parrot attack over several releases of the same photos (`release_level.parrot_over_draws`)."""

from __future__ import annotations

import numpy as np
import pytest

from kssgan.evaluate import privacy
from kssgan.evaluate.release_level import parrot_over_draws

GROUPS, K, DIM = 30, 3, 64


def _population(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Group and person directions, and (identity, group) of each photo: two photos per person,
    the first of each the parrot gallery, the second its probe."""
    rng = np.random.default_rng(seed)
    group_dir = rng.normal(size=(GROUPS, DIM))
    person_dir = rng.normal(size=(GROUPS * K, DIM))
    ids = np.repeat([f"p{i:03d}" for i in range(GROUPS * K)], 2)
    groups = np.repeat(np.arange(GROUPS * K) // K, 2)
    return group_dir, person_dir, ids, groups


def _draws(n: int, leak: float, copy: bool = False, noise: float = 0.05, seed: int = 1) -> list:
    group_dir, person_dir, ids, groups = _population()
    person = np.repeat(np.arange(GROUPS * K), 2)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        base = person_dir[person] if copy else group_dir[groups] + leak * person_dir[person]
        emb = base + noise * rng.normal(size=base.shape)  # the release's own randomness (jitter)
        out.append((emb.astype(np.float32), np.ones(len(ids), bool)))
    return out


def test_a_release_that_copies_its_input_is_found_in_every_draw() -> None:
    _, _, ids, groups = _population()
    out = parrot_over_draws(_draws(4, 0.0, copy=True), ids, groups)
    assert out["rank1"]["value"] == pytest.approx(1.0) and out["draws"] == 4
    assert out["rank1"]["n"] == 4 * GROUPS * K and out["probe_photos"] == GROUPS * K


def test_one_face_per_group_averages_to_one_over_k_with_a_tight_bound() -> None:
    _, _, ids, groups = _population()
    one = _draws(1, 0.0)
    single = privacy.parrot_attack(one[0][0], ids, 10, groups).to_dict()
    many = parrot_over_draws(_draws(60, 0.0), ids, groups)
    # one release: rank-1 is which member each tie falls to, and its upper bound is wide
    assert single["rank1_clustered"]["ci_high"] > 1 / K + 0.05
    # averaged over the release's randomness: the probability, 1/k, and a bound within 1/k + 0.05
    assert many["rank1"]["value"] == pytest.approx(1 / K, abs=0.03)
    assert many["rank1_clustered"]["ci_high"] <= 1 / K + 0.05
    assert many["rank1_clustered"]["n_clusters"] == GROUPS  # the draws of one group are one cluster


def test_averaging_over_draws_does_not_hide_a_leak() -> None:
    _, _, ids, groups = _population()
    leaky = parrot_over_draws(_draws(20, 0.3), ids, groups)  # what the release keeps of each person
    assert leaky["rank1"]["value"] > 0.6
    assert leaky["rank1_clustered"]["ci_low"] > 1 / K + 0.05


def test_a_photo_without_a_face_in_some_draws_uses_the_draws_that_have_one() -> None:
    _, _, ids, groups = _population()
    draws = _draws(3, 0.0, copy=True)
    emb, found = draws[1]
    found = found.copy()
    found[1] = False  # the first person's probe photo: no face in draw 2
    draws[1] = (emb, found)
    out = parrot_over_draws(draws, ids, groups)
    assert out["rank1"]["n"] == 3 * GROUPS * K - 1 and out["rank1"]["value"] == pytest.approx(1.0)
