"""The release recipe of issue 9: targets, group batches, k-Same consistency, surrogate faces and
the validation privacy metrics (known answers)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import quiet_trainer, tiny_model

from kssgan.data.datamodule import FaceDataModule
from kssgan.data.group_sampler import GroupBatchSampler
from kssgan.data.labels import LabelSpec
from kssgan.losses import group_consistency, low_frequency_l1, similarity_hinge
from kssgan.surrogates import assign_surrogates, batch_k_means, group_means
from kssgan.targets import field_index, permuted_targets, release_targets, set_onehot, without_field

SPEC = LabelSpec.build(5, {"expression": ["happy", "neutral", "sad"]}, ["glasses"])


def _labels(n: int = 64, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    recs = [
        {
            "group": int(rng.integers(5)),
            "expression": str(rng.choice(["happy", "neutral", "sad"])),
            "glasses": int(rng.integers(2)),
        }
        for _ in range(n)
    ]
    return torch.from_numpy(SPEC.encode_many(recs))


def test_release_targets_keep_attributes_and_change_only_the_group() -> None:
    labels = _labels()
    gen = torch.Generator().manual_seed(1)
    out = release_targets(labels, SPEC, own_group_share=0.0, generator=gen)
    assert torch.equal(without_field(out, SPEC, "group"), without_field(labels, SPEC, "group"))
    assert (field_index(out, SPEC, "group") != field_index(labels, SPEC, "group")).all()
    assert torch.equal(out.sum(1), labels.sum(1))  # still one-hot
    same = release_targets(labels, SPEC, own_group_share=1.0, generator=gen)
    assert torch.equal(same, labels)
    half = release_targets(_labels(2000, 3), SPEC, own_group_share=0.5, generator=gen)
    kept = (field_index(half, SPEC, "group") == field_index(_labels(2000, 3), SPEC, "group")).float().mean()
    assert 0.45 < float(kept) < 0.55


def test_permuted_targets_change_attributes_too() -> None:
    labels = _labels()
    out = permuted_targets(labels, torch.Generator().manual_seed(0))
    assert not torch.equal(without_field(out, SPEC), without_field(labels, SPEC))
    assert torch.equal(out.sum(0), labels.sum(0))  # a permutation of the rows


def test_set_onehot_sets_one_field() -> None:
    labels = _labels(8)
    out = set_onehot(labels, SPEC, "expression", torch.full((8,), 2))
    assert (field_index(out, SPEC, "expression") == 2).all()
    assert torch.equal(field_index(out, SPEC, "group"), field_index(labels, SPEC, "group"))


def test_group_sampler_yields_p_groups_times_k_members() -> None:
    row_groups = [g for g in range(7) for _ in range(3 + g % 2)]
    sampler = GroupBatchSampler(row_groups, groups_per_batch=4, members_per_group=3, seed=0)
    batches = list(sampler)
    assert len(batches) == len(row_groups) // 12
    for batch in batches:
        assert len(batch) == 12
        groups = [row_groups[i] for i in batch]
        assert len(set(groups)) == 4
        assert all(groups.count(g) == 3 for g in set(groups))
    assert list(sampler) != batches  # the next epoch draws again
    with pytest.raises(ValueError, match="exceeds"):
        GroupBatchSampler(row_groups, groups_per_batch=8, members_per_group=2)


def test_group_consistency_is_zero_iff_members_agree() -> None:
    groups = torch.tensor([0, 0, 0, 1, 1, 1])
    base = torch.randn(2, 16)
    same = base[groups]
    assert float(group_consistency(same, groups)) == pytest.approx(0.0, abs=1e-6)
    noisy = same + 0.3 * torch.randn_like(same)
    assert float(group_consistency(noisy, groups)) > 0.01
    # scale-free: only directions count (embeddings are normalised)
    assert float(group_consistency(same * torch.rand(6, 1).add(0.5), groups)) == pytest.approx(0.0, abs=1e-6)


def test_similarity_hinge_stops_at_the_margin() -> None:
    f = torch.nn.functional.normalize(torch.randn(4, 8), dim=1)
    assert torch.allclose(similarity_hinge(f, f, 0.5), torch.full((4,), 0.5))
    assert torch.equal(similarity_hinge(f, -f, 0.5), torch.zeros(4))  # the antipode earns nothing more


def test_low_frequency_l1_ignores_fine_detail() -> None:
    x = torch.zeros(1, 3, 32, 32)
    checker = (torch.arange(32).view(-1, 1) + torch.arange(32)).remainder(2).float().mul(2).sub(1)
    assert float(low_frequency_l1(x + 0.5 * checker, x, 8)) == pytest.approx(0.0, abs=1e-6)
    assert float(low_frequency_l1(x + 0.5, x, 8)) == pytest.approx(0.5)


def test_group_means_and_fallback() -> None:
    images = torch.arange(4.0).view(4, 1, 1, 1).expand(4, 3, 2, 2).clone()
    group, value = torch.tensor([0, 0, 1, 1]), torch.tensor([0, 1, 0, 0])
    means, fallbacks = group_means(images, group, value, 2, 2)
    assert means[0, 0].unique().item() == 0 and means[0, 1].unique().item() == 1
    assert means[1, 0].unique().item() == 2.5
    assert fallbacks == [(1, 1)] and means[1, 1].unique().item() == 2.5


def test_assign_surrogates_is_a_derangement_within_strata() -> None:
    rng = np.random.default_rng(0)
    centroids = rng.normal(size=(8, 16))
    strata = ["f", "f", "f", "m", "m", "m", "m", "f"]
    src = assign_surrogates(centroids, "farthest", strata)
    assert sorted(src.tolist()) == list(range(8))  # a permutation: no two groups share a face
    assert all(src[g] != g for g in range(8))
    assert all(strata[src[g]] == strata[g] for g in range(8))
    assert assign_surrogates(centroids, "own").tolist() == list(range(8))
    c = centroids / np.linalg.norm(centroids, axis=1, keepdims=True)
    far, near = assign_surrogates(centroids, "farthest"), assign_surrogates(centroids, "nearest")
    assert np.mean([c[g] @ c[far[g]] for g in range(8)]) < np.mean([c[g] @ c[near[g]] for g in range(8)])


def test_batch_k_means_average_same_value_rows() -> None:
    images = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 3, 4, 4).clone()
    value = torch.tensor([0, 0, 0, 1, 1, 2])
    out = batch_k_means(images, value, k=3, generator=torch.Generator().manual_seed(0))
    assert out[0].unique().item() == pytest.approx(1.0)  # rows 0, 1, 2
    assert out[3].unique().item() == pytest.approx(3.5)  # rows 3, 4
    assert out[5].unique().item() == pytest.approx(5.0)  # alone


# -- the model in surrogate mode ------------------------------------------------------------------
@pytest.fixture(scope="module")
def surrogate_model(demo_dir: Path):
    import lightning as L

    L.seed_everything(0, verbose=False)
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=8)
    model = tiny_model(
        dm, n_critic=1, generator_input="surrogate", g_residual=True, g_upsample="resize", lambda_detail=1.0
    )
    trainer = quiet_trainer(demo_dir.parent / "surrogate_train", max_steps=4, limit_val_batches=1, val_check_interval=2)
    trainer.fit(model, dm)
    return model.eval(), dm


def test_surrogate_release_is_one_face_per_group(surrogate_model) -> None:
    model, dm = surrogate_model
    ds = dm.splits["train"]
    groups = dm.prepared.groups
    g = [groups.group_of(ds.identity_names[int(i)]) for i in ds.identity]
    a = next(i for i in range(len(ds)) if g[i] == g[0] and ds.identity[i] != ds.identity[0])
    x = torch.stack([ds[0]["image"], ds[a]["image"]])
    labels = torch.stack([ds.labels[0], ds.labels[a]])
    with torch.no_grad():
        out = model.translate(x, labels)
        noise = model.translate(torch.randn_like(x), labels)
    assert torch.equal(out[0], out[1])  # two different people of one group: the same released face
    assert torch.equal(out, noise)  # the source's pixels are never read
    assert model.generator.label_dim == model.spec.dim - model.spec.num_groups
    src = model.surrogates.source_group.tolist()
    assert sorted(src) == list(range(model.spec.num_groups)) and all(s != i for i, s in enumerate(src))


def test_surrogate_bank_travels_in_the_checkpoint(surrogate_model, tmp_path: Path) -> None:
    import lightning as L

    from kssgan.system import load_kssgan

    model, dm = surrogate_model
    trainer = L.Trainer(logger=False, enable_checkpointing=False, enable_progress_bar=False, accelerator="cpu")
    trainer.strategy.connect(model)
    path = tmp_path / "m.ckpt"
    trainer.save_checkpoint(path)
    loaded = load_kssgan(str(path))
    assert torch.equal(loaded.surrogates.faces, model.surrogates.faces) and bool(loaded.surrogates.ready)
    labels = dm.splits["train"].labels[:4]
    x = torch.zeros(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(loaded.translate(x, labels), model.translate(x, labels))


# -- validation privacy metrics: known answers ------------------------------------------------
def _monitor_on(model, dm, tmp_path: Path):
    from kssgan.privacy_monitor import PrivacyMonitor

    trainer = quiet_trainer(tmp_path)
    trainer.datamodule = dm  # what Lightning sets during fit
    trainer.strategy.connect(model)
    mon = PrivacyMonitor(recognisers=["sface", "dlib"], splits=["none"])  # no such split: every image
    return mon.measure(trainer, model), mon


@pytest.mark.slow
def test_privacy_monitor_k_same_pixel_scores_exactly_one_over_k(demo_dir: Path, tmp_path: Path) -> None:
    """Untrained residual G = identity, surrogate of the group's own mean = k-Same-Pixel."""
    from kssgan.data.surrogate_data import build_surrogate_bank

    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=8)
    dm.setup()
    model = tiny_model(dm, generator_input="surrogate", g_residual=True, surrogate_assignment="own")
    build_surrogate_bank(model, dm)
    m, mon = _monitor_on(model, dm, tmp_path)
    sizes = dm.prepared.groups.group_sizes
    assert set(sizes) == {3}
    for r in ("sface", "dlib"):
        assert m[f"parrot_rank1_{r}"] == pytest.approx(1 / 3, abs=1e-9)
    assert mon.last["measured_on"] == "all" and mon.last["images"] == len(dm.prepared.manifest)


@pytest.mark.slow
def test_privacy_monitor_identical_images_are_fully_reidentified(demo_dir: Path, tmp_path: Path) -> None:
    """Untrained residual G in image mode returns its input: every output is its original."""
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=8)
    dm.setup()
    model = tiny_model(dm, g_residual=True)
    m, _ = _monitor_on(model, dm, tmp_path)
    for r in ("sface", "dlib"):
        assert m[f"rank1_{r}"] == pytest.approx(1.0)
        assert m[f"protection_{r}"] == pytest.approx(0.0)
    assert m["sharpness_ratio"] == pytest.approx(1.0)
    assert m["release_score"] == pytest.approx(0.0)


def test_surrogate_release_generator_runs_in_every_backend(surrogate_model, tmp_path: Path) -> None:
    """deidentify's torch backend (channels-last) and the ONNX export give the model's own release."""
    from kssgan.deidentify.backends import OnnxGenerator, TorchGenerator
    from kssgan.deidentify.export import export_generator

    model, dm = surrogate_model
    labels = dm.splits["train"].labels[:4]
    x = torch.rand(4, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        ref = model.translate(x, labels).numpy()
    torch_out = TorchGenerator(model.release_generator(), "cpu", "fp32", channels_last=True)(x.numpy(), labels.numpy())
    assert np.abs(torch_out - ref).max() < 1e-5
    path = export_generator(model.release_generator(), model.spec.dim, 32, tmp_path / "g.onnx", {})
    onnx = OnnxGenerator(path, "cpu")
    assert onnx.inputs == {"label"}  # the image is never read, so the graph does not take it
    assert np.abs(onnx(x.numpy(), labels.numpy()) - ref).max() < 1e-4


def test_ghosted_mean_is_a_softened_copy_of_one_face() -> None:
    from kssgan.surrogates import ghosted_mean

    torch.manual_seed(0)
    x = torch.zeros(2, 3, 32, 32)
    x[:, :, 14:18, 8:24] = 1.0  # a sharp bar
    g = ghosted_mean(x, 3)
    assert g.shape == x.shape
    assert (g - x).abs().mean() > 0.01  # jittered and softened ...
    assert float(g.mean()) == pytest.approx(float(x.mean()), rel=0.15)  # ... but the same content
    edge = lambda t: (t[..., 1:, :] - t[..., :-1, :]).pow(2).mean()  # noqa: E731  (gradient energy)
    assert edge(g) < edge(x)  # softer edges: what G learns to undo


def test_release_sharpen_is_an_unsharp_mask_of_the_release_in_every_backend(surrogate_model, tmp_path: Path) -> None:
    """``release_sharpen`` sharpens what is released (translate, deidentify's backends, ONNX) by
    exactly the unsharp mask of the unsharpened release, and leaves the training generator alone."""
    from kssgan.deidentify.backends import OnnxGenerator
    from kssgan.deidentify.export import export_generator
    from kssgan.evaluate.utility import laplacian_variance
    from kssgan.surrogates import unsharp

    model, dm = surrogate_model
    labels = dm.splits["train"].labels[:6]
    x = torch.zeros(6, 3, 32, 32)
    with torch.no_grad():
        plain = model.translate(x, labels)
        model.hparams.release_sharpen = 0.5
        try:
            sharp = model.translate(x, labels)
            path = export_generator(model.release_generator(), model.spec.dim, 32, tmp_path / "s.onnx", {})
        finally:
            model.hparams.release_sharpen = 0.0
    assert torch.allclose(sharp, unsharp(plain, 0.5), atol=1e-6)
    assert not torch.allclose(sharp, plain)
    assert torch.equal(unsharp(plain, 0.0), plain)
    u8 = lambda t: ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()  # noqa: E731
    assert laplacian_variance(u8(sharp)).mean() > 1.5 * laplacian_variance(u8(plain)).mean()
    assert np.abs(OnnxGenerator(path, "cpu")(x.numpy(), labels.numpy()) - sharp.numpy()).max() < 1e-4


def test_medoid_rows_pick_each_members_most_typical_photo() -> None:
    from kssgan.surrogates import medoid_rows

    flat = torch.tensor([0.0, 0.1, 5.0, 1.0, 1.2, 1.1, 3.0])  # a: 0, 0.1, 5 (outlier); b: 1, 1.2, 1.1; c: 3
    images = flat.view(-1, 1, 1, 1).expand(-1, 3, 2, 2).clone()
    ids = ["a", "a", "a", "b", "b", "b", "c"]
    value = torch.tensor([0, 0, 0, 0, 0, 0, 1])
    assert medoid_rows(images, ids, value) == [1, 5, 6]  # closest to a's mean 1.7; to b's 1.1; c alone
    assert medoid_rows(images, ids, torch.tensor([0, 1, 0, 0, 0, 0, 1])) == [0, 1, 5, 6]  # (a, 1) is its own


def test_the_monitor_judges_the_parrot_over_release_draws_where_measured() -> None:
    from kssgan.privacy_monitor import PrivacyMonitor, _parrot

    assert _parrot({"parrot_rank1": 0.5, "parrot_draws_rank1": 0.3}) == 0.3
    assert _parrot({"parrot_rank1": 0.5, "parrot_draws_rank1": None}) == 0.5
    assert _parrot({"parrot_rank1": 0.4}) == 0.4
    assert PrivacyMonitor(release_draws=3).release_draws == 3
    with pytest.raises(ValueError, match="release_draws must be >= 1"):
        PrivacyMonitor(release_draws=0)


def test_surrogate_mix_kind_averages_only_faces_of_one_kind(demo_dir: Path, tmp_path: Path) -> None:
    """``surrogate_mix: kind``: a training mean never joins groups of different ``surrogate_match``
    values (a woman's face with a man's), where ``attribute`` does."""
    import shutil

    import pandas as pd

    from kssgan.data.surrogate_data import group_kind_codes

    data = tmp_path / "demo"
    shutil.copytree(demo_dir, data)
    manifest = pd.read_csv(data / "manifest.csv")
    dm = FaceDataModule(prepared_dir=str(data), image_size=32, batch_size=8)
    dm.setup("fit")
    groups = dm.prepared.groups
    women = {i for i in groups.identity_to_group if groups.group_of(i) % 2 == 0}  # even groups: women
    manifest["gender"] = ["female" if str(i) in women else "male" for i in manifest["identity"]]
    manifest.to_csv(data / "manifest.csv", index=False)
    dm = FaceDataModule(prepared_dir=str(data), image_size=32, batch_size=8)
    dm.setup("fit")
    codes = group_kind_codes(dm, "gender")
    assert codes.tolist() == [g % 2 for g in range(groups.num_groups)]  # female < male, sorted

    with pytest.raises(ValueError, match="surrogate_match"):
        tiny_model(dm, generator_input="surrogate", surrogate_mix="kind")
    model = tiny_model(
        dm, n_critic=1, generator_input="surrogate", surrogate_mix="kind", surrogate_match="gender", g_residual=True
    )
    quiet_trainer(tmp_path / "fit", max_steps=2, limit_val_batches=0).fit(model, dm)
    assert torch.equal(model.group_kind, codes)  # read from the data at fit start
    labels = dm.splits["train"].labels
    group = field_index(labels, model.spec, "group")
    kind_value, any_value = model.mix_value(labels), tiny_model(dm, generator_input="surrogate").mix_value(labels)
    same_kind = (group % 2).view(-1, 1) == (group % 2).view(1, -1)
    assert not ((kind_value.view(-1, 1) == kind_value.view(1, -1)) & ~same_kind).any()
    assert ((any_value.view(-1, 1) == any_value.view(1, -1)) & ~same_kind).any()  # what kind mixing removes
    images = (group % 2).float().view(-1, 1, 1, 1).expand(-1, 3, 4, 4).clone()  # 0: a woman's, 1: a man's
    assert set(batch_k_means(images, kind_value, k=3).unique().tolist()) == {0.0, 1.0}  # never a blend
