"""The LightningModule: n_critic schedule, counters, precision, checkpoint contents, config errors."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import pytest
import torch

from kssgan.data.datamodule import FaceDataModule
from kssgan.system import CHECKPOINT_KEY, KSSGAN, load_kssgan
from tests.conftest import quiet_trainer, tiny_model


def make(demo_dir: Path, **overrides) -> tuple[KSSGAN, FaceDataModule]:
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=4)
    return tiny_model(dm, **overrides), dm


def trainer(tmp_path: Path, batches: int, **kw) -> L.Trainer:
    return quiet_trainer(tmp_path, max_epochs=1, limit_train_batches=batches, limit_val_batches=1, **kw)


def test_one_generator_step_every_n_critic_steps(demo_dir: Path, tmp_path: Path) -> None:
    model, dm = make(demo_dir, n_critic=3)
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    t = trainer(tmp_path, batches=7)
    t.fit(model, dm)
    assert int(model.critic_steps) == 7
    assert int(model.generator_steps) == 2  # after critic steps 3 and 6
    # Lightning's global_step counts every optimizer step: critic + generator.
    assert t.global_step == 7 + 2
    changed = any(not torch.equal(a, b) for a, b in zip(g0, model.generator.parameters(), strict=True))
    assert changed


def test_generator_is_untouched_before_the_first_generator_step(demo_dir: Path, tmp_path: Path) -> None:
    model, dm = make(demo_dir, n_critic=5)
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    d0 = [p.detach().clone() for p in model.critic.parameters()]
    trainer(tmp_path, batches=4).fit(model, dm)
    assert int(model.generator_steps) == 0
    assert all(torch.equal(a, b) for a, b in zip(g0, model.generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d0, model.critic.parameters(), strict=True))


def test_siamese_is_pretrained_once_then_frozen(demo_dir: Path, tmp_path: Path) -> None:
    model, dm = make(demo_dir, n_critic=1, siamese_pretrain_steps=3)
    s0 = [p.detach().clone() for p in model.siamese.parameters()]
    trainer(tmp_path, batches=2).fit(model, dm)
    assert bool(model.siamese_ready)
    assert not any(p.requires_grad for p in model.siamese.parameters())
    s1 = [p.detach().clone() for p in model.siamese.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(s0, s1, strict=True))
    trainer(tmp_path, batches=2).fit(model, dm)  # a second fit must not pre-train again
    assert all(torch.equal(a, b) for a, b in zip(s1, model.siamese.parameters(), strict=True))


@pytest.mark.parametrize(
    "option",
    [{"rec_target": "translation"}, {"rec_loss": "l1"}, {"siamese_mode": "cotrain"}, {"group_conditioning": "onehot"}],
)
def test_loss_options_train(demo_dir: Path, tmp_path: Path, option: dict) -> None:
    model, dm = make(demo_dir, n_critic=1, **option)
    trainer(tmp_path, batches=2).fit(model, dm)
    assert int(model.generator_steps) == 2


def test_bf16_mixed_precision_on_cpu_gives_finite_losses(demo_dir: Path, tmp_path: Path) -> None:
    model, dm = make(demo_dir, n_critic=1)
    t = trainer(tmp_path, batches=3, precision="bf16-mixed")
    t.fit(model, dm)
    metrics = t.callback_metrics
    assert torch.isfinite(metrics["train/d_loss"]) and torch.isfinite(metrics["train/g_loss"])
    assert torch.isfinite(metrics["train/gp"])
    assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights


def test_validation_metrics_for_model_selection(demo_dir: Path, tmp_path: Path) -> None:
    model, dm = make(demo_dir)
    t = trainer(tmp_path, batches=1)
    t.validate(model, dm, verbose=False)
    m = t.callback_metrics
    for key in ("val/g_loss", "val/wasserstein", "val/domain_acc", "val/siamese_sim", "val/siamese_sim_own"):
        assert key in m and torch.isfinite(m[key])
    assert 0.0 <= float(m["val/domain_acc"]) <= 1.0
    assert 0.0 <= float(m["val/siamese_sim"]) <= 1.0


def test_checkpoint_carries_labels_and_groups_and_loads_safely(demo_dir: Path, tmp_path: Path) -> None:
    model, dm = make(demo_dir, n_critic=1)
    t = trainer(tmp_path, batches=1)
    t.fit(model, dm)
    path = tmp_path / "m.ckpt"
    t.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)  # nothing but tensors and plain containers
    assert raw[CHECKPOINT_KEY]["label_spec"] == dm.label_spec_dict
    assert raw[CHECKPOINT_KEY]["groups"]["k"] == 3
    assert raw[CHECKPOINT_KEY]["groups"]["recogniser"] == "sface"  # the demo goes through `kssgan prepare`
    # identity names never reach the hyper-parameters that loggers publish
    assert "groups" not in raw["hyper_parameters"]
    assert not any("id0" in str(v) for v in raw["hyper_parameters"].values())
    loaded = load_kssgan(str(path))
    assert loaded.groups == dm.groups_dict
    x, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.eye(dm.label_spec.dim)[:2]
    assert torch.allclose(loaded.translate(x, c), model.eval().translate(x, c), atol=1e-6)


def test_group_conditioning_is_embedding_by_default_and_old_checkpoints_load_as_onehot(
    demo_dir: Path, tmp_path: Path
) -> None:
    model, dm = make(demo_dir)
    assert model.generator.group_embedding is not None and model.critic.group_classifier is not None
    onehot, _ = make(demo_dir, group_conditioning="onehot")
    assert onehot.generator.group_embedding is None
    assert onehot.generator.main[0].in_channels == 3 + dm.label_spec.dim  # the paper's tiled one-hot
    t = trainer(tmp_path, batches=1, max_steps=1)
    t.fit(onehot, dm)
    path = tmp_path / "old.ckpt"
    t.save_checkpoint(path)
    raw = torch.load(path, weights_only=True)
    for key in ("group_conditioning", "group_embed_dim"):  # what a checkpoint from before the option holds
        raw["hyper_parameters"].pop(key)
    torch.save(raw, path)
    loaded = load_kssgan(str(path))
    assert loaded.hparams.group_conditioning == "onehot"
    x, c = torch.rand(2, 3, 32, 32) * 2 - 1, torch.eye(dm.label_spec.dim)[:2]
    assert torch.allclose(loaded.translate(x, c), onehot.eval().translate(x, c), atol=1e-6)


def test_bad_model_settings_fail_clearly(demo_dir: Path) -> None:
    with pytest.raises(ValueError, match="n_critic"):
        make(demo_dir, n_critic=0)
    with pytest.raises(ValueError, match="rec_loss"):
        make(demo_dir, rec_loss="l2")
    with pytest.raises(ValueError, match="power of two"):
        make(demo_dir, image_size=48)
    with pytest.raises(ValueError, match="group_conditioning"):
        make(demo_dir, group_conditioning="film")
    with pytest.raises(ValueError, match="label_spec"):
        KSSGAN()
