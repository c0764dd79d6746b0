"""`kssgan sweep` with `resources.workers: 2`: a trial trained data-parallel (Ray Train TorchTrainer,
RayDDPStrategy over gloo) inside the function trainable, on CPU."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import torch

from tests.test_sweep import run_sweep, tiny_experiment, tiny_sweep

pytestmark = pytest.mark.slow

N_CRITIC = 2


def test_a_two_worker_trial_trains_data_parallel_to_the_end(
    ray_local: dict, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    space = {
        "model.g_lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3},
        "model.n_critic": {"type": "choice", "values": [N_CRITIC]},
    }
    # 2 workers × 0.9 CPU + the trial's own idle process (0.01 CPU) fit the 2-CPU local Ray.
    sweep = tiny_sweep(
        tmp_path,
        "random",
        trials=1,
        space=space,
        scheduler={"kind": "fifo"},
        resources={"workers": 2, "cpu": 0.9, "gpu": 0},
    )
    rc, table = run_sweep(tmp_path, sweep, tiny_experiment(tmp_path, demo_dir))
    assert rc == 0, table.to_string()
    assert len(table) == 1 and table["status"].iloc[0] == "ok", table.to_string()
    row = table.iloc[0]
    assert math.isfinite(row["val/release_score"]) and 0.0 <= row["val/release_score"] <= 1.0
    assert row["world_size"] == 2  # trainer.world_size as reported by rank 0 after each validation
    assert row["reports"] >= 2 and row["global_step"] > 0  # 14 steps, 1.5 per batch, validation every 4

    trial = Path(row["path"])
    history = pd.read_json(trial / "result.json", lines=True)
    assert (history["world_size"] == 2).all()
    assert history["global_step"].is_monotonic_increasing
    # Ray Train keeps rank 0's checkpoints in the trial's storage folder (not Ray's node-local staging).
    ckpt_dir = Path(row["checkpoint"])
    assert ckpt_dir == Path(history["checkpoint_path"].iloc[-1])
    assert ckpt_dir.parent == trial / "ray_train" / trial.name
    kept = [p for p in ckpt_dir.parent.glob("checkpoint_*") if p.is_dir()]
    assert ckpt_dir in kept and len(kept) <= 3  # num_to_keep: 2 (the best by release score) + the latest
    ckpt = torch.load(ckpt_dir / "checkpoint.ckpt", map_location="cpu", weights_only=True)
    critic, generator = int(ckpt["state_dict"]["critic_steps"]), int(ckpt["state_dict"]["generator_steps"])
    assert critic > 0 and generator == critic // N_CRITIC
    # Lightning's global step counts every optimizer step, critic and generator (the Siamese is frozen).
    assert ckpt["global_step"] == critic + generator == row["global_step"]
