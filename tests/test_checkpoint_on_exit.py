"""Training ends with a checkpoint: stopped by max_time, SIGTERM or Ctrl-C, last.ckpt holds the last step."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from kssgan.callbacks import CheckpointOnExit
from kssgan.data.datamodule import FaceDataModule
from tests.conftest import REPO, quiet_trainer, tiny_model
from tests.test_cli import TINY, env, kssgan, run


def test_max_time_stop_saves_the_last_step(demo_dir: Path, tmp_path: Path) -> None:
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=4)
    model = tiny_model(dm, n_critic=2)
    periodic = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True, every_n_train_steps=100000)
    on_exit = CheckpointOnExit()
    trainer = quiet_trainer(
        tmp_path, max_time={"seconds": 6}, limit_val_batches=0, enable_checkpointing=True, callbacks=[periodic, on_exit]
    )
    trainer.fit(model, dm)
    assert trainer.global_step >= 1  # stopped by the clock; the periodic save never fired
    saved = torch.load(tmp_path / "ckpt" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == trainer.global_step
    assert int(saved["state_dict"]["critic_steps"]) == int(model.critic_steps)
    assert on_exit.saved == [tmp_path / "ckpt" / "last.ckpt"]


def test_ctrl_c_saves_the_last_step(demo_dir: Path, tmp_path: Path) -> None:
    import lightning as L

    class Interrupt(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if trainer.global_step >= 5:
                raise KeyboardInterrupt

    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=4)
    model = tiny_model(dm, n_critic=2)
    trainer = quiet_trainer(tmp_path, max_steps=1000, limit_val_batches=0, callbacks=[CheckpointOnExit(), Interrupt()])
    with pytest.raises(SystemExit):  # Lightning's graceful Ctrl-C shutdown exits 1
        trainer.fit(model, dm)
    saved = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    assert saved["global_step"] == trainer.global_step >= 5


@pytest.mark.slow
def test_sigterm_mid_run_saves_last_ckpt_and_resume_continues(tmp_path: Path) -> None:
    cfg = REPO / "experiments" / "demo.yaml"
    ckpt = tmp_path / "outputs/demo/checkpoints/last.ckpt"
    samples = tmp_path / "outputs/demo/samples"
    common = [*TINY, "--trainer.logger=false", "--model.n_critic=2"]
    callbacks = ["--config", str(REPO / "tests/data/sigterm_callbacks.yaml")]
    proc = subprocess.Popen(
        kssgan("fit", "--config", str(cfg), *common, "--trainer.max_steps=100000", *callbacks),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None and len(list(samples.glob("step_*.png"))) < 3:
            time.sleep(0.2)
        assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
        seen = max(int(p.stem.split("_")[1]) for p in samples.glob("step_*.png"))  # generator steps done
        assert not ckpt.exists()  # no periodic save: whatever is saved comes from the SIGTERM
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, proc.stderr.read().decode()[-3000:]  # Lightning's SIGTERMException: a clean exit
    saved = torch.load(ckpt, weights_only=True)
    g = int(saved["state_dict"]["generator_steps"])
    assert g >= seen >= 3 and saved["global_step"] == g + int(saved["state_dict"]["critic_steps"])
    target = saved["global_step"] + 4
    out = run(tmp_path, "fit", "--config", str(cfg), *common, f"--trainer.max_steps={target}", *callbacks,
              "--ckpt_path=last")  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    after = torch.load(ckpt, weights_only=True)
    # one batch is one critic step plus, every n_critic batches, a generator step: the run may end one
    # optimizer step past max_steps when the last batch carried both
    assert target <= after["global_step"] <= target + 1 and int(after["state_dict"]["generator_steps"]) > g
