"""`kssgan bench` options from YAML (`--config`, jsonargparse): the printed config reads back, an
unknown key exits 2, and a YAML drives a (sectionless, instant) run like its flags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from kssgan import bench

FLAGS = ["--suite", "groups", "--groups", "8,340", "--conditioning", "onehot", "--steps", "2", "--device", "cpu"]


def test_print_config_reads_back_to_the_same_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        bench.main([*FLAGS, "--output", str(tmp_path / "g.json"), "--print_config"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    cfg = yaml.safe_load(printed)
    assert cfg["only"] == "groups" and cfg["groups"] == "8,340" and cfg["steps"] == 2 and cfg["batch"] == 8
    assert cfg["out"] == str(tmp_path / "g.json") and "one" not in cfg  # the internal --one stays hidden
    config = tmp_path / "bench.yaml"
    config.write_text(printed)
    with pytest.raises(SystemExit):
        bench.main(["--config", str(config), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out) == cfg


def test_yaml_config_drives_a_run_like_its_flags(tmp_path: Path) -> None:
    by_flags, by_yaml = tmp_path / "flags.json", tmp_path / "yaml.json"
    assert bench.main(["--only", "", "--device", "cpu", "--output", str(by_flags)]) == 0
    config = tmp_path / "bench.yaml"
    config.write_text(f"only: ''\ndevice: cpu\nout: {by_yaml}\n")
    assert bench.main(["--config", str(config)]) == 0
    flags, from_yaml = json.loads(by_flags.read_text()), json.loads(by_yaml.read_text())
    assert set(flags) == set(from_yaml) == {"date", "machine", "definitions"}  # no section asked, none run
    assert flags["machine"] == from_yaml["machine"] and from_yaml["machine"]["device"] == "cpu"


def test_one_configuration_json_passes_through_the_parser_unchanged(capsys: pytest.CaptureFixture) -> None:
    """The suite runs each configuration as ``python -m kssgan.bench --one '<json>'``: a string, not YAML."""
    cfg = {"kind": "baseline", "size": 32, "batch": 1, "steps": 1, "device": "cpu"}
    assert bench.main(["--one", json.dumps(cfg)]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["iterations"] == 1 and out["seconds_per_iteration"] > 0 and out["peak_memory_mb"] > 0
