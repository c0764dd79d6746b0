"""Shared fixtures.

Real-face data (../shared/datasets, or $KSSGAN_SHARED_DATA) is used where present; tests that need it
skip without it, except under KSSGAN_REQUIRE_SHARED=1 (CI), where its absence is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
torch.set_num_threads(min(2, torch.get_num_threads()))


def shared_data_root() -> Path:
    return Path(os.environ.get("KSSGAN_SHARED_DATA", REPO.parent / "shared" / "datasets"))


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    """Root of the shared real-face datasets (orl/, yale/)."""
    root = shared_data_root()
    if not (root / "orl").is_dir() or not (root / "yale").is_dir():
        msg = f"shared datasets not found at {root} (set KSSGAN_SHARED_DATA)"
        if os.environ.get("KSSGAN_REQUIRE_SHARED") == "1":
            pytest.fail(msg + "; they are required here (KSSGAN_REQUIRE_SHARED=1)")
        pytest.skip(msg)
    return root


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic demo dataset (12 identities × 5 images, k=3, 32 px)."""
    from kssgan.data.demo import generate_demo

    out = tmp_path_factory.mktemp("demo")
    return generate_demo(out, num_identities=12, images_per_identity=5, k=3, image_size=32)


TINY_MODEL = dict(
    image_size=32,
    g_conv_dim=8,
    g_repeat_num=1,
    d_conv_dim=8,
    siamese_conv_dim=8,
    siamese_embed_dim=16,
    siamese_depth=3,
    siamese_pretrain_steps=2,
)


def quiet_trainer(root: Path, **kw):
    """A CPU Trainer without loggers, checkpoints or bars (tests read the module's state instead)."""
    import lightning as L

    settings = dict(
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        default_root_dir=root,
    )
    return L.Trainer(**{**settings, **kw})


def tiny_model(dm, **overrides):
    """A TINY_MODEL KSSGAN wired to ``dm``'s labels and groups."""
    from kssgan.system import KSSGAN

    return KSSGAN(label_spec=dm.label_spec_dict, groups=dm.groups_dict, **{**TINY_MODEL, **overrides})


# -- kssgan sweep: one local Ray per test module (start-up is slow on 2 cores) ---------------------
@pytest.fixture(scope="module")
def ray_local(tmp_path_factory: pytest.TempPathFactory):
    """A private 2-CPU local Ray (no W&B key, OMP_NUM_THREADS=1), shut down after the module."""
    import ray

    from kssgan.tune.cluster import init_ray

    if ray.is_initialized():
        ray.shutdown()
    os.environ.pop("WANDB_API_KEY", None)
    os.environ["OMP_NUM_THREADS"] = "1"
    resources = init_ray(output_root=tmp_path_factory.mktemp("ray_out"), num_cpus=2)
    yield resources
    ray.shutdown()


# -- kssgan deidentify / export: a briefly trained model on real Yale crops --------------------------
DEID_SUBJECTS = 6  # Yale subjects used for the deidentify tests' model (k=2 → 3 groups)


@pytest.fixture(scope="session")
def yale_prepared(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The first Yale subjects prepared by `kssgan prepare` (32 px crops, SFace groups, k=2, the recipe's labels)."""
    from kssgan.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("yale_prepared")
    prepare_dataset(
        shared_datasets / "yale",
        out,
        reader="folder",
        image_size=32,
        k=2,
        limit=DEID_SUBJECTS * 11,
        progress=False,
        quiet=True,
        labels={"onehot": ["expression"], "binary": []},  # as data_modules/yale.yaml gives `make prepare`
    )
    return out


def _tiny_yale_checkpoint(yale_prepared: Path, tmp_path_factory: pytest.TempPathFactory, name: str, **model) -> Path:
    """A TINY model trained 12 steps on the Yale crops (label: group ⊕ expression), saved as a .ckpt."""
    import lightning as L

    from kssgan.data.datamodule import FaceDataModule

    L.seed_everything(0, verbose=False)
    dm = FaceDataModule(prepared_dir=str(yale_prepared), onehot_attributes=["expression"], image_size=32, batch_size=8)
    trainer = quiet_trainer(tmp_path_factory.mktemp(f"{name}_train"), max_steps=12, limit_val_batches=0)
    trainer.fit(tiny_model(dm, n_critic=1, **model), dm)
    path = tmp_path_factory.mktemp(f"{name}_ckpt") / f"{name}.ckpt"
    trainer.save_checkpoint(path)
    return path


@pytest.fixture(scope="session")
def deid_ckpt(yale_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TINY kSS-GAN (the paper's image mode) trained for a few steps on those crops."""
    return _tiny_yale_checkpoint(yale_prepared, tmp_path_factory, "yale_tiny")


def _base_recipe() -> dict:
    """The model block of experiments/base.yaml (the release recipe), read from the file itself."""
    import yaml

    return yaml.safe_load((REPO / "experiments" / "base.yaml").read_text())["model"]


# the release recipe of experiments/base.yaml at TINY widths (one source of truth: the file); the
# fixture trains it with n_critic 1
SURROGATE_RECIPE = {k: v for k, v in _base_recipe().items() if k not in TINY_MODEL and k != "n_critic"}


@pytest.fixture(scope="session")
def surrogate_ckpt(yale_prepared: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default recipe (surrogate mode), TINY, trained a few steps on the same Yale crops."""
    return _tiny_yale_checkpoint(yale_prepared, tmp_path_factory, "yale_tiny_surrogate", **SURROGATE_RECIPE)


# -- CI: a skipped test is a failure, except the GPU tier ------------------------------------------
_unexpected_skips: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if os.environ.get("KSSGAN_REQUIRE_SHARED") == "1" and report.skipped and "gpu" not in report.keywords:
        _unexpected_skips.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _unexpected_skips:
        print("\nRequired tests were skipped (KSSGAN_REQUIRE_SHARED=1): " + ", ".join(_unexpected_skips))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
