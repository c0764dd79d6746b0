"""`kssgan evaluate` options from YAML (`--config`, jsonargparse): the printed config reads back, a
YAML of EvalSettings fields sets them like the flags, an unknown key is an error, and a YAML drives
a real (baselines-only) run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from kssgan.evaluate import cli
from kssgan.evaluate.results import EvalSettings

FLAGS = [
    "--dataset",
    "orl",
    "--k",
    "2,5",
    "--recognizers",
    "sface",
    "--insightface-dir",
    "models/arcface",
    "--no-samples",
    "--no-originals",
    "--no-gender",
    "--blur-sigma-fraction",
    "0.1",
    "--ckpt",
    "k3=a.ckpt",
    "--method",
    "paper=p.ckpt",
]


def parse(argv: list[str]) -> dict[str, Any]:
    ns = cli._parser().parse_args(argv).as_dict()
    ns.pop("config", None)
    return ns


def test_print_config_reads_back_to_the_same_options(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*FLAGS, "--print_config"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "blur_sigma_fraction: 0.1" in printed and "sample_rows: 0" in printed and "gender: false" in printed
    config = tmp_path / "printed.yaml"
    config.write_text(printed)
    from_yaml = parse(["--config", str(config)])
    assert from_yaml == parse(FLAGS)
    assert from_yaml["ks"] == [2, 5] and from_yaml["ckpt"] == ["k3=a.ckpt"] and from_yaml["originals_in_grid"] is False


def test_yaml_of_evalsettings_fields_sets_them_like_the_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[tuple, EvalSettings]] = []

    def fake_run(dataset, out, ckpts, ablation, settings, root, methods=()):
        seen.append(((dataset, str(out), list(ckpts), list(methods)), settings))
        return {"groupings": {}}

    monkeypatch.setattr(cli, "run_evaluation", fake_run)
    # the schema `--config` has always read: EvalSettings field names
    config = tmp_path / "eval.yaml"
    config.write_text(
        "ks: [2, 5]\nrecognisers: [sface]\ninsightface_dir: models/arcface\nsample_rows: 0\n"
        "originals_in_grid: false\ngender: false\nblur_sigma_fraction: 0.1\n"
    )
    out = str(tmp_path / "o")
    assert cli.main([*FLAGS, "--out", out]) == 0
    assert (
        cli.main(
            [
                "--config",
                str(config),
                "--dataset",
                "orl",
                "--ckpt",
                "k3=a.ckpt",
                "--method",
                "paper=p.ckpt",
                "--out",
                out,
            ]
        )
        == 0
    )
    (args_flags, by_flags), (args_yaml, by_yaml) = seen
    assert args_flags == args_yaml == ("orl", out, ["k3=a.ckpt"], ["paper=p.ckpt"])
    assert by_yaml == by_flags
    assert by_yaml.recognisers == ["sface", "insightface"] and by_yaml.sample_rows == 0 and not by_yaml.gender
    assert by_yaml.pixelate_blocks == EvalSettings().pixelate_blocks  # unset: the default
    # a flag after the file overrides it
    assert cli.main(["--config", str(config), "--dataset", "orl", "--k", "3", "--gender"]) == 0
    assert seen[-1][1].ks == [3] and seen[-1][1].gender and seen[-1][1].blur_sigma_fraction == 0.1


@pytest.mark.parametrize("text", ["ks: [2]\nbogus: 1\n", "no_such_setting: true\n", "ks: [0]\n"])
def test_unknown_or_bad_yaml_key_exits_2(tmp_path: Path, text: str, capsys: pytest.CaptureFixture) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--dataset", "orl", "--config", str(config)])
    assert exit_.value.code == 2
    assert "error:" in capsys.readouterr().err


@pytest.mark.slow
def test_yaml_config_drives_a_real_run(demo_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "eval.yaml"
    config.write_text(
        f"dataset: {demo_dir}\nks: [2]\nrecognisers: [sface]\npixelate_blocks: 4\nattacker_jpeg_quality: 0\n"
        "gender: false\ndetection: false\nprogress: false\nsample_rows: 0\n"
    )
    out = tmp_path / "eval"
    assert cli.main(["--config", str(config), "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    s = metrics["settings"]
    assert s["ks"] == [2] and s["recognisers"] == ["sface"] and s["pixelate_blocks"] == 4 and s["sample_rows"] == 0
    rows = {(r["method"], r["k"]): r for r in metrics["results"]}
    assert set(rows) == {
        ("original", None),
        ("blur", None),
        ("pixelate", None),
        ("k-same-pixel", 2),
        ("k-same-eigen", 2),
    }
    assert rows[("pixelate", None)]["note"] == "4×4 cells"
    assert list(rows[("blur", None)]["privacy"]) == ["sface"] and "privacy_attacker" not in rows[("blur", None)]
    assert not (out / "samples.png").exists()  # sample_rows: 0 writes no face images
