"""CPU smoke runs of the real entry point (`kssgan fit --config experiments/demo.yaml`), including
resume after the process is killed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from kssgan.system import load_kssgan
from tests.conftest import REPO

pytestmark = pytest.mark.slow

TINY = [
    "--data.init_args.num_identities=9",
    "--data.init_args.images_per_identity=4",
    "--data.init_args.image_size=32",
    "--data.init_args.batch_size=4",
    "--model.g_conv_dim=8",
    "--model.g_repeat_num=1",
    "--model.d_conv_dim=8",
    "--model.siamese_conv_dim=8",
    "--model.siamese_embed_dim=16",
    "--model.siamese_pretrain_steps=2",
    "--trainer.val_check_interval=4",
    "--trainer.log_every_n_steps=1",
]


def kssgan(*args: str) -> list[str]:
    return [sys.executable, "-m", "kssgan.cli", *args]


def run(tmp_path: Path, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    """`kssgan ARGS` in ``tmp_path`` (outputs land there), without W&B credentials."""
    return subprocess.run(
        kssgan(*args), cwd=tmp_path, env=env(tmp_path), capture_output=True, text=True, timeout=timeout
    )


def env(tmp_path: Path) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("WANDB_")}
    e.update(HOME=str(tmp_path), PYTHONPATH=str(REPO / "src"), OMP_NUM_THREADS="1")
    return e


def test_fit_demo_through_the_cli(tmp_path: Path) -> None:
    cfg = REPO / "experiments" / "demo.yaml"
    out = run(tmp_path, "fit", "--config", str(cfg), *TINY, "--trainer.max_steps=12")
    assert out.returncode == 0, out.stderr[-3000:]
    assert (tmp_path / "outputs/demo/checkpoints/last.ckpt").is_file()
    samples = sorted((tmp_path / "outputs/demo/samples").glob("step_*.png"))
    assert samples, "no sample grid written"
    metrics = pd.read_csv(next((tmp_path / "outputs/demo/logs").rglob("metrics.csv")))
    assert {"val/domain_acc", "val/siamese_sim", "train/d_loss"} <= set(metrics.columns)
    assert list((tmp_path / "outputs/demo/wandb").glob("offline-run-*")), "W&B did not run offline"
    ckpt = torch.load(tmp_path / "outputs/demo/checkpoints/last.ckpt", weights_only=True)
    assert int(ckpt["state_dict"]["critic_steps"]) == 10 and int(ckpt["state_dict"]["generator_steps"]) == 2
    model = load_kssgan(str(tmp_path / "outputs/demo/checkpoints/last.ckpt"))  # CLI checkpoints load for inference
    assert model.groups["k"] == 3 and model.spec.num_groups == 3


def test_resume_after_kill_continues_counters_and_optimizers(tmp_path: Path) -> None:
    cfg = REPO / "experiments" / "demo.yaml"
    ckpt_dir = tmp_path / "outputs/demo/checkpoints"
    # lambda_rec > 0: the Siamese net is pre-trained (the release recipe skips it otherwise); resuming must not redo it
    common = [*TINY, "--trainer.logger=false", "--model.n_critic=2", "--model.lambda_rec=1.0"]
    ckpt_every = ["--config", str(REPO / "tests/data/resume_callbacks.yaml")]
    proc = subprocess.Popen(
        kssgan("fit", "--config", str(cfg), *common, "--trainer.max_steps=100000", *ckpt_every),
        cwd=tmp_path,
        env=env(tmp_path),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 240
    try:
        while time.time() < deadline:
            if len(list(ckpt_dir.glob("*step=*.ckpt"))) >= 2 or proc.poll() is not None:
                break
            time.sleep(0.5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    before = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    c0 = int(before["state_dict"]["critic_steps"])
    g0 = int(before["state_dict"]["generator_steps"])
    assert c0 > 0 and g0 == c0 // 2
    target = before["global_step"] + 6
    out = run(
        tmp_path, "fit", "--config", str(cfg), *common, f"--trainer.max_steps={target}", *ckpt_every, "--ckpt_path=last"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    after = torch.load(ckpt_dir / "last.ckpt", weights_only=True)
    c1, g1 = int(after["state_dict"]["critic_steps"]), int(after["state_dict"]["generator_steps"])
    assert after["global_step"] == target
    assert c1 + g1 == target  # both counters continued from the checkpoint, not from zero
    assert c1 > c0 and g1 == c1 // 2
    # The critic's Adam state continued too: its step count equals the critic iterations.
    d_state = after["optimizer_states"][1]["state"]
    assert int(next(iter(d_state.values()))["step"]) == c1
    # ... and so did both learning-rate schedules (stepped once per critic iteration).
    assert [s["last_epoch"] for s in after["lr_schedulers"]] == [c1, c1]
    assert bool(after["state_dict"]["siamese_ready"])


def test_bad_configs_fail_with_a_clear_message(tmp_path: Path) -> None:
    demo = str(REPO / "experiments" / "demo.yaml")
    cases = [  # (config, extra args, message, is the mistake reported in one line, without a traceback?)
        (demo, ["--trainer.precision=17-weird"], "precision", False),
        (demo, ["--data.init_args.k=50"], "larger than the number of demo identities", True),
        (demo, ["--data.init_args.image_size=48"], "power of two", True),
        (str(REPO / "experiments" / "rafd.yaml"), [], "make prepare DATASET=rafd", True),
    ]
    for cfg, extra, message, clean in cases:
        args = [*TINY, *extra] if cfg == demo else []
        out = run(tmp_path, "fit", "--config", cfg, *args, "--trainer.logger=false", timeout=120)
        assert out.returncode != 0
        assert message in out.stderr, out.stderr[-2000:]
        if clean:
            assert "Traceback" not in out.stderr, out.stderr[-2000:]


def test_unprepared_dataset_says_how_to_prepare(tmp_path: Path) -> None:
    from kssgan.data.datamodule import FaceDataModule
    from kssgan.data.prepared import DatasetNotPreparedError

    with pytest.raises(DatasetNotPreparedError, match="kssgan prepare"):
        _ = FaceDataModule(prepared_dir=str(tmp_path / "nothing")).label_spec


@pytest.mark.shared_data
def test_fit_real_yale_crops_with_the_yale_experiment(yale_prepared: Path, tmp_path: Path) -> None:
    """`make train DATASET=yale` = `kssgan fit --config experiments/yale.yaml` on prepared real crops."""
    out = run(
        tmp_path,
        "fit",
        "--config",
        str(REPO / "experiments" / "yale.yaml"),
        *[a for a in TINY if not a.startswith("--data.")],
        f"--data.init_args.prepared_dir={yale_prepared}",
        "--data.init_args.image_size=32",
        "--data.init_args.batch_size=4",
        "--data.init_args.num_workers=0",
        "--trainer.logger=false",
        "--trainer.max_steps=12",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    ckpt = torch.load(tmp_path / "outputs/yale/checkpoints/last.ckpt", weights_only=True)
    spec = ckpt["kssgan"]["label_spec"]
    assert [f["name"] for f in spec["fields"]] == ["group", "expression"]
    assert "happy" in spec["fields"][1]["values"]
    assert int(ckpt["state_dict"]["critic_steps"]) == 10


def test_validate_and_predict_from_a_checkpoint(tmp_path: Path) -> None:
    cfg = str(REPO / "experiments" / "demo.yaml")
    base = [*TINY, "--trainer.logger=false"]
    fit = run(tmp_path, "fit", "--config", cfg, *base, "--trainer.max_steps=6")
    assert fit.returncode == 0, fit.stderr[-2000:]
    ckpt = "outputs/demo/checkpoints/last.ckpt"
    val = run(tmp_path, "validate", "--config", cfg, *base, f"--ckpt_path={ckpt}")
    assert val.returncode == 0, val.stderr[-2000:]
    assert "val/domain_acc" in val.stdout
    writer = "[{class_path: kssgan.callbacks.SaveDeidentifiedCrops, init_args: {output_dir: released}}]"
    pred = run(tmp_path, "predict", "--config", cfg, *base, f"--ckpt_path={ckpt}", f"--trainer.callbacks={writer}")
    assert pred.returncode == 0, pred.stderr[-2000:]
    written = sorted((tmp_path / "released").glob("*.png"))
    assert len(written) == 9  # 9 identities x 1 test image each


@pytest.mark.parametrize("recipe", sorted(p.name for p in (REPO / "experiments" / "recipes").glob("*.yaml")))
def test_every_shipped_recipe_sets_real_model_options_to_allowed_values(recipe: str) -> None:
    """A recipe is a `--config` delta on an experiment: each of its model keys must be a KSSGAN
    argument, with a value its annotation allows (so a typo is not silently a no-op in a sweep's YAML)."""
    import typing

    import yaml

    from kssgan.system import KSSGAN

    hints = typing.get_type_hints(KSSGAN.__init__)
    model = yaml.safe_load((REPO / "experiments" / "recipes" / recipe).read_text())["model"]
    assert model, recipe
    for key, value in model.items():
        assert key in hints, f"{recipe}: model.{key} is not a KSSGAN argument"
        if typing.get_origin(hints[key]) is typing.Literal:
            assert value in typing.get_args(hints[key]), f"{recipe}: model.{key}={value!r}"
        elif hints[key] in (int, float, bool):
            assert isinstance(value, hints[key] if hints[key] is not float else (int, float)), f"{recipe}: {key}"
