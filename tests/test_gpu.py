"""GPU / AMP tier: skipped without CUDA (CI has none); run them on a GPU box with `make test`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from kssgan.cli import resolve_precision
from kssgan.data.datamodule import FaceDataModule
from kssgan.losses import gradient_penalty
from tests.conftest import quiet_trainer, tiny_model

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_16_mixed_becomes_bf16_on_a_cpu() -> None:
    assert resolve_precision("16-mixed", "cpu") == "bf16-mixed"
    assert resolve_precision("32-true", "cpu") == "32-true"
    assert resolve_precision("bf16-mixed", "auto") == "bf16-mixed"


@pytest.mark.gpu
@cuda
def test_gradient_penalty_exact_under_fp16_autocast() -> None:
    w = torch.randn(1, 3, 16, 16, device="cuda") * 0.37
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(4, 3, 16, 16, device="cuda"), torch.randn(4, 3, 16, 16, device="cuda")
    with torch.autocast("cuda", dtype=torch.float16):
        gp = gradient_penalty(critic, real.half(), fake.half())
    assert gp.item() == pytest.approx((w.norm().item() - 1) ** 2, rel=1e-4)


@pytest.mark.gpu
@cuda
def test_16_mixed_training_on_gpu(demo_dir: Path, tmp_path: Path) -> None:
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=4)
    model = tiny_model(dm, n_critic=1)
    trainer = quiet_trainer(
        tmp_path, accelerator="cuda", devices=1, precision="16-mixed", max_epochs=1, limit_train_batches=3
    )
    trainer.fit(model, dm)
    assert int(model.generator_steps) == 3
    assert torch.isfinite(trainer.callback_metrics["train/g_loss"])


@pytest.mark.gpu
@cuda
def test_gpu_recipe_trains_at_128px_with_the_papers_widths(shared_datasets: Path, tmp_path: Path) -> None:
    """experiments/gpu.yaml (16-mixed, 128 px, 64-channel G and D) through the real CLI, a few steps."""
    import subprocess
    import sys

    from kssgan.data.prepare import prepare_dataset
    from tests.conftest import REPO

    prepared = tmp_path / "prepared"
    prepare_dataset(
        shared_datasets / "london",
        prepared,
        labels={"onehot": ["expression"]},
        image_size=128,
        k=3,
        reader_options={"labels_csv": "labels.csv"},
        progress=False,
        quiet=True,
    )
    args = [
        sys.executable,
        "-m",
        "kssgan.cli",
        "fit",
        "--config",
        str(REPO / "experiments/gpu.yaml"),
        f"--data.init_args.prepared_dir={prepared}",
        "--trainer.max_steps=24",
        "--trainer.val_check_interval=12",
        f"--trainer.default_root_dir={tmp_path}",
        "--trainer.logger=false",
    ]
    out = subprocess.run(args, cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["k"] == 3 and 0.0 <= summary["parrot_rank1_sface"] <= 1.0
