"""`kssgan deidentify --seal-to` on real Yale photos and a video: the round trip through
`kssgan reidentify`, a release that names nobody, and a kill -9 followed by a re-run."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kssgan.cli import main as kssgan_main
from kssgan.seal.cli import read_mapping
from kssgan.seal.keys import generate_keypair, load_private
from kssgan.seal.release import hashed_name
from kssgan.seal.sealed_log import RECORD, read_sealed, scan

pytestmark = pytest.mark.shared_data

REPO = Path(__file__).resolve().parents[1]
PHOTOS = ["subject01.happy", "subject02.sad", "subject14.normal"]
SECRET = "patient-zoe-quinn"  # written into the EXIF of the JPEGs and into file and folder names
# words that name a source: none of them may appear in a sealed release (names or bytes)
SOURCE_WORDS = ["subject", "happy", "normal", "yalefaces", "patient", "zoe", "quinn", "clip", "wall"]


@pytest.fixture(scope="module")
def holder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return generate_keypair(tmp_path_factory.mktemp("holder"))


def _jpeg_with_exif(src: Path, dst: Path) -> None:
    img = Image.open(src).convert("RGB")
    exif = Image.Exif()
    exif[0x010E] = f"{SECRET} {src.name}"  # ImageDescription
    exif[0x013B] = SECRET  # Artist
    img.save(dst, format="JPEG", exif=exif.tobytes(), quality=95)


def _video(path: Path) -> None:
    """Two faces in five frames, with a sine tone (its audio must be released too, and say nothing)."""
    from bad_inputs import sine_video

    from kssgan.deidentify.bench import synthetic_video_frames

    sine_video(path, synthetic_video_frames(5, (640, 480)))


@pytest.fixture(scope="module")
def inputs(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Yale photos under their dataset paths, a face JPEG and a face-less JPEG with EXIF, a two-face video."""
    root = tmp_path_factory.mktemp("ward")
    yale = shared_datasets / "yale" / "yalefaces"
    (root / "yalefaces").mkdir()
    for name in PHOTOS:
        shutil.copyfile(yale / name, root / "yalefaces" / name)
    (root / SECRET).mkdir()
    _jpeg_with_exif(yale / "subject03.normal", root / SECRET / f"{SECRET}.jpg")
    wall = np.tile(np.linspace(40, 220, 300, dtype=np.uint8)[None, :, None], (200, 1, 3))
    Image.fromarray(wall).save(root / "wall.png")
    _jpeg_with_exif(root / "wall.png", root / SECRET / "wall.jpg")
    (root / "wall.png").unlink()
    _video(root / "clip-of-patient.avi")
    return root


@pytest.fixture(scope="module")
def sealed_release(deid_ckpt: Path, inputs: Path, holder, shared_datasets: Path, tmp_path_factory) -> tuple[int, Path]:
    out = tmp_path_factory.mktemp("released")
    rc = kssgan_main([
        "deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(inputs), "--output", str(out),
        "--attributes", str(shared_datasets / "yale" / "labels.csv"), "--identity-column", "subject",
        "--seal-to", str(holder[1]), "--rename", "hash", "--on-no-face", "copy", "--audio", "keep",
    ])  # fmt: skip
    return rc, out


def _sources(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_round_trip_over_a_folder_and_a_video(sealed_release, inputs: Path, holder, deid_ckpt: Path, capsys) -> None:
    rc, out = sealed_release
    assert rc == 0
    mapping = read_mapping(holder[0], out / "reidentify.sealed")
    sources = _sources(inputs)
    assert sorted(e["source"] for e in mapping) == sources and len(sources) == 6
    records = ("reidentify.sealed", "deidentify-report.json", "deidentify.log", "deidentify-journal.jsonl")
    released = sorted(p.name for p in out.iterdir() if p.name not in records)
    assert released == sorted(e["released"] for e in mapping)
    sha = hashlib.sha256(deid_ckpt.read_bytes()).hexdigest()
    for e in mapping:
        assert e["released"] == hashed_name(inputs / e["source"], e["source"])  # the holder can recompute names
        assert e["checkpoint_sha256"] == sha and e["input"] == str(inputs.resolve())
    by_source = {e["source"]: e for e in mapping}
    happy = by_source["yalefaces/subject01.happy"]
    assert happy["identity"] == "subject01" and happy["status"] == "deidentified" and happy["released"].endswith(".gif")
    assert len(happy["faces"]) == 1 and happy["faces"][0]["group_source"] == "closed_set"
    x, y, w, h = happy["faces"][0]["box"]
    assert 60 < x + w / 2 < 260 and 40 < y + h / 2 < 220 and w > 40  # Yale: one face, mid-picture
    assert (
        by_source[f"{SECRET}/wall.jpg"]["status"] == "no_face" and by_source[f"{SECRET}/wall.jpg"]["identity"] is None
    )
    clip = by_source["clip-of-patient.avi"]
    assert clip["kind"] == "video" and clip["frames"] == 5 and clip["face_detections"] == 10
    assert len(clip["tracks"]) == 2
    assert clip["audio"] == [{"codec": "pcm_s16le", "kept": "copied", "seconds": 0.5}]
    for t in clip["tracks"]:
        assert (t["first_frame"], t["last_frame"], t["frames"]) == (0, 4, 5)
        assert len(t["first_box"]) == 4 and len(t["last_box"]) == 4 and t["first_box"][2] > 20
    # one entry through the CLI, by the released file's own path
    capsys.readouterr()
    rc = kssgan_main(["reidentify", "--key", str(holder[0]), "--sealed", str(out / "reidentify.sealed"),
                      "--file", str(out / clip["released"])])  # fmt: skip
    assert rc == 0 and json.loads(capsys.readouterr().out)["source"] == "clip-of-patient.avi"


def _readable_bytes(path: Path) -> bytes:
    return _readable_bytes_of(path.read_bytes(), path.suffix)


def _readable_bytes_of(data: bytes, suffix: str) -> bytes:
    """The bytes of a file (``data``, its name ending in ``suffix``) that can carry text: a JPEG's
    segments before its compressed scan; a PNG's chunks other than its compressed image data; none
    of a GIF (its comments are left to PIL's check below); an AVI's chunks other than its encoded
    frames and samples; every other file whole. (A three-letter word turns up by chance in
    kilobytes of compressed pixels, which is no leak.)"""
    if suffix in (".jpg", ".jpeg"):
        return data[: data.find(b"\xff\xda")]
    if suffix == ".png":
        out, i = [data[:8]], 8
        while i + 8 <= len(data):
            size, kind = int.from_bytes(data[i : i + 4], "big"), data[i + 4 : i + 8]
            if kind != b"IDAT":
                out.append(data[i : i + 12 + size])
            i += 12 + size
        return b"".join(out)
    if suffix == ".gif":
        return b""
    if data[:4] == b"RIFF":  # AVI: every chunk but the encoded frames and samples ('movi') and their index
        return _riff_readable(data)
    return data


def _riff_readable(data: bytes) -> bytes:
    """A RIFF file's bytes without the ``movi`` list (encoded frames and audio samples) and the
    ``idx1`` chunk (their offsets): its headers and INFO, where text would be."""
    out, i = [data[:12]], 12
    while i + 8 <= len(data):
        kind, size = data[i : i + 4], int.from_bytes(data[i + 4 : i + 8], "little")
        end = i + 8 + size + (size & 1)
        if kind in (b"LIST", b"RIFF") and data[i + 8 : i + 12] != b"movi":  # RIFF: an OpenDML AVIX part
            out.append(data[i : i + 12])
            out.append(_riff_readable(b"RIFF" + data[i + 4 : i + 8] + data[i + 8 : end])[12:])  # its sub-chunks
        elif kind not in (b"LIST", b"RIFF", b"idx1"):
            out.append(data[i:end])
        i = end
    return b"".join(out)


def test_riff_readable_bytes_keep_headers_and_drop_encoded_frames() -> None:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return kind + len(body).to_bytes(4, "little") + body + b"\0" * (len(body) & 1)

    info = chunk(b"LIST", b"INFO" + chunk(b"INAM", b"zoe"))
    movi = chunk(b"LIST", b"movi" + chunk(b"00dc", b"xxzoexx"))
    avi = chunk(
        b"RIFF", b"AVI " + chunk(b"LIST", b"hdrl" + chunk(b"avih", b"h" * 7)) + info + movi + chunk(b"idx1", b"zoe!")
    )
    kept = _readable_bytes_of(avi, ".avi")
    assert kept.count(b"zoe") == 1 and b"INAM" in kept and b"avih" in kept  # the title stays; frames and index go
    assert b"00dc" not in kept and b"idx1" not in kept


def test_the_sealed_release_names_nobody(sealed_release, inputs: Path) -> None:
    _, out = sealed_release
    files = [p for p in out.rglob("*") if p.is_file()]
    assert all(p.parent == out for p in files)  # flat: no source folder names either
    for p in files:
        data = _readable_bytes(p).lower()
        for word in SOURCE_WORDS:
            assert word not in p.name.lower(), p.name
            assert word.encode() not in data, (p.name, word)
    report = json.loads((out / "deidentify-report.json").read_text())
    assert report["summary"]["files"] == 6 and report["summary"]["deidentified"] == 5
    assert report["sealed"]["entries_this_run"] == 6
    paths = [e["path"] for e in report["files"]]
    assert paths == sorted(paths)  # processed in hashed-name order: no trace of the sources' sorted order
    plain = {"path", "kind", "status", "reason", "faces", "still_matching", "tracks", "frames", "face_detections",
             "still_matching_detections", "withheld_for", "audio"}  # fmt: skip
    assert all(set(e) <= plain for e in report["files"])
    journal = [json.loads(line) for line in (out / "deidentify-journal.jsonl").read_text().splitlines()]
    assert sorted(e["path"] for e in journal) == sorted(e["path"] for e in report["files"])  # keyed by released name
    assert all(set(e) <= plain and "source" not in e for e in journal)
    for p in files:  # images carry no metadata: no EXIF, no comments
        if p.suffix in (".jpg", ".gif"):
            with Image.open(p) as img:
                assert not img.getexif() and "comment" not in img.info and "exif" not in img.info


def test_without_the_key_the_release_cannot_be_continued_unsealed(sealed_release, deid_ckpt: Path, inputs, capsys):
    _, out = sealed_release
    rc = kssgan_main(["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(inputs),
                      "--output", str(out), "--rename", "hash"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "pass --seal-to" in err


KILL_AFTER_3RD_RECORD = """
import os, signal, sys
from kssgan.seal import sealed_log
append, calls = sealed_log.SealedWriter.append, []
def killing_append(self, entry):
    append(self, entry)
    calls.append(1)
    if len(calls) == 3:  # sealed, not yet published
        os.kill(os.getpid(), signal.SIGKILL)
sealed_log.SealedWriter.append = killing_append
from kssgan.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_9_mid_run_then_a_rerun_give_one_complete_mapping(
    deid_ckpt: Path, shared_datasets: Path, holder, tmp_path: Path, capsys
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    names = ["subject01.happy", "subject02.sad", "subject03.normal", "subject04.wink", "subject05.sleepy"]
    for name in names:
        shutil.copyfile(shared_datasets / "yale" / "yalefaces" / name, src / name)
    out = tmp_path / "out"
    args = ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src), "--output", str(out),
            "--seal-to", str(holder[1]), "--batch-size", "1", "--no-similarity"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_3RD_RECORD, *args], env=env, capture_output=True, timeout=300
    )
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    assert sorted(p.name for p in out.iterdir() if p.name in names) == names[:2]  # the 3rd was sealed, not published
    rc = kssgan_main(["reidentify", "--key", str(holder[0]), "--sealed", str(out / "reidentify.sealed")])
    err = capsys.readouterr().err
    assert rc == 2 and "interrupted" in err and err.count("\n") == 1
    assert kssgan_main(args) == 0  # the re-run
    records = [k for k, _, _ in scan((out / "reidentify.sealed").read_bytes())[0] if k == RECORD]
    assert len(records) == 6  # 3 before the kill, 3 after: the 3rd file was redone
    raw = read_sealed(out / "reidentify.sealed", load_private(holder[0]))
    assert [e["source"] for e in raw] == names[:3] + names[2:]
    mapping = read_mapping(holder[0], out / "reidentify.sealed")
    assert [(e["released"], e["source"]) for e in mapping] == [(n, n) for n in names]
    assert len({e["run"] for e in mapping}) == 2
    assert all(e["status"] == "deidentified" and len(e["faces"]) == 1 for e in mapping)


def test_sealed_and_fail_closed_withheld_is_sealed_and_the_journal_merges(
    deid_ckpt: Path, inputs: Path, holder, tmp_path: Path
) -> None:
    """Default policy under --seal-to: the face-less picture is withheld (exit 3) yet sealed; a re-run
    keeps the released file's record (journal keyed by the hashed name) and seals nothing twice."""
    src = tmp_path / "in"
    src.mkdir()
    shutil.copyfile(inputs / "yalefaces" / "subject01.happy", src / "subject01.happy")
    shutil.copyfile(inputs / SECRET / "wall.jpg", src / "wall.jpg")
    out = tmp_path / "out"
    args = ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src), "--output", str(out),
            "--seal-to", str(holder[1]), "--rename", "hash", "--no-similarity"]  # fmt: skip
    assert kssgan_main(args) == 3
    wall, happy = hashed_name(src / "wall.jpg", "wall.jpg"), hashed_name(src / "subject01.happy", "subject01.happy")
    assert not (out / wall).exists() and (out / happy).is_file()
    by_source = {e["source"]: e for e in read_mapping(holder[0], out / "reidentify.sealed")}
    assert by_source["wall.jpg"]["status"] == "withheld" and by_source["wall.jpg"]["released"] == wall
    assert by_source["wall.jpg"]["withheld_for"] == "no_face"
    assert kssgan_main(args) == 3  # the withheld picture is tried again, the released one is kept
    report = json.loads((out / "deidentify-report.json").read_text())
    rows = {e["path"]: e for e in report["files"]}
    assert rows[happy]["status"] == "deidentified" and rows[happy]["faces"] == 1  # the first run's record
    assert rows[wall]["status"] == "withheld" and report["summary"]["files"] == 2
    assert report["this_run"]["skipped_existing"] == 1 and report["this_run"]["withheld"] == 1
    assert "source" not in (out / "deidentify-journal.jsonl").read_text()
    assert len(read_sealed(out / "reidentify.sealed", load_private(holder[0]))) == 3  # happy once, wall twice


def test_sealing_a_folder_released_before_without_it_says_what_is_not_sealed(
    deid_ckpt: Path, inputs: Path, holder, tmp_path: Path, capsys
) -> None:
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    shutil.copyfile(inputs / "yalefaces" / "subject02.sad", src / "subject02.sad")
    args = ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src), "--output", str(out),
            "--no-similarity"]  # fmt: skip
    assert kssgan_main(args) == 0
    capsys.readouterr()
    assert kssgan_main([*args, "--seal-to", str(holder[1])]) == 0
    err = capsys.readouterr().err
    assert "1 released files existed before reidentify.sealed" in err
    report = json.loads((out / "deidentify-report.json").read_text())
    assert report["sealed"]["unsealed_existing"] == 1 and report["files"][0]["status"] == "deidentified"
