"""k-Same grouping (MDAV) and the groups.json audit."""

from __future__ import annotations

import json
import shutil

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


def test_grouping_on_kind_keeps_group_mates_alike_in_kind_and_centroids_in_embedding_space() -> None:
    """Twelve people whose faces all look alike to the recogniser, in two skin tones: grouped on
    identity alone the tones mix; grouped on kind as well, no group mixes them, groups still hold k,
    and a stranger's nearest group is still decided by the embedding."""
    rng = np.random.default_rng(1)
    ids = [f"p{i:02d}" for i in range(12)]
    base = rng.normal(size=16)
    emb = {i: base + 0.05 * rng.normal(size=16) for i in ids}
    tone = {i: n % 2 for n, i in enumerate(ids)}  # alternating: identity order says nothing of tone
    kind = {i: np.array([2.0 * tone[i], 0.0]) for i in ids}

    def mixed(a: GroupAssignment) -> int:
        by_group: dict[int, set[int]] = {}
        for ident, g in a.identity_to_group.items():
            by_group.setdefault(g, set()).add(tone[ident])
        return sum(len(s) > 1 for s in by_group.values())

    plain = KSameGrouping(k=3).fit(emb)
    alike = KSameGrouping(k=3).fit(emb, kind=kind, kind_weights={"tone": 0.5})
    assert mixed(plain) > 0 and mixed(alike) == 0
    assert min(alike.group_sizes) >= 3 and not alike.audit()
    assert alike.centroids.shape == plain.centroids.shape == (alike.num_groups, 16)
    assert GroupAssignment.from_dict(alike.to_dict()).kind == {"tone": 0.5} and "kind" not in plain.to_dict()
    with pytest.raises(GroupingError, match="no kind features for 1 identities"):
        KSameGrouping(k=3).fit(emb, kind={i: kind[i] for i in ids[1:]}, kind_weights={"tone": 0.5})


def test_regroup_on_skin_tone_and_age_of_a_prepared_folder(demo_dir, tmp_path) -> None:
    """``kssgan prepare --regroup … --grouping.kind`` on a prepared folder: the demo's people given
    ages in two bands far apart are never grouped across them; bad features are one-line errors."""
    import pandas as pd

    from kssgan.data.prepare import regroup
    from kssgan.data.prepare.cli import main as prepare_main
    from kssgan.data.prepare.grouping_step import kind_features

    folder = tmp_path / "demo"
    shutil.copytree(demo_dir, folder)
    manifest = pd.read_csv(folder / "manifest.csv")
    people = sorted(manifest["identity"].astype(str).unique())
    band = {p: 20 + 40 * (n % 2) for n, p in enumerate(people)}
    manifest["age"] = manifest["identity"].astype(str).map(band)
    manifest.to_csv(folder / "manifest.csv", index=False)
    a = regroup(folder, 3, kind={"age": 2.0, "tone": 0.5}, out=tmp_path / "g.json")
    assert a.kind == {"age": 2.0, "tone": 0.5} and min(a.group_sizes) >= 3
    for g in range(a.num_groups):
        assert len({band[m] for m in a.members(g)}) == 1
    ok = manifest[manifest["status"] == "ok"]
    tones = kind_features(folder, ok, {"tone": 1.0})
    assert set(tones) == set(people) and all(v.shape == (3,) and 0 < v[0] < 10 for v in tones.values())
    with pytest.raises(GroupingError, match="unknown feature"):
        regroup(folder, 3, kind={"height": 1.0}, out=tmp_path / "h.json")
    args = ["--regroup", str(folder), "--k", "3", "--groups-out", str(tmp_path / "c.json")]
    assert prepare_main([*args, "--grouping.kind", "{tone: 0.5, age: 0.5}"]) == 0
    assert GroupAssignment.load(tmp_path / "c.json").kind == {"tone": 0.5, "age": 0.5}
