"""Fail-closed release: unchanged faces are withheld, the record survives kill -9 and re-runs."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from kssgan.cli import main as kssgan_main
from kssgan.deidentify.backends import TorchGenerator
from kssgan.deidentify.journal import JOURNAL_NAME, Journal
from kssgan.deidentify.policy import EXIT_WITHHELD, ReleasePolicy, obscure_box

REPO = Path(__file__).resolve().parents[1]


# -- no model, no data ---------------------------------------------------------------------------
def test_journal_keeps_the_newest_entry_per_path_and_survives_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_NAME
    with Journal(path) as j:
        j.append({"path": "a.jpg", "status": "withheld"})
        j.append({"path": "b.jpg", "status": "deidentified", "faces": [{"similarity": 0.1}]})
        j.append({"path": "a.jpg", "status": "deidentified"})
    with path.open("ab") as fh:  # a kill -9 in the middle of a line
        fh.write(b'{"path": "c.jpg", "sta')
    j = Journal(path)
    assert j.torn_lines == 1
    j.append({"path": "c.jpg", "status": "failed"})
    j.close()
    merged = Journal(path).merged()
    assert [(e["path"], e["status"]) for e in merged] == [
        ("a.jpg", "deidentified"),
        ("b.jpg", "deidentified"),
        ("c.jpg", "failed"),
    ]
    assert merged[1]["faces"] == [{"similarity": 0.1}]


def test_release_policy_decisions_and_warnings() -> None:
    default = ReleasePolicy()
    assert default.decide([]) == ("withhold", "no face detected")
    assert default.decide([{"match": False}]) == ("release", None)
    action, reason = default.decide([{"match": False}, {"match": True}])
    assert action == "withhold" and reason.startswith("1 of 2 output face(s) still match")
    assert default.warnings(similarity_checked=True) == []
    opt_out = ReleasePolicy("copy", "keep")
    assert opt_out.decide([])[0] == "copy" and opt_out.decide([{"match": True}])[0] == "release"
    assert len(opt_out.warnings(similarity_checked=False)) == 3
    assert ReleasePolicy("blur").decide([])[0] == "obscure"
    with pytest.raises(ValueError, match="--on-no-face must be one of"):
        ReleasePolicy("ignore")


def test_obscure_box_changes_only_the_grown_box() -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (100, 120, 3), dtype=np.uint8)
    out = image.copy()
    obscure_box(out, (40, 30, 20, 20))
    changed = np.abs(out.astype(int) - image).max(axis=2) > 0
    ys, xs = np.nonzero(changed)
    assert 30 - 7 <= ys.min() and ys.max() < 50 + 7 and 40 - 7 <= xs.min() and xs.max() < 60 + 7
    assert changed[30:50, 40:60].mean() > 0.9


# -- a real detector and recogniser on real photos -----------------------------------------------
PHOTOS = ["subject01.happy", "subject02.sad", "subject14.normal"]


@pytest.fixture(scope="module")
def yale_three(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("three")
    for name in PHOTOS:
        shutil.copyfile(shared_datasets / "yale" / "yalefaces" / name, root / name)
    return root


@pytest.mark.shared_data
def test_an_output_that_still_matches_is_withheld_unless_kept(
    deid_ckpt: Path, yale_three: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """A generator that returns its input leaves every face as it was: the recogniser check catches all."""
    monkeypatch.setattr(TorchGenerator, "__call__", lambda self, images, labels: images)
    out = tmp_path / "out"
    args = ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(yale_three), "--output", str(out)]
    assert kssgan_main(args) == EXIT_WITHHELD
    console = capsys.readouterr().out
    assert "0 released" in console and "3 withheld (0 no face found, 3 still matching)" in console
    report = json.loads((out / "deidentify-report.json").read_text())
    for entry in report["files"]:
        assert (entry["status"], entry["withheld_for"]) == ("withheld", "still_matching")
        assert entry["faces"][0]["match"] is True and entry["faces"][0]["similarity"] > 0.6
    assert sorted(p.name for p in out.iterdir()) == sorted(["deidentify-report.json", "deidentify.log", JOURNAL_NAME])
    # explicit opt-out: released, warned on the console, counted
    assert kssgan_main([*args, "--on-still-matching", "keep"]) == 0
    captured = capsys.readouterr()
    assert "WARNING: --on-still-matching keep" in captured.err
    assert "3 released" in captured.out and "3 still-matching faces RELEASED" in captured.out
    report = json.loads((out / "deidentify-report.json").read_text())
    assert report["summary"]["still_matching_released"] == 3 and report["summary"]["withheld"] == 0
    assert all((out / name).is_file() for name in PHOTOS)


# -- kill -9 at random points, then re-run: nothing lost, nothing duplicated ---------------------
LONDON_PHOTOS = 60


def _london_sixty(shared_datasets: Path, root: Path) -> list[str]:
    london = shared_datasets / "london"
    if not london.is_dir():
        pytest.skip(f"{london} not found")
    names = sorted(p.name for p in (london / "neutral_front").glob("*.jpg"))[:LONDON_PHOTOS]
    root.mkdir()
    for name in names:
        shutil.copyfile(london / "neutral_front" / name, root / name)
    return names


def _journal_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


@pytest.mark.slow
@pytest.mark.shared_data
def test_kill_9_at_random_points_then_rerun_keeps_every_entry(
    deid_ckpt: Path, shared_datasets: Path, tmp_path: Path
) -> None:
    names = _london_sixty(shared_datasets, tmp_path / "in")
    out = tmp_path / "out"
    journal = out / JOURNAL_NAME
    cmd = [sys.executable, "-m", "kssgan.cli", "deidentify", "--no-progress", "--ckpt", str(deid_ckpt),
           "--input", str(tmp_path / "in"), "--output", str(out), "--on-still-matching", "keep"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    rng = random.Random(11)
    kills = 0
    for target in sorted(rng.sample(range(3, LONDON_PHOTOS - 5), 3)):
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 300
        while _journal_lines(journal) < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.3))  # somewhere inside the next file
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            kills += 1
        proc.wait()
    assert kills == 3
    assert subprocess.run(cmd, env=env, capture_output=True).returncode == 0
    report = json.loads((out / "deidentify-report.json").read_text())
    paths = [e["path"] for e in report["files"]]
    assert sorted(paths) == names  # all 60, none duplicated
    assert report["summary"]["files"] == LONDON_PHOTOS == report["summary"]["deidentified"]
    for entry in report["files"]:
        assert entry["status"] == "deidentified" and len(entry["faces"]) == 1
        assert isinstance(entry["faces"][0]["match"], bool) and "similarity" in entry["faces"][0]
        assert (out / entry["path"]).is_file()
    assert report["this_run"]["skipped_existing"] > 0  # the re-run relied on the journal for those
    assert not list(out.glob("*.part"))


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("in", "is the --input folder itself"),
        ("in/released", "lies inside --input"),
        ("taken.txt", "is an existing file"),
        ("in/a.jpg@folder", "is the folder of --input"),
    ],
)
def test_output_paths_that_would_mix_with_the_input_are_refused(tmp_path: Path, capsys, output: str, message: str):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(b"\xff\xd8\xff")
    (tmp_path / "taken.txt").write_text("x")
    src = tmp_path / "in"
    if output.endswith("@folder"):  # a single file whose output folder is its own folder
        src, output = tmp_path / "in" / "a.jpg", "in"
    rc = kssgan_main(["deidentify", "--ckpt", str(tmp_path / "none.ckpt"), "--input", str(src),
                      "--output", str(tmp_path / output)])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.jpg"]
