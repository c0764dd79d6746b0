"""`kssgan prepare`'s config: a recipe is a job_parser config (round trip, unknown keys refused)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kssgan.data.prepare import cli

REPO = Path(__file__).resolve().parents[1]
ORL = REPO / "data_modules" / "orl.yaml"


def _printed(capsys, argv: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*argv, "--print_config"])
    assert exit_.value.code in (0, None)
    return capsys.readouterr().out


def _values(cfg) -> dict:
    out = cfg.as_dict()
    out.pop("config", None)
    return out


def test_print_config_round_trip(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("KSSGAN_SHARED_DATA", "/data/shared")
    text = _printed(capsys, ["--config", str(ORL), "--k", "4", "--grouping", "random", "--stratify", "gender"])
    printed = yaml.safe_load(text)
    assert printed["data_dir"] == "${KSSGAN_SHARED_DATA:-../shared/datasets}/orl"  # expanded only when run
    assert printed["k"] == 4 and printed["image_size"] == 128 and printed["prepared_dir"] == "outputs/prepared/orl"
    assert printed["grouping"] == {"method": "random", "seed": 0, "stratify": "gender", "kind": {"tone": 0.5}}
    assert printed["labels"] == {"onehot": [], "binary": []} and printed["reader_options"] is None
    (tmp_path / "merged.yaml").write_text(text)
    direct = cli.build_parser().parse_args(["--config", str(ORL), "--k", "4", "--grouping.method", "random"])
    direct.grouping.stratify = "gender"
    again = cli.build_parser().parse_args(["--config", str(tmp_path / "merged.yaml")])
    assert _values(again) == _values(direct)
    job = cli._job(again)
    assert job == cli._job(direct)
    assert job["raw_root"] == Path("/data/shared/orl") and job["out_dir"] == "outputs/prepared/orl"
    assert (job["name"], job["k"], job["grouping_method"], job["grouping_stratify"]) == ("orl", 4, "random", "gender")
    assert job["grouping_kind"] == {"tone": 0.5}  # the recipe's: group-mates alike in lightness
    assert job["reader_options"] == {"labels_csv": "labels.csv", "protocol": "closed_set", "open_set_fraction": 0.2}
    assert job["labels"] == {"onehot": [], "binary": []}
    # and the printed config prints itself unchanged
    assert _printed(capsys, ["--config", str(tmp_path / "merged.yaml")]) == text


def test_dataset_flag_reads_the_recipe_before_every_other_option():
    cfg = cli.build_parser().parse_args(cli._rewrite(["--k", "5", "--dataset", "yale", "--seed", "2"]))
    assert (cfg.k, cfg.grouping.seed, cfg.name, cfg.labels.onehot) == (5, 2, "yale", ["expression"])
    job = cli._job(cli.build_parser().parse_args(cli._rewrite(["--dataset", "folder", "--data-dir", str(REPO)])))
    assert job["name"] == REPO.name and job["out_dir"] == f"outputs/prepared/{REPO.name}"


@pytest.mark.parametrize(
    ("extra", "unknown"),
    [
        ("bogus: 1\n", "bogus"),
        ("grouping: {method: mdav, seed: 0, size: 3}\n", "grouping.size"),
        ("augment: {hflip: 0.5}\n", "augment"),  # augmentation is an experiment setting, not a recipe's
    ],
)
def test_an_unknown_recipe_key_is_an_error(capsys, tmp_path, extra, unknown):
    bad = tmp_path / "bad.yaml"
    bad.write_text(ORL.read_text() + extra)
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--config", str(bad), "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2
    assert unknown in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_an_unknown_dataset_is_one_line(capsys, tmp_path):
    assert cli.main(["--dataset", "nosuch", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "kssgan prepare: no recipe data_modules/nosuch.yaml and not a reader name"


def test_london_recipe_maps_onto_the_options(monkeypatch):
    monkeypatch.setenv("KSSGAN_SHARED_DATA", "/data/shared")
    job = cli._job(cli.build_parser().parse_args(["--config", str(REPO / "data_modules" / "london.yaml")]))
    assert job["raw_root"] == Path("/data/shared/london") and job["name"] == "london"
    assert (job["grouping_method"], job["seed"], job["grouping_stratify"]) == ("mdav", 0, "gender")
    assert job["labels"] == {"onehot": ["expression"], "binary": []} and job["k"] == 3
