"""k-Same grouping (MDAV) and the groups.json audit."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kssgan.data.audit import audit_groups
from kssgan.data.audit import main as audit_main
from kssgan.data.grouping import GroupAssignment, GroupingError, KSameGrouping


def _embeddings(n: int, dim: int = 16, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {f"id{i:03d}": rng.normal(size=dim) for i in range(n)}


@pytest.mark.parametrize("n,k", [(2, 2), (5, 2), (15, 3), (40, 3), (40, 5), (41, 10), (97, 7)])
@pytest.mark.parametrize("method", ["mdav", "random"])
def test_group_sizes_between_k_and_2k_minus_1(n, k, method):
    emb = _embeddings(n)
    a = KSameGrouping(k=k, method=method, seed=3).fit(emb)
    sizes = a.group_sizes
    assert sum(sizes) == n and set(a.identity_to_group) == set(emb)
    assert min(sizes) >= k and max(sizes) <= 2 * k - 1
    assert a.num_groups == n // k if method == "random" else n // k >= a.num_groups >= 1
    assert a.audit() == []


def test_mdav_is_deterministic_and_groups_similar_identities():
    emb = _embeddings(30, seed=1)
    a = KSameGrouping(k=3).fit(emb)
    b = KSameGrouping(k=3).fit(dict(reversed(list(emb.items()))))  # input order does not matter
    assert a.identity_to_group == b.identity_to_group
    np.testing.assert_allclose(a.centroids, b.centroids)
    # three well-separated clusters of 3 identities end up as three groups
    rng = np.random.default_rng(0)
    centres = np.eye(8)[:3] * 10
    clustered = {f"c{c}_{j}": centres[c] + rng.normal(0, 0.1, 8) for c in range(3) for j in range(3)}
    g = KSameGrouping(k=3).fit(clustered)
    for c in range(3):
        assert len({g.identity_to_group[f"c{c}_{j}"] for j in range(3)}) == 1
    assert g.num_groups == 3
    # open set: a new face near cluster 1 goes to cluster 1's group
    assert g.nearest_group(centres[1] + rng.normal(0, 0.1, 8)) == g.identity_to_group["c1_0"]


def test_random_method_depends_on_seed():
    emb = _embeddings(30)
    a = KSameGrouping(k=3, method="random", seed=0).fit(emb)
    assert a.identity_to_group == KSameGrouping(k=3, method="random", seed=0).fit(emb).identity_to_group
    assert a.identity_to_group != KSameGrouping(k=3, method="random", seed=1).fit(emb).identity_to_group


def test_fewer_identities_than_k_is_a_clear_error():
    with pytest.raises(GroupingError, match=r"k=5 is larger than the number of identities \(3\)"):
        KSameGrouping(k=5).fit(_embeddings(3))
    with pytest.raises(GroupingError, match="k must be at least 1"):
        KSameGrouping(k=0)
    with pytest.raises(GroupingError, match="unknown grouping method"):
        KSameGrouping(k=2, method="kmeans")


def test_groups_json_round_trip_and_audit(tmp_path):
    a = KSameGrouping(k=3, recogniser="sface", seed=7).fit(_embeddings(20))
    path = a.save(tmp_path / "groups.json")
    data = json.loads(path.read_text())
    assert {"k", "method", "recogniser", "seed", "identity_to_group", "group_sizes", "centroids"} <= set(data)
    b = GroupAssignment.load(path)
    assert b.identity_to_group == a.identity_to_group and (b.k, b.recogniser, b.seed) == (3, "sface", 7)
    rep = audit_groups(path)
    assert rep.ok and rep.num_identities == 20 and min(rep.group_sizes) >= 3
    assert audit_main([str(path)]) == 0


def test_audit_catches_violations(tmp_path, capsys):
    a = KSameGrouping(k=3).fit(_embeddings(12))
    data = a.to_dict()
    # move one identity out of group 0 into a new group of its own
    victim = a.members(0)[0]
    data["identity_to_group"][victim] = a.num_groups
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    rep = audit_groups(path)
    assert not rep.ok
    assert any(f"group {a.num_groups} holds 1 distinct identities, fewer than k=3" in p for p in rep.problems)
    assert any("stored group_sizes" in p for p in rep.problems)
    assert audit_main([str(path)]) == 1
    assert "VIOLATION" in capsys.readouterr().out


def test_audit_cross_checks_the_manifest(tmp_path):
    import pandas as pd

    a = KSameGrouping(k=2).fit(_embeddings(6))
    a.save(tmp_path / "groups.json")
    manifest = pd.DataFrame(
        {"identity": [*list(a.identity_to_group), "stranger"], "status": ["ok"] * 6 + ["ok"], "crop": ["x"] * 7}
    )
    manifest.to_csv(tmp_path / "manifest.csv", index=False)
    rep = audit_groups(tmp_path)  # a folder works too
    assert not rep.ok and "not grouped" in rep.problems[0] and "stranger" in rep.problems[0]
    manifest.iloc[:6].to_csv(tmp_path / "manifest.csv", index=False)
    assert audit_groups(tmp_path / "groups.json").ok


def test_stratified_grouping_never_mixes_strata_and_keeps_k() -> None:
    rng = np.random.default_rng(0)
    ids = [f"p{i:02d}" for i in range(20)]
    emb = {i: rng.normal(size=8) for i in ids}
    strata = {i: ("f" if n < 11 else "m") for n, i in enumerate(ids)}
    strata["p19"] = "x"  # a stratum smaller than k is pooled, never left in a group below k
    a = KSameGrouping(k=3).fit(emb, strata, "gender")
    assert a.stratify == "gender" and not a.audit()
    by_group: dict[int, set[str]] = {}
    for ident, g in a.identity_to_group.items():
        by_group.setdefault(g, set()).add(strata[ident])
    pure = [s for s in by_group.values() if s <= {"f"} or s <= {"m"}]
    assert len(pure) >= len(by_group) - 1  # only the group that took the lone "x" may mix
    assert min(a.group_sizes) >= 3
    assert GroupAssignment.from_dict(a.to_dict()).stratify == "gender"
    plain = KSameGrouping(k=3).fit(emb)
    assert plain.stratify is None and "stratify" not in plain.to_dict()
