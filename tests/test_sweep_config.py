"""`kssgan sweep` options from YAML (`--config`, jsonargparse): the printed config reads back, a YAML
drives the run like its flags, unknown keys (in the job YAML or the sweep file) exit 2. No Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from kssgan.tune import sweep as sweep_mod
from tests.conftest import REPO

FLAGS = ["--sweep", "sweeps/pso.yaml", "--dataset", "yale", "--trials", "3", "--max-concurrent", "2", "--no-wandb"]


def options(argv: list[str]) -> dict[str, Any]:
    ns = sweep_mod.parse_args(argv).as_dict()
    ns.pop("config", None)
    return ns


def test_print_config_reads_back_to_the_same_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        sweep_mod.main([*FLAGS, "--print_config"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert yaml.safe_load(printed) == {
        "sweep": "sweeps/pso.yaml",
        "dataset": "yale",
        "experiment": None,
        "trials": 3,
        "max_concurrent": 2,
        "output": None,
        "resume": False,
        "address": None,
        "no_wandb": True,
    }
    config = tmp_path / "job.yaml"
    config.write_text(printed)
    assert options(["--config", str(config)]) == options(FLAGS)
    assert options(["--config", str(config), "--trials", "5"])["trials"] == 5  # a later flag overrides


def test_yaml_config_drives_the_run_like_its_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def fake_run(args: Any) -> dict[str, Any]:
        seen.append({k: v for k, v in vars(args).items() if k != "config"})
        return {
            "best": {"trial": "trial_1"},
            "trials": 3,
            "ok": 3,
            "errors": 0,
            "expected_trials": 3,
            "output": tmp_path,
            "table_csv": tmp_path / "trials.csv",
            "table_md": tmp_path / "trials.md",
            "best_config": tmp_path / "best.yaml",
        }

    monkeypatch.setattr(sweep_mod, "run_sweep", fake_run)
    config = tmp_path / "job.yaml"
    config.write_text("sweep: sweeps/pso.yaml\ndataset: yale\ntrials: 3\nmax_concurrent: 2\nno_wandb: true\n")
    assert sweep_mod.main(FLAGS) == 0
    assert sweep_mod.main(["--config", str(config)]) == 0
    assert seen[0] == seen[1]
    assert seen[1]["dataset"] == "yale" and seen[1]["trials"] == 3 and seen[1]["no_wandb"] is True


def test_yaml_config_reaches_the_real_run(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """The job YAML's dataset is the one the sweep looks up (an absent experiment: one line, exit 2)."""
    config = tmp_path / "job.yaml"
    config.write_text(f"sweep: {REPO / 'sweeps' / 'random.yaml'}\ndataset: no-such-dataset\n")
    assert sweep_mod.main(["--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "experiments/no-such-dataset.yaml" in err


def test_unknown_sweep_section_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = yaml.safe_load((REPO / "sweeps" / "random.yaml").read_text()) | {"seracher": {"kind": "pso"}}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    assert sweep_mod.main(["--sweep", str(path), "--experiment", str(REPO / "experiments" / "demo.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "unknown sweep sections ['seracher']" in err
    for shipped in sorted((REPO / "sweeps").glob("*.yaml")):
        assert sweep_mod.load_sweep(shipped)["space"]  # every shipped sweep has only known sections
