"""``g_ema``: release uses an exponential moving average of G's weights (StyleGAN's G_ema)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import quiet_trainer, tiny_model

from kssgan.data.datamodule import FaceDataModule
from kssgan.system import load_kssgan


def trained(demo_dir: Path, tmp: Path, **overrides):
    import lightning as L

    L.seed_everything(0, verbose=False)
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=8)
    model = tiny_model(dm, n_critic=1, generator_input="surrogate", g_residual=True, **overrides)
    trainer = quiet_trainer(tmp, max_steps=6, limit_val_batches=0)
    trainer.fit(model, dm)
    return model.eval(), trainer


def test_release_uses_the_average_updated_once_per_generator_step(demo_dir: Path, tmp_path: Path) -> None:
    model, trainer = trained(demo_dir, tmp_path, g_ema=0.5)
    ema = model.generator_ema
    assert int(ema.n_averaged) == int(model.generator_steps) == 3
    release = model.release_generator()
    assert release.generator is ema.module  # the average, not G
    g, a = dict(model.generator.named_parameters()), dict(ema.module.named_parameters())
    assert any(not torch.equal(g[n], a[n]) for n in g)  # G moved on after the average's last blend
    x = torch.zeros(2, 3, 32, 32)
    label = torch.zeros(2, model.spec.dim)
    label[:, 0] = 1
    with torch.no_grad():
        out = model.translate(x, label)
        by_ema = release(x, label)
    assert torch.equal(out, by_ema.to(out.dtype))
    # the average travels in the checkpoint
    path = tmp_path / "ema.ckpt"
    trainer.save_checkpoint(path, weights_only=False)
    again = load_kssgan(str(path))
    for n, p in again.generator_ema.module.named_parameters():
        assert torch.equal(p, a[n])


def test_without_g_ema_release_uses_g_itself_and_bad_decays_fail(demo_dir: Path, tmp_path: Path) -> None:
    model, _ = trained(demo_dir, tmp_path)
    assert model.generator_ema is None
    assert model.release_generator().generator is model.generator
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=8)
    for bad in (1.0, -0.5):
        with pytest.raises(ValueError, match="g_ema is a decay"):
            tiny_model(dm, g_ema=bad)
