"""`kssgan sweep`: search spaces, trial configs, and tiny real sweeps with each searcher on one shared
local Ray (start-up is slow on 2 cores), a failing (NaN) trial, W&B offline runs, and resume after kill."""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
import torch
import yaml

from kssgan.experiment_config import load_experiment
from tests.conftest import REPO, TINY_MODEL

METRIC = "val/release_score"
TINY_BUDGET = {"max_steps": 14, "val_check_interval": 4, "log_every_n_steps": 1}


def tiny_experiment(tmp_path: Path, demo_dir: Path) -> Path:
    """experiments/demo.yaml with the TINY model on the shared 32 px demo dataset."""
    exp = load_experiment(REPO / "experiments" / "demo.yaml")  # base.yaml + the demo delta
    exp["model"].update({k: v for k, v in TINY_MODEL.items() if k != "image_size"})
    exp["data"]["init_args"].update(
        prepared_dir=str(demo_dir), num_identities=12, images_per_identity=5, k=3, image_size=32, batch_size=4
    )
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(exp, sort_keys=False))
    return path


def tiny_sweep(tmp_path: Path, kind: str, trials: int, **changes: object) -> Path:
    """sweeps/<kind>.yaml with a few-step budget and no W&B (unless asked)."""
    sweep = yaml.safe_load((REPO / "sweeps" / f"{kind}.yaml").read_text())
    sweep.update(trials=trials, budget=dict(TINY_BUDGET), wandb={"enabled": False})
    sweep["scheduler"]["grace_period"] = 1
    sweep.update(changes)
    path = tmp_path / f"{kind}.yaml"
    path.write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


# -- no Ray needed -----------------------------------------------------------------------------
def test_space_yaml_becomes_ray_distributions() -> None:
    from ray.tune.search.sample import Categorical, Float, Integer

    from kssgan.tune.space import SearchSpaceError, build_search_space

    space = build_search_space(
        {
            "model.g_lr": {"type": "loguniform", "low": "1e-5", "high": 1e-3},
            "model": {"n_critic": {"type": "randint", "low": 1, "high": 3}},
            "data.init_args.batch_size": {"type": "choice", "values": [4, 8]},
        }
    )
    lr, n_critic = space["model"]["g_lr"], space["model"]["n_critic"]
    assert isinstance(lr, Float) and (lr.lower, lr.upper) == (1e-5, 1e-3)
    assert isinstance(n_critic, Integer) and (n_critic.lower, n_critic.upper) == (1, 4)  # high is inclusive
    draws = {n_critic.sample() for _ in range(200)}
    assert draws == {1, 2, 3}
    assert isinstance(space["data"]["init_args"]["batch_size"], Categorical)
    with pytest.raises(SearchSpaceError, match="type must be one of"):
        build_search_space({"model.g_lr": {"type": "gaussian", "low": 0, "high": 1}})
    with pytest.raises(SearchSpaceError, match="low > 0"):
        build_search_space({"model.g_lr": {"type": "loguniform", "low": 0, "high": 1}})
    with pytest.raises(SearchSpaceError, match="must be below"):
        build_search_space({"model.beta1": {"type": "uniform", "low": 0.9, "high": 0.1}})


def test_shipped_sweeps_load_and_build() -> None:
    from kssgan.tune.searchers import build_scheduler, build_searcher
    from kssgan.tune.space import build_search_space
    from kssgan.tune.sweep import load_sweep

    for kind in ("pso", "hyperopt", "random"):
        sweep = load_sweep(REPO / "sweeps" / f"{kind}.yaml")
        assert sweep["searcher"]["kind"] == kind
        assert sweep["metric"] == {"name": "val/release_score", "mode": "max"}  # measured, not self-judged
        space = build_search_space(sweep["space"])
        assert {"g_lr", "d_lr", "lambda_fid", "lambda_detail", "lambda_cls", "lambda_gp", "n_critic", "beta1"} <= set(
            space["model"]
        )
        searcher = build_searcher(sweep["searcher"], 4, 2)
        assert type(searcher).__name__ == ("BasicVariantGenerator" if kind == "random" else "ConcurrencyLimiter")
        assert type(build_scheduler(sweep["scheduler"], 6)).__name__ == "AsyncHyperBandScheduler"


def test_trial_config_redirects_outputs_and_reports_to_tune(tmp_path: Path) -> None:
    from kssgan.tune.trainable import trial_experiment

    exp = load_experiment(REPO / "experiments" / "demo.yaml")  # base.yaml + the demo delta
    original_budget = exp["trainer"]["max_steps"]
    settings = {
        "budget": {"max_steps": 40, "val_check_interval": 5},
        "metric": {"name": "score", "mode": "max", "weights": {"val/domain_acc": 1.0}},
        "wandb": {"enabled": True},
        "resources": {"workers": 1},
        "group": "pso-demo",
    }
    cfg = trial_experiment(exp, {"model": {"g_lr": 3e-4}}, tmp_path / "t0", settings, "trial_a")
    out = str((tmp_path / "t0").resolve())
    assert cfg["model"]["g_lr"] == 3e-4 and cfg["model"]["d_lr"] == exp["model"]["d_lr"]
    assert "weights_only" not in cfg  # a `kssgan fit` key, not a Trainer one
    t = cfg["trainer"]
    assert (t["max_steps"], t["val_check_interval"], t["default_root_dir"]) == (40, 5, out)
    names = [c["class_path"].rsplit(".", 1)[-1] for c in t["callbacks"]]
    assert names == ["SampleGrid", "PrivacyMonitor", "TuneReport"]  # ModelCheckpoint and progress bar replaced
    assert t["callbacks"][0]["init_args"]["dirpath"] == out
    loggers = {lg["class_path"].rsplit(".", 1)[-1]: lg["init_args"] for lg in t["logger"]}
    assert loggers["CSVLogger"]["save_dir"] == out
    assert loggers["KSSGANWandbLogger"] == {
        "save_dir": out,
        "project": "kssgan",
        "group": "pso-demo",
        "name": "trial_a",
        "job_type": "sweep-trial",
    }
    assert exp["trainer"]["max_steps"] == original_budget != 40  # the experiment itself is untouched
    ddp = trial_experiment(exp, {}, tmp_path / "t1", {**settings, "resources": {"workers": 2}}, "b")
    assert ddp["trainer"]["strategy"]["init_args"] == {"find_unused_parameters": True}
    assert ddp["trainer"]["callbacks"][-1]["init_args"]["backend"] == "train"


def test_report_adds_the_objective_and_fails_a_diverged_trial() -> None:
    from kssgan.tune.trainable import TrialDiverged, TuneReport

    module = SimpleNamespace(critic_steps=torch.tensor(10), generator_steps=torch.tensor(2))
    report = TuneReport("score", {"val/domain_acc": 1.0, "val/siamese_sim_own": -1.0})
    good = SimpleNamespace(
        callback_metrics={"val/domain_acc": torch.tensor(0.75), "val/siamese_sim_own": torch.tensor(0.5)},
        global_step=12,
    )
    metrics = report.metrics(good, module)
    assert metrics["score"] == pytest.approx(0.25)
    assert (metrics["critic_steps"], metrics["generator_steps"], metrics["global_step"]) == (10, 2, 12)
    bad = SimpleNamespace(
        callback_metrics={"val/domain_acc": torch.tensor(float("nan")), "val/siamese_sim_own": torch.tensor(0.5)},
        global_step=12,
    )
    with pytest.raises(TrialDiverged, match="val/domain_acc"):
        report.metrics(bad, module)
    # Under DDP every rank validated its own shard: the val/ metrics are averaged over the ranks.
    other_rank = torch.tensor([0.25, 0.1], dtype=torch.float64)  # its val/domain_acc, val/siamese_sim_own
    ddp = SimpleNamespace(
        callback_metrics={**good.callback_metrics, "train/d_loss": torch.tensor(3.0)},
        global_step=12,
        world_size=2,
        strategy=SimpleNamespace(reduce=lambda t, reduce_op: (t + other_rank) / 2),
    )
    module.device = torch.device("cpu")
    metrics = report.metrics(ddp, module)
    assert metrics["val/domain_acc"] == pytest.approx(0.5) and metrics["val/siamese_sim_own"] == pytest.approx(0.3)
    assert metrics["score"] == pytest.approx(0.2) and metrics["train/d_loss"] == 3.0  # rank 0's own
    assert metrics["world_size"] == 2
    with pytest.raises(KeyError, match="val/siamese_sim_own"):
        report.metrics(SimpleNamespace(callback_metrics={"val/domain_acc": torch.tensor(1.0)}, global_step=1), module)


def test_best_config_moves_outputs_and_keeps_the_full_budget() -> None:
    from kssgan.tune.sweep import best_experiment

    exp = load_experiment(REPO / "experiments" / "demo.yaml")  # base.yaml + the demo delta
    cfg = best_experiment(exp, {"model": {"lambda_rec": 3.5}})
    assert cfg["model"]["lambda_rec"] == 3.5
    assert cfg["trainer"]["max_steps"] == exp["trainer"]["max_steps"]
    assert cfg["trainer"]["default_root_dir"] == "outputs/demo_best"
    ckpt = next(c for c in cfg["trainer"]["callbacks"] if c["class_path"].endswith("ModelCheckpoint"))
    assert ckpt["init_args"]["dirpath"] == "outputs/demo_best/checkpoints"


# -- real sweeps on one shared local Ray --------------------------------------------------------
# `ray_local` (a 2-CPU local Ray per test module) is in conftest.py.
def run_sweep(tmp_path: Path, sweep: Path, experiment: Path, *extra: str) -> tuple[int, pd.DataFrame]:
    from kssgan.tune.sweep import main

    out = tmp_path / "sweep"
    rc = main(["--sweep", str(sweep), "--experiment", str(experiment), "--output", str(out), *extra])
    table = pd.read_csv(out / "trials.csv") if (out / "trials.csv").is_file() else pd.DataFrame()
    return rc, table


def check_outputs(out: Path, table: pd.DataFrame, n_ok: int) -> None:
    ok = table[table["status"] == "ok"]
    assert len(ok) == n_ok, table.to_string()
    assert ok[METRIC].between(0.0, 1.0).all()  # the release score (kssgan.privacy_monitor) is in [0, 1]
    assert (ok["global_step"] > 0).all() and (ok["reports"] >= 1).all()
    md = (out / "trials.md").read_text()
    assert md.count("\n| trial_") == len(table)
    best = yaml.safe_load((out / "best.yaml").read_text())
    winner = ok.loc[ok[METRIC].idxmax()]
    assert f"trial {winner['trial']}" in (out / "best.yaml").read_text()
    for col in [c for c in table.columns if c.startswith("model.")]:
        expected = winner[col]
        value = best["model"][col.split(".", 1)[1]]
        assert value == (pytest.approx(expected) if isinstance(expected, float) else expected)
    assert (out / "objective.png").stat().st_size > 1000
    for path in ok["path"]:  # every trial's own outputs, also from reused actors (reuse_actors: true)
        assert (Path(path) / "trial.yaml").is_file() and list((Path(path) / "logs").glob("version_*")), path


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["pso", "hyperopt"])
def test_model_based_searchers_run_a_tiny_sweep_to_the_end(
    kind: str, ray_local: dict, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = tiny_sweep(tmp_path, kind, trials=3)
    rc, table = run_sweep(tmp_path, sweep, tiny_experiment(tmp_path, demo_dir))
    assert rc == 0
    check_outputs(tmp_path / "sweep", table, n_ok=3)
    assert table["model.g_lr"].nunique() == 3  # the searcher proposed three different points


@pytest.mark.slow
def test_random_sweep_survives_a_nan_trial_and_logs_to_wandb_offline(
    ray_local: dict, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    space = {
        "model.g_lr": {"type": "loguniform", "low": 1e-4, "high": 1e-3},
        "model.lambda_gp": {"type": "grid", "values": [10.0, float("nan")]},  # NaN losses in the 2nd
    }
    sweep = tiny_sweep(tmp_path, "random", trials=1, space=space, wandb={"enabled": True})
    rc, table = run_sweep(tmp_path, sweep, tiny_experiment(tmp_path, demo_dir))
    assert rc == 0
    assert list(table["status"]) == ["ok", "error"], table.to_string()
    assert "TrialDiverged" in table["error"].iloc[1] and "non-finite" in table["error"].iloc[1]
    assert math.isnan(table["model.lambda_gp"].iloc[1])
    check_outputs(tmp_path / "sweep", table, n_ok=1)
    # One W&B run per trial, offline, grouped by the sweep (the folder name).
    for path in table["path"]:
        runs = list((Path(path) / "wandb").glob("offline-run-*"))
        assert len(runs) == 1, path
        data = next(runs[0].glob("*.wandb")).read_bytes()
        assert b"sweep" in data and Path(path).name.encode() in data


@pytest.mark.slow
def test_a_killed_sweep_resumes_where_it_stopped(
    ray_local: dict, demo_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    sweep = tiny_sweep(tmp_path, "random", trials=3, max_concurrent=1, budget={**TINY_BUDGET, "max_steps": 30})
    experiment = tiny_experiment(tmp_path, demo_dir)
    out = tmp_path / "sweep"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RAY_ADDRESS"))}
    env.update(OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    cmd = [sys.executable, "-m", "kssgan.cli", "sweep", "--sweep", str(sweep), "--experiment", str(experiment)]
    proc = subprocess.Popen(
        [*cmd, "--output", str(out)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    deadline = time.time() + 150
    try:
        while time.time() < deadline and proc.poll() is None:
            if list((out / "trials").glob("trial_*/checkpoint_000001")):  # first trial mid-way
                break
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()[-3000:]
    before = sorted(p.name for p in (out / "trials").glob("trial_*"))
    assert 1 <= len(before) < 3

    rc, table = run_sweep(tmp_path, sweep, experiment)  # without --resume: refuses to overwrite
    assert rc == 2
    rc, table = run_sweep(tmp_path, sweep, experiment, "--resume")
    assert rc == 0
    assert len(table) == 3 and (table["status"] == "ok").all(), table.to_string()
    assert set(before) <= set(table["trial"])  # the killed trials were continued, not replaced
    first = pd.read_json(Path(table["path"].iloc[0]) / "result.json", lines=True)
    steps = first["global_step"].tolist()
    assert len(steps) >= 3 and all(s > steps[0] for s in steps[1:]), steps  # resumed, not restarted from 0
