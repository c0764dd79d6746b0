"""Bad checkpoint files get one clear line and exit 2 from every command that loads one; none runs code."""

from __future__ import annotations

from pathlib import Path

import pytest
from bad_inputs import write_bad_checkpoints

from kssgan.cli import main as kssgan_main
from kssgan.safe_checkpoint import CheckpointError, load_model

EXPECTED = {
    "pickle_payload": "holds Python objects beyond plain weights",
    "raw_pickle": "is not a torch checkpoint",
    "random": "is not a torch checkpoint",
    "empty": "is empty (0 bytes)",
    "truncated": "is truncated or corrupt",
    "foreign_dict": "is not a kssgan checkpoint",
}


@pytest.fixture(scope="module")
def bad(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], Path]:
    root = tmp_path_factory.mktemp("bad_ckpt")
    marker = root / "PAYLOAD_RAN"
    return write_bad_checkpoints(root / "ckpt", marker), marker


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_load_model_names_the_problem(bad, kind: str) -> None:
    paths, marker = bad
    with pytest.raises(CheckpointError) as info:
        load_model(paths[kind])
    assert EXPECTED[kind] in str(info.value) and "\n" not in str(info.value)
    assert "weights_only" not in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("command", ["deidentify", "evaluate", "export"])
def test_commands_refuse_a_bad_checkpoint_in_one_line(bad, kind: str, command: str, tmp_path: Path, capsys) -> None:
    paths, marker = bad
    (tmp_path / "in").mkdir()
    args = {
        "deidentify": ["--no-progress", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")],
        "evaluate": ["--dataset", "demo", "--recognisers", "sface", "--out", str(tmp_path / "eval")],
        "export": ["--output", str(tmp_path / "g.onnx")],
    }[command]
    rc = kssgan_main([command, "--ckpt", str(paths[kind]), *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1 and EXPECTED[kind] in err and err.startswith(f"kssgan {command}: ")
    assert "weights_only" not in err and "Traceback" not in err
    assert not marker.exists()
