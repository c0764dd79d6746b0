"""`kssgan deidentify` on a folder batches faces across photos, and one bad photo still fails alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kssgan.cli import main as kssgan_main
from kssgan.deidentify import files as deid_files
from kssgan.deidentify.backends import TorchGenerator
from kssgan.deidentify.pipeline import Deidentifier

pytestmark = pytest.mark.shared_data

PHOTOS = ["subject01.happy", "subject02.sad", "subject03.normal", "subject14.normal"]  # one face each


@pytest.fixture(scope="module")
def four_photos(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("four")
    for name in PHOTOS:
        shutil.copyfile(shared_datasets / "yale" / "yalefaces" / name, root / name)
    return root


@pytest.fixture
def generator_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Faces per call of the torch generator back end, in call order."""
    calls: list[int] = []
    original = TorchGenerator.__call__

    def spy(self: TorchGenerator, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        calls.append(len(images))
        return original(self, images, labels)

    monkeypatch.setattr(TorchGenerator, "__call__", spy)
    return calls


def _run(ckpt: Path, src: Path, out: Path, *extra: str) -> tuple[int, dict]:
    rc = kssgan_main(["deidentify", "--no-progress", "--ckpt", str(ckpt), "--input", str(src), "--output", str(out),
                      *extra])  # fmt: skip
    return rc, json.loads((out / "deidentify-report.json").read_text())


def _status(report: dict) -> dict[str, str]:
    return {e["path"]: e["status"] for e in report["files"]}


def test_faces_of_a_folder_go_through_the_generator_in_one_call_with_the_same_results(
    deid_ckpt: Path, four_photos: Path, tmp_path: Path, generator_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, report = _run(deid_ckpt, four_photos, tmp_path / "batched", "--batch-size", "8", "--jitter-seed", "0")
    assert rc == 0 and report["summary"]["deidentified"] == 4 and report["summary"]["faces"] == 4
    assert generator_calls == [4]  # four photos, one face each: one generator call of four faces
    # the photo-by-photo path (every chunk closed after one photo) gives the same report and pixels
    generator_calls.clear()
    monkeypatch.setattr(deid_files, "CHUNK_MAX_PIXELS", 1)
    rc, single = _run(deid_ckpt, four_photos, tmp_path / "single", "--batch-size", "8", "--jitter-seed", "0")
    assert rc == 0 and generator_calls == [1, 1, 1, 1]
    assert single["files"] == report["files"]
    for name in PHOTOS:
        a = (tmp_path / "batched" / name).read_bytes()
        assert a == (tmp_path / "single" / name).read_bytes()
    # chunks never exceed --batch-size photos
    generator_calls.clear()
    monkeypatch.setattr(deid_files, "CHUNK_MAX_PIXELS", 10**9)
    _run(deid_ckpt, four_photos, tmp_path / "bs3", "--batch-size", "3", "--no-similarity")
    assert generator_calls == [3, 1]


def test_a_bad_photo_inside_a_chunk_fails_alone(
    deid_ckpt: Path, four_photos: Path, tmp_path: Path, generator_calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "in"
    shutil.copytree(four_photos, src)
    (src / "subject02.zz-broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")  # unreadable, mid-chunk
    # a photo that reads fine but makes the pipeline raise: the chunk is redone photo by photo
    original = Deidentifier.process

    def fragile(self: Deidentifier, frames, *args, **kwargs):
        if any(f.key == "subject03.normal" for f in frames):
            raise RuntimeError("simulated crash on subject03.normal")
        return original(self, frames, *args, **kwargs)

    monkeypatch.setattr(Deidentifier, "process", fragile)
    out = tmp_path / "out"
    rc, report = _run(deid_ckpt, src, out, "--batch-size", "8", "--no-similarity")
    assert rc == 1
    assert [e["path"] for e in report["files"]] == sorted(p.name for p in src.iterdir())  # file order kept
    status = _status(report)
    assert status.pop("subject02.zz-broken.jpg") == "failed"
    assert status.pop("subject03.normal") == "failed"
    assert set(status.values()) == {"deidentified"}
    for name in status:
        assert (out / name).is_file()
    assert not (out / "subject03.normal").exists() and not (out / "subject02.zz-broken.jpg").exists()
    bad = next(e for e in report["files"] if e["path"] == "subject03.normal")
    assert bad["reason"] == "unexpected RuntimeError: simulated crash on subject03.normal"
    logged = (out / "deidentify.log").read_text()
    assert "subject02.zz-broken.jpg" in logged and "simulated crash" in logged
    assert generator_calls == [1, 1, 1]  # the failed chunk never reached G; then the good photos one by one
    assert report["summary"]["failed"] == 2 and report["summary"]["deidentified"] == 3
