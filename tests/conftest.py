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
