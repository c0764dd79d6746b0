"""`kssgan evaluate`: metric code on cases with known answers, baselines, recognisers on real faces,
the report files, and one end-to-end run of the command on a briefly trained model."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from kssgan.data.grouping import KSameGrouping
from kssgan.evaluate import baselines, privacy, utility

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def random_embeddings(n_ids: int, per_id: int, dim: int = 16, noise: float = 0.3, seed: int = 0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_ids, dim))
    emb = np.repeat(centres, per_id, axis=0) + noise * rng.normal(size=(n_ids * per_id, dim))
    ids = [f"p{i}" for i in range(n_ids) for _ in range(per_id)]
    return emb, ids


def faces(n_ids: int, per_id: int, side: int = 32, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """Textured synthetic 'faces': a random pattern per identity plus per-image noise."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(n_ids, side, side, 3))
    imgs = np.repeat(base, per_id, axis=0) + rng.integers(-20, 21, size=(n_ids * per_id, side, side, 3))
    ids = [f"p{i}" for i in range(n_ids) for _ in range(per_id)]
    return np.clip(imgs, 0, 255).astype(np.uint8), ids


# -- privacy ------------------------------------------------------------------------------------
def test_identical_images_reidentify_at_rank_one() -> None:
    emb, ids = random_embeddings(8, 3)
    res = privacy.identify(emb, ids, emb.copy(), ids)
    assert res.rank1.value == 1.0
    assert res.n_probes == 24 and res.n_identities == 8


def test_cmc_is_monotone_and_reaches_one_at_the_number_of_identities() -> None:
    emb, ids = random_embeddings(12, 4, noise=2.0)  # noisy: rank-1 well below 1
    probes = emb + np.random.default_rng(1).normal(scale=2.0, size=emb.shape)
    res = privacy.identify(emb, ids, probes, ids, max_rank=12)
    assert 0.0 < res.cmc[0] < 1.0
    assert np.all(np.diff(res.cmc) >= -1e-12)
    assert res.cmc[-1] == pytest.approx(1.0)
    assert len(privacy.identify(emb, ids, probes, ids, max_rank=10).cmc) == 10


def test_probes_tied_between_identities_count_one_over_the_tie() -> None:
    # a probe exactly as similar to 3 identities (itself included) is rank 1 a third of the time
    gallery = np.eye(3)
    probe = np.ones((1, 3))
    res = privacy.identify(gallery, ["a", "b", "c"], probe, ["a"], max_rank=3)
    assert res.cmc.tolist() == pytest.approx([1 / 3, 2 / 3, 1.0])


def test_parrot_attack_on_k_same_pixel_is_exactly_one_over_group_size() -> None:
    imgs, ids = faces(9, 4)
    mapping = {f"p{i}": i // 3 for i in range(9)}  # three groups of three
    out = baselines.k_same_pixel(imgs, ids, mapping)
    emb = out.reshape(len(out), -1).astype(np.float64)
    parrot = privacy.parrot_attack(emb, ids)
    assert parrot.rank1.value == pytest.approx(1 / 3)


def test_parrot_split_is_disjoint_and_covers_every_identity() -> None:
    ids = ["a"] * 4 + ["b"] * 3 + ["c"]
    g, p = privacy.parrot_split(ids)
    assert not np.any(g & p) and np.all(g | p)
    assert g.tolist() == [True, True, False, False, True, True, False, True]


def test_wilson_interval_known_values_and_contains_the_estimate() -> None:
    low, high = privacy.wilson_interval(5, 10)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = privacy.wilson_interval(0, 10)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    for s, n in [(1, 3), (7, 40), (40, 40), (123, 164)]:
        p = privacy.proportion(s, n)
        assert p.ci_low <= p.value <= p.ci_high


def test_clustered_interval_of_single_probe_clusters_is_the_t_interval_of_the_mean() -> None:
    # ten independent probes, half hit: mean 0.5, s² = 10/9 · 0.25, t(0.975, 9) = 2.2622
    values = np.array([0.0, 1.0] * 5)
    low, high = privacy.clustered_interval(values, [f"c{i}" for i in range(10)])
    half = 2.262157 * np.sqrt(10 / 9 * 0.25 / 10)
    assert (low, high) == pytest.approx((0.5 - half, 0.5 + half), abs=1e-5)


def test_clustered_interval_counts_groups_not_probes() -> None:
    # the same 0/1 pattern repeated inside clusters: 40 probes but only 4 independent units
    rng = np.random.default_rng(0)
    hits = rng.random(40) < 0.4
    clusters = np.repeat(["a", "b", "c", "d"], 10)
    shared = np.repeat(hits[:4], 10).astype(float)  # every probe of a cluster has its cluster's outcome
    low_i, high_i = privacy.clustered_interval(shared, [f"c{i}" for i in range(40)])
    low_c, high_c = privacy.clustered_interval(shared, clusters)
    assert high_c - low_c > 2 * (high_i - low_i)


def test_clustered_interval_falls_back_to_wilson_over_clusters_at_zero_and_one() -> None:
    clusters = np.repeat(np.arange(10), 3)
    assert privacy.clustered_interval(np.zeros(30), clusters) == pytest.approx(privacy.wilson_interval(0, 10))
    assert privacy.clustered_interval(np.ones(30), clusters) == pytest.approx(privacy.wilson_interval(10, 10))
    with pytest.raises(ValueError, match="cluster labels"):
        privacy.clustered_interval(np.zeros(3), ["a", "b"])


def test_parrot_on_k_same_pixel_has_a_tight_clustered_bound_where_wilson_is_wide() -> None:
    # 102 probes in 34 groups of 3 (London's size): every probe's expected hit is exactly 1/3
    imgs, ids = faces(102, 2, side=8)
    mapping = {f"p{i}": i // 3 for i in range(102)}
    out = baselines.k_same_pixel(imgs, ids, mapping)
    emb = out.reshape(len(out), -1).astype(np.float64)
    parrot = privacy.parrot_attack(emb, ids, clusters=[mapping[i] for i in ids])
    assert parrot.rank1.value == pytest.approx(1 / 3)
    assert parrot.rank1.ci_high > 1 / 3 + 0.05  # Wilson: 102 coin flips
    c = parrot.rank1_clustered
    assert c["n_clusters"] == 34 and c["unit"] == "group"
    assert (c["ci_low"], c["ci_high"]) == pytest.approx((1 / 3, 1 / 3))
    # an attacker that always wins is still bounded by Wilson over the 34 groups, not collapsed to 1
    exact = privacy.parrot_attack(imgs.reshape(len(imgs), -1).astype(float), ids, clusters=[mapping[i] for i in ids])
    assert exact.rank1.value == 1.0 and exact.rank1_clustered["ci_low"] < 1.0


def _release_row(clustered_high: float, draws_value: float | None = None, crop_parrot: float = 0.0) -> dict:
    """A result row whose release-level parrot reads 0.324 on one release (and ``draws_value`` over
    draws), with G's crop reading ``crop_parrot``."""
    r1 = {"value": 0.324, "n": 102, "ci_low": 0.24, "ci_high": 0.419, "successes": 33.0}
    parrot = {"rank1": r1, "rank1_clustered": {"ci_low": 0.31, "ci_high": clustered_high, "n_clusters": 33}}
    parrot["rank1_clustered"]["unit"] = "k-Same group"
    level = {"parrot": parrot, "verification": {"protection_rate": 1.0}}
    if draws_value is not None:
        d1 = dict(r1, value=draws_value, n=408, ci_high=draws_value + 0.04)
        level["parrot_draws"] = {"rank1": d1, "rank1_clustered": dict(parrot["rank1_clustered"]), "draws": 4}
    crop = {"parrot": {"rank1": dict(r1, value=crop_parrot)}, "verification": {"protection_rate": 1.0}}
    return {"method": "kss-gan", "k": 3, "privacy_release": {"sface": level}, "privacy": {"sface": crop}, "utility": {}}


def test_release_check_judges_the_clustered_bound_and_shows_wilson_beside_it() -> None:
    from kssgan.evaluate.release_check import checks

    passed = [c for c in checks({"results": []}, _release_row(0.334)) if "upper bound" in c[0]]
    assert passed[0][2] and "clustered by k-Same group, 33" in passed[0][0] and "Wilson" in passed[0][1]
    assert "0.419" in passed[0][1]
    failed = [c for c in checks({"results": []}, _release_row(0.40)) if "upper bound" in c[0]]
    assert not failed[0][2] and failed[0][3] == "+0.017"


NAMES = ("yaw", "pitch", "mouth", "smile", "eyes")


def test_release_check_judges_the_release_never_the_crop() -> None:
    """A crop at 1/k and a release over draws above it miss; a row whose release was not measured
    misses; the fidelity targets read the release's figures."""
    from kssgan.evaluate.release_check import checks

    row = _release_row(0.36, draws_value=0.34, crop_parrot=0.30)
    parrot = next(c for c in checks({"results": []}, row) if c[0].startswith("parrot rank-1"))
    assert not parrot[2] and parrot[3] == "+0.007" and "over 4 releases (one release: 0.324)" in parrot[1]
    row = _release_row(0.36, draws_value=0.30, crop_parrot=0.90)  # a leaking crop does not decide it either
    assert next(c for c in checks({"results": []}, row) if c[0].startswith("parrot rank-1"))[2]
    crop_only = {"method": "kss-gan", "k": 3, "privacy": row["privacy"], "utility": {}}
    assert [c[2] for c in checks({"results": []}, crop_only)] == [False]
    geo = {n: {"pearson": r} for n, r in zip(NAMES, (0.95, 0.5, 0.7, 0.69, 0.5), strict=True)}
    row["utility"] = {
        "geometry": geo,
        "skin_tone": {"delta_e_median": 6.0, "share_over_10": 0.2},
        "kind": {"gender_agreement": 0.96, "age_within_8": 0.5},
    }
    row["quality"] = {"inner_sharpness_ratio": 0.7, "seam_ratio": 1.6, "face_found": 1.0}
    got = {
        c[0].split(" ")[0] + (" " + c[0].split(" ")[1] if c[0].startswith("skin") else ""): c[2]
        for c in checks({"results": []}, row)
    }
    keys = (*NAMES, "gender", "age", "inner", "seam", "YuNet")
    assert {k: got[k] for k in keys} == {
        "yaw": True, "pitch": False, "mouth": True, "smile": False, "eyes": True,
        "gender": True, "age": False, "inner": True, "seam": False, "YuNet": True,
    }  # fmt: skip
    row["release_options"] = {"sharpen": 0.8}  # sharpness is judged with the unsharp mask off only
    sharp = next(c for c in checks({"results": []}, row) if c[0].startswith("inner sharpness"))
    assert not sharp[2] and sharp[3] == "measured with the mask on"


class FakeRecogniser:
    name, threshold, metric = "fake", 0.5, "cosine"

    def is_match(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        a = a / np.linalg.norm(a, axis=1, keepdims=True)
        b = b / np.linalg.norm(b, axis=1, keepdims=True)
        return np.sum(a * b, axis=1) >= self.threshold


def test_verification_protection_rate() -> None:
    orig = np.eye(4)
    deid = np.array([[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1], [1, 0, 0, 0]], dtype=float)  # 2 of 4 match
    res = privacy.verification(FakeRecogniser(), orig, deid)
    assert res.match.value == 0.5 and res.protection_rate == 0.5
    rates = privacy.same_vs_different_match_rates(FakeRecogniser(), np.eye(3)[[0, 0, 1, 2]], ["a", "a", "b", "c"])
    assert rates["same_person"]["value"] == 1.0 and rates["different_person"]["value"] == 0.0


def test_group_audit_flags_small_groups() -> None:
    assert privacy.group_audit({"a": 0, "b": 0, "c": 1, "d": 1}, 2)["ok"]
    bad = privacy.group_audit({"a": 0, "b": 0, "c": 1}, 2)
    assert not bad["ok"] and bad["violations"] == ["group 1 holds 1 identities, fewer than k=2"]


# -- baselines ----------------------------------------------------------------------------------
def test_k_same_pixel_outputs_of_a_group_are_identical_and_groups_differ() -> None:
    imgs, ids = faces(10, 3)
    emb, _ = random_embeddings(10, 1)
    groups = KSameGrouping(k=3).fit({f"p{i}": emb[i] for i in range(10)})
    out = baselines.k_same_pixel(imgs, ids, groups.identity_to_group)
    by_group: dict[int, list[np.ndarray]] = {}
    for img, ident in zip(out, ids, strict=True):
        by_group.setdefault(groups.group_of(ident), []).append(img)
    for members in by_group.values():
        assert all(np.array_equal(members[0], m) for m in members)
    firsts = [m[0] for m in by_group.values()]
    assert not np.array_equal(firsts[0], firsts[1])
    # the surrogate is the mean over the group's identities of each identity's mean image
    g0 = [i for i in sorted(set(ids)) if groups.group_of(i) == 0]
    expected = np.mean([imgs[[j for j, x in enumerate(ids) if x == i]].astype(float).mean(0) for i in g0], axis=0)
    assert np.abs(by_group[0][0].astype(float) - expected).max() <= 0.5 + 1e-9


def test_k_same_eigen_with_every_component_equals_k_same_pixel() -> None:
    imgs, ids = faces(6, 2, side=16)
    mapping = {f"p{i}": i // 2 for i in range(6)}
    eig = baselines.k_same_eigen(imgs, ids, mapping, components=len(imgs))
    pix = baselines.k_same_pixel(imgs, ids, mapping)
    assert np.abs(eig.astype(int) - pix.astype(int)).max() <= 1
    few = baselines.k_same_eigen(imgs, ids, mapping, components=2)
    assert np.array_equal(few[0], few[2]) and np.abs(few.astype(int) - pix.astype(int)).max() > 1


def test_blur_and_pixelation_reduce_sharpness() -> None:
    imgs, _ = faces(3, 1, side=64)
    sharp = utility.laplacian_variance(imgs)
    assert np.all(utility.laplacian_variance(baselines.blur(imgs, 0.05)) < 0.1 * sharp)
    pix = baselines.pixelate(imgs, 8)
    assert np.all(pix[:, :8, :8] == pix[:, :1, :1])  # one constant 8×8 cell
    assert np.all(utility.laplacian_variance(pix) < sharp)


def test_ssim_psnr_known_values() -> None:
    imgs, _ = faces(2, 1)
    same = utility.ssim_psnr(imgs, imgs)
    assert same["ssim"] == pytest.approx(1.0) and same["psnr_db"] == 100.0
    shifted = np.clip(imgs.astype(int) + 10, 0, 255).astype(np.uint8)
    assert utility.ssim_psnr(imgs, shifted)["psnr_db"] < 35


def test_expression_classifier_learns_a_separable_cue() -> None:
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 60, size=(40, 32, 32, 3)).astype(np.uint8)
    labels = ["happy" if i % 2 else "sad" for i in range(40)]
    imgs[1::2, 20:28, 8:24] = 250  # a bright "smile"
    clf = utility.ExpressionClassifier().fit(imgs[:30], labels[:30])
    res = clf.evaluate(imgs[30:], labels[30:])
    assert res["accuracy"] == 1.0 and np.trace(res["confusion"]) == 10


def test_kid_and_fid_of_a_distribution_with_itself_are_near_zero() -> None:
    emb, _ = random_embeddings(20, 5)
    other = emb + 3.0
    same = utility.kid(emb, emb[::-1].copy(), subsets=5, subset_size=50)["mean"]
    far = utility.kid(emb, other, subsets=5, subset_size=50)["mean"]
    assert abs(same) < 0.05 * far
    assert utility.fid(emb, emb) == pytest.approx(0.0, abs=1e-6)
    assert utility.fid(emb, other) == pytest.approx(9.0 * emb.shape[1], rel=1e-3)  # |Δmean|² = 16 · 3²


# -- recognisers on real faces (ORL) ------------------------------------------------------------
def orl_aligned(root: Path, n_ids: int, per_id: int) -> tuple[np.ndarray, list[str]]:
    from kssgan.faces import align_faces, get_detector

    det = get_detector("yunet")
    crops, ids = [], []
    for s in range(1, n_ids + 1):
        for m in range(1, per_id + 1):
            img = cv2.imread(str(root / "orl" / "orl_faces" / f"s{s}" / f"{m}.pgm"), cv2.IMREAD_COLOR)
            found = det.detect(img)
            if found:
                crops.append(align_faces([img[:, :, ::-1]], [found[0].landmarks], size=112)[0])
                ids.append(f"s{s}")
    return np.stack(crops), ids


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["sface", "dlib"])
def test_recognisers_match_same_person_pairs_and_not_different_people(shared_datasets: Path, name: str) -> None:
    from kssgan.evaluate.release import recogniser_crops
    from kssgan.faces import get_recognizer

    crops, ids = orl_aligned(shared_datasets, n_ids=6, per_id=4)
    assert len(crops) >= 20
    rec = get_recognizer(name)
    emb = rec.embed(recogniser_crops(crops))
    rates = privacy.same_vs_different_match_rates(rec, emb, ids)
    assert rates["same_person"]["value"] >= 0.85, rates
    assert rates["different_person"]["value"] <= 0.10, rates
    # identical images re-identify at rank 1 with a real recogniser
    assert privacy.identify(emb, ids, emb, ids).rank1.value == 1.0


# -- report -------------------------------------------------------------------------------------
def test_report_files_exist_and_plots_are_pngs(tmp_path: Path) -> None:
    from kssgan.evaluate.pipeline import EvalSettings, MethodOutput
    from kssgan.evaluate.release import ReleaseSet
    from kssgan.evaluate.report import write_report

    imgs, ids = faces(4, 2)
    p = privacy.proportion(1, 8).to_dict()
    ident = {"rank1": p, "cmc": [0.1, 0.5, 1.0], "n_probes": 8, "n_identities": 4}
    priv = {
        "identification": ident,
        "parrot": ident,
        "verification": {"match": p, "protection_rate": 0.9},
        "kid": {"mean": 0.01},
    }
    util = {"sharpness_laplacian_var": 10.0, "ssim": 0.5, "psnr_db": 20.0, "detection_rate_yunet": 1.0}
    results = [
        {"method": m, "k": k, "privacy": {"sface": priv}, "utility": util}
        for m, k in [("original", None), ("blur", None), ("k-same-pixel", 2), ("k-same-pixel", 3)]
    ]
    metrics = {
        "dataset": {"name": "t", "prepared_dir": "x", "split": "all", "images": 8, "identities": 4, "image_size": 32},
        "checkpoints": [],
        "groupings": {
            "2": privacy.group_audit({"p0": 0, "p1": 0, "p2": 1, "p3": 1}, 2),
            "3": privacy.group_audit({"p0": 0, "p1": 0, "p2": 0, "p3": 0}, 3),
        },
        "recognisers": {
            "sface": {"threshold": 0.363, "metric": "cosine", "real_pairs": {"same_person": p, "different_person": p}}
        },
        "results": results,
    }
    outputs = [MethodOutput("original", None, imgs), MethodOutput("k-same-pixel", 2, imgs[::-1].copy())]
    release = ReleaseSet("t", tmp_path, imgs, pd.DataFrame({"identity": ids}), None, 0.0)
    write_report(tmp_path, metrics, outputs, release, 2, EvalSettings(sample_rows=3, originals_in_grid=False))
    for name in ("reid_vs_k.png", "sharpness_vs_k.png", "cmc.png", "samples.png"):
        data = (tmp_path / name).read_bytes()
        assert data[:8] == PNG_MAGIC and len(data) > 1000, name
        assert cv2.imread(str(tmp_path / name)) is not None
    assert json.loads((tmp_path / "metrics.json").read_text())["results"][2]["k"] == 2
    md = (tmp_path / "report.md").read_text()
    assert "| k-same-pixel | 3 | 0.333 |" in md and "![reid_vs_k.png](reid_vs_k.png)" in md


# -- end to end ---------------------------------------------------------------------------------
@pytest.mark.slow
def test_kssgan_evaluate_end_to_end_on_a_briefly_trained_model(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    import hashlib
    import shutil

    from kssgan.cli import main as kssgan_main
    from kssgan.data.datamodule import FaceDataModule
    from tests.conftest import quiet_trainer, tiny_model

    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=4)
    ckpts = []
    for rec_loss in ("siamese", "l1"):
        model = tiny_model(dm, rec_loss=rec_loss, n_critic=1)
        t = quiet_trainer(tmp_path, max_steps=4)
        t.fit(model, dm)
        ckpts.append(tmp_path / f"{rec_loss}.ckpt")
        t.save_checkpoint(ckpts[-1])
    out = tmp_path / "eval"
    argv = [
        "evaluate",
        "--ckpt",
        f"k3={ckpts[0]}",
        "--ablation-ckpt",
        str(ckpts[1]),
        "--dataset",
        str(demo_dir),
        "--k",
        "2,3,5",
        "--recognisers",
        "sface",
        "--out",
        str(out),
        "--no-progress",
        "--no-gender",
        "--no-detection",
        "--release-draws",
        "2",
    ]
    twice = ["evaluate", "--ckpt", str(ckpts[0]), "--ckpt", str(ckpts[0]), "--dataset", str(demo_dir)]
    assert kssgan_main([*twice, "--recognisers", "sface", "--out", str(tmp_path / "x")]) == 2  # same method and k
    capsys.readouterr()
    copy = tmp_path / "copy.ckpt"  # the same file under another name, listed as the ablation
    shutil.copyfile(ckpts[0], copy)
    both = ["evaluate", "--ckpt", str(ckpts[0]), "--ablation-ckpt", str(copy), "--dataset", str(demo_dir)]
    assert kssgan_main([*both, "--recognisers", "sface", "--out", str(tmp_path / "y")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "kss-gan" in err and "stargan-l1" in err and "same checkpoint" in err
    assert kssgan_main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    rows = {(r["method"], r["k"]): r for r in metrics["results"]}
    assert {("kss-gan", 3), ("stargan-l1", 3), ("k-same-pixel", 5), ("k-same-eigen", 2), ("blur", None)} <= set(rows)
    assert rows[("original", None)]["privacy"]["sface"]["identification"]["rank1"]["value"] == 1.0
    for k in (2, 3, 5):
        assert metrics["groupings"][str(k)]["ok"]
        # k-Same-Pixel: every member of a group gets the same face, so the parrot attack is ≤ 1/k
        assert rows[("k-same-pixel", k)]["privacy"]["sface"]["parrot"]["rank1"]["value"] <= 1 / k + 1e-9
    assert metrics["checkpoints"][0]["k"] == 3
    sha = {c["method"]: c["sha256"] for c in metrics["checkpoints"]}
    assert sha["kss-gan"] == hashlib.sha256(ckpts[0].read_bytes()).hexdigest()
    assert sha["stargan-l1"] == hashlib.sha256(ckpts[1].read_bytes()).hexdigest()
    assert metrics["checkpoints"][0]["prepare"]["dataset"] == "demo"
    for name in ("report.md", "reid_vs_k.png", "sharpness_vs_k.png", "cmc.png", "samples.png"):
        assert (out / name).is_file(), name
    cached = sorted(p.name for p in (out / "cache").rglob("*.npz"))
    # every method but the reference is also embedded after the attacker's JPEG 75 + half-size round trip
    n_embedded = len(rows) + len(rows) - 1
    assert "kss-gan_k3_sface.npz" in cached and "kss-gan_k3_jpeg75_x0.5_sface.npz" in cached
    assert len(cached) == n_embedded
    assert all("privacy_attacker" in r for key, r in rows.items() if key[0] != "original")
    # the release-level attack: each checkpoint's full-photo release, detected and aligned by the attacker
    for key in (("kss-gan", 3), ("stargan-l1", 3)):
        level = rows[key]["privacy_release"]["sface"]
        assert level["photos"] == metrics["dataset"]["images"]
        assert level["withheld"] + level["attacker_found_face"]["n"] == level["photos"]
        for entry in (level, level["after_attack"]):
            assert 0.0 <= entry["verification"]["protection_rate"] <= 1.0
            if "parrot" in entry:
                assert 0.0 <= entry["parrot"]["rank1"]["value"] <= 1.0
                # --release-draws 2: the parrot attack again over two releases, each of every probe photo
                draws = entry["parrot_draws"]
                assert draws["draws"] == 2 and draws["rank1"]["n"] <= 2 * draws["probe_photos"]
                assert 0.0 <= draws["rank1"]["value"] <= 1.0
    assert all("privacy_release" not in r for key, r in rows.items() if key[0] in ("original", "k-same-pixel"))
    # what the release keeps of its source, on the same released photos
    kept = rows[("kss-gan", 3)]
    assert set(kept["utility"]["geometry"]) == {"yaw", "pitch", "mouth", "smile", "eyes"}
    assert kept["utility"]["measured_on"] == "released full photos"
    assert 0.0 <= kept["quality"]["face_found"] <= 1.0 and kept["release_options"]["follow"] == "none"
    report = (out / "report.md").read_text()
    assert "## Release targets" in report and "## Privacy of the released photos (release level)" in report
    assert "## The release follows its source (release level)" in report
    assert "parrot over draws" in report
    # a second run reads every embedding from the cache
    assert kssgan_main(argv) == 0
    again = json.loads((out / "metrics.json").read_text())
    assert again["cache"]["misses"] == 0 and again["cache"]["hits"] == n_embedded


def test_regrouping_for_another_k_matches_kssgan_prepare_regroup(demo_dir: Path, tmp_path: Path) -> None:
    from kssgan.data.prepare import regroup
    from kssgan.evaluate.release import load_release

    release = load_release(demo_dir, None, "test")  # a split: the grouping still covers every identity
    assert release.grouping(3) is release.groups
    mine = release.grouping(4)
    theirs = regroup(demo_dir, 4, out=tmp_path / "groups_k4.json")
    assert mine.identity_to_group == theirs.identity_to_group
    assert privacy.group_audit(mine.identity_to_group, 4)["ok"]
