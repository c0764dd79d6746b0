"""One config system: every job of ``kssgan`` prints its full config with ``--print_config``, and
that YAML, fed back with ``--config``, prints the same config again."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kssgan.cli import JOBS, main

# a value for one option of each job, to see it travel through the round trip
SET = {
    "prepare": ["--image-size", "48"],
    "evaluate": ["--dataset", "orl", "--k", "2,3"],
    "deidentify": ["--ckpt", "m.ckpt", "--input", "in", "--output", "out"],
    "export": ["--ckpt", "m.ckpt", "--opset", "18"],
    "sweep": ["--dataset", "orl"],
    "bench": ["--batch", "4"],
    "keygen": ["--out", "keys"],
    "reidentify": ["--key", "k.pem"],
    "demo-data": ["--identities", "12"],
    "audit-groups": ["outputs/prepared/orl"],
}


def test_every_job_has_a_config_round_trip() -> None:
    assert set(SET) == set(JOBS)  # a new job joins this test


@pytest.mark.parametrize("job", sorted(SET))
def test_print_config_round_trips(job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([job, *SET[job], "--print_config"])
    assert exit_.value.code in (0, None)
    printed = capsys.readouterr().out
    cfg = yaml.safe_load(printed)
    assert isinstance(cfg, dict) and len(cfg) >= 2, printed
    path = tmp_path / "config.yaml"
    path.write_text(printed)
    with pytest.raises(SystemExit):
        main([job, "--config", str(path), "--print_config"])
    assert yaml.safe_load(capsys.readouterr().out) == cfg


@pytest.mark.parametrize("job", sorted(SET))
def test_an_unknown_config_key_is_one_line_and_exit_2(
    job: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("no_such_option_zz: 3\n")
    with pytest.raises(SystemExit) as exit_:
        main([job, *SET[job], "--config", str(config)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "no_such_option_zz" in err and err.startswith(f"kssgan {job}")
