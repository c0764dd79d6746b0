"""One config system for `deidentify`, `export`, `keygen` and `reidentify`: `--config` YAML sets any
option, `--print_config` prints the merged config that `--config` reads back, unknown keys fail (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from kssgan.cli import main as kssgan_main
from kssgan.deidentify.cli import build_parser, options_from_args
from kssgan.deidentify.options import DeidentifyOptions

FLAGS = [
    "--ckpt", "m.ckpt", "--input", "in", "--output", "out", "--batch-size", "3", "--on-no-face", "blur",
    "--set", "expression=happy", "--set", "glasses=no", "--no-similarity", "--mask.feather", "0.4",
    "--tracker.max_age", "7", "--rename", "hash", "--channels-last", "false", "--detector-score", "0.75",
]  # fmt: skip


def _printed(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as info:
        kssgan_main(argv)
    assert info.value.code == 0
    return capsys.readouterr().out


def _plain(ns: object) -> dict:
    data = ns.as_dict()  # type: ignore[attr-defined]
    data.pop("config", None)
    return data


def test_print_config_reads_back_to_the_same_namespace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    printed = _printed(capsys, ["deidentify", *FLAGS, "--print_config"])
    data = yaml.safe_load(printed)
    assert data["batch_size"] == 3 and data["set"] == ["expression=happy", "glasses=no"]
    assert data["mask"]["feather"] == 0.4 and data["tracker"]["max_age"] == 7 and data["channels_last"] is False
    assert data["video_codec"][".avi"] == "MJPG"  # defaults are printed too: the full config
    cfg = tmp_path / "deid.yaml"
    cfg.write_text(printed)
    from_flags = build_parser().parse_args(FLAGS)
    from_file = build_parser().parse_args(["--config", str(cfg)])
    assert _plain(from_file) == _plain(from_flags)
    opts = options_from_args(from_file)
    assert opts == options_from_args(from_flags)
    assert opts.attributes == {"expression": "happy", "glasses": "no"} and opts.similarity is False
    assert opts.mask.feather == 0.4 and opts.tracker.max_age == 7 and opts.detector_score == 0.75
    # nothing set: the options are DeidentifyOptions' own defaults
    assert options_from_args(build_parser().parse_args(FLAGS[:6])) == DeidentifyOptions()


def test_a_flag_after_the_config_overrides_it(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("ckpt: m.ckpt\ninput: in\noutput: out\nbatch_size: 5\non_no_face: pixelate\n")
    args = build_parser().parse_args(["--config", str(cfg), "--batch-size", "2"])
    assert args.batch_size == 2 and args.on_no_face == "pixelate" and args.ckpt == "m.ckpt"


@pytest.mark.parametrize(
    ("job", "yaml_text"),
    [
        ("deidentify", "ckpt: m.ckpt\ninput: in\noutput: out\nbatch_sise: 4\n"),  # a typo is no option
        ("deidentify", "ckpt: m.ckpt\ninput: in\noutput: out\nmask: {feathr: 0.2}\n"),
        ("export", "ckpt: m.ckpt\nopset: 17\nverify: false\n"),
        ("keygen", "out: keys\npassword: x\n"),
        ("reidentify", "key: a\nsealed: b\nfmt: csv\n"),
    ],
)
def test_an_unknown_yaml_key_is_a_bad_request(
    job: str, yaml_text: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml_text)
    with pytest.raises(SystemExit) as info:
        kssgan_main([job, "--config", str(cfg)])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "not accepted" in err or "No action for key" in err or "feathr" in err
    assert not (tmp_path / "keys").exists()


@pytest.mark.parametrize(
    ("job", "argv", "expected"),
    [
        (
            "export",
            ["--ckpt", "m.ckpt", "--output", "g.onnx", "--opset", "18", "--no-verify"],
            {"ckpt": "m.ckpt", "output": "g.onnx", "opset": 18, "no_verify": True},
        ),
        ("keygen", ["--out", "keys", "--passphrase"], {"out": "keys", "passphrase": True}),
        (
            "reidentify",
            ["--key", "h.key", "--sealed", "r.sealed", "--format", "csv", "--partial"],
            {"key": "h.key", "sealed": "r.sealed", "file": None, "format": "csv", "partial": True},
        ),
    ],
)
def test_other_jobs_print_a_config_that_reads_back(
    job: str, argv: list[str], expected: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    printed = _printed(capsys, [job, *argv, "--print_config"])
    assert yaml.safe_load(printed) == expected
    cfg = tmp_path / "c.yaml"
    cfg.write_text(printed)
    assert yaml.safe_load(_printed(capsys, [job, "--config", str(cfg), "--print_config"])) == expected


def test_keygen_config_chooses_the_key_folder(tmp_path: Path) -> None:
    cfg = tmp_path / "keygen.yaml"
    cfg.write_text(f"out: {tmp_path / 'from_yaml'}\n")
    assert kssgan_main(["keygen", "--config", str(cfg)]) == 0
    assert (tmp_path / "from_yaml" / "holder.key").is_file() and (tmp_path / "from_yaml" / "holder.pub").is_file()


@pytest.mark.shared_data
def test_a_yaml_config_drives_a_run_like_the_flags(deid_ckpt: Path, tmp_path: Path) -> None:
    """A picture without a face: withheld by default (exit 3); `on_no_face: blur` in YAML releases it
    blurred, byte for byte as `--on-no-face blur` does; a flag after the config wins over it."""
    import cv2

    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(0)
    cv2.imwrite(str(src / "wall.png"), (rng.random((96, 128, 3)) * 255).astype(np.uint8))
    base = ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src)]

    def status(out: Path) -> str:
        return json.loads((out / "deidentify-report.json").read_text())["files"][0]["status"]

    assert kssgan_main([*base, "--output", str(tmp_path / "default")]) == 3
    assert status(tmp_path / "default") == "withheld" and not (tmp_path / "default" / "wall.png").exists()

    cfg = tmp_path / "deid.yaml"
    cfg.write_text("on_no_face: blur\nno_similarity: true\n")
    assert kssgan_main([*base, "--config", str(cfg), "--output", str(tmp_path / "yaml")]) == 0
    assert kssgan_main([*base, "--on-no-face", "blur", "--no-similarity", "--output", str(tmp_path / "flags")]) == 0
    assert status(tmp_path / "yaml") == status(tmp_path / "flags") == "obscured"
    released = (tmp_path / "yaml" / "wall.png").read_bytes()
    assert released == (tmp_path / "flags" / "wall.png").read_bytes()
    assert released != (src / "wall.png").read_bytes()
    report = json.loads((tmp_path / "yaml" / "deidentify-report.json").read_text())
    assert report["release_policy"] == {
        "on_no_face": "blur",
        "on_still_matching": "withhold",
        "similarity_checked": False,
    }

    override = ["--config", str(cfg), "--on-no-face", "withhold", "--output", str(tmp_path / "override")]
    assert kssgan_main([*base, *override]) == 3
    assert status(tmp_path / "override") == "withheld"


def test_yaml_values_keep_their_text_and_a_number_for_a_name_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text('ckpt: m.ckpt\ninput: in\noutput: out\nidentity: "007"\nset: [expression=happy]\n')
    opts = options_from_args(build_parser().parse_args(["--config", str(cfg), "--set", "glasses=no"]))
    assert opts.identity == "007" and opts.attributes == {"expression": "happy", "glasses": "no"}
    cfg.write_text("ckpt: m.ckpt\ninput: in\noutput: out\nidentity: 007\n")  # YAML reads 7, not the name 007
    with pytest.raises(SystemExit) as info:
        kssgan_main(["deidentify", "--config", str(cfg)])
    assert info.value.code == 2 and "identity" in capsys.readouterr().err
