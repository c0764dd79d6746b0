"""Sealed re-identification without a model: keys, the append-only sealed file, tampering, names."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from kssgan.cli import main as kssgan_main
from kssgan.seal import SealError
from kssgan.seal.keys import PASSPHRASE_ENV, generate_keypair, load_private, load_public
from kssgan.seal.release import hashed_name
from kssgan.seal.sealed_log import HEADER_SIZE, SealedWriter, decode_sealed, merge_entries, read_sealed, scan

SOURCES = ["ward3/patient-ann-smith.jpg", "ward3/patient-bob-jones.jpg", "ward5/patient-cy-wu.png"]


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    return generate_keypair(tmp_path / "keys")


def _entry(i: int, src: str, run: str = "a") -> dict:
    return {"released": f"out{i}.jpg", "source": src, "identity": src.split("/")[1][8:-4], "run": run,
            "faces": [{"box": [10.0 + i, 20.0, 30.0, 40.0], "group": i % 2}]}  # fmt: skip


def _seal(path: Path, pub: Path, entries: list[dict], close: bool = True) -> None:
    writer = SealedWriter(path, load_public(pub), {"rename": "keep"})
    for e in entries:
        writer.append(e)
    if close:
        writer.close()
    else:
        writer.fh.close()  # like a kill: no end record


@pytest.fixture
def sealed(tmp_path: Path, keys: tuple[Path, Path]) -> Path:
    path = tmp_path / "release" / "reidentify.sealed"
    _seal(path, keys[1], [_entry(i, s) for i, s in enumerate(SOURCES)])
    return path


def _reid(capsys, *args: str) -> tuple[int, str, str]:
    rc = kssgan_main(["reidentify", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_keygen_writes_a_private_key_only_its_owner_reads_and_never_overwrites_it(tmp_path: Path, capsys) -> None:
    assert kssgan_main(["keygen", "--out", str(tmp_path / "k")]) == 0
    key, pub = tmp_path / "k" / "holder.key", tmp_path / "k" / "holder.pub"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert b"PRIVATE KEY" in key.read_bytes() and b"ENCRYPTED" not in key.read_bytes()
    assert b"PUBLIC KEY" in pub.read_bytes() and b"PRIVATE" not in pub.read_bytes()
    before = key.read_bytes()
    capsys.readouterr()
    assert kssgan_main(["keygen", "--out", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "already exists" in err
    assert key.read_bytes() == before


def test_a_passphrase_protects_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.setenv(PASSPHRASE_ENV, "correct horse")
    assert kssgan_main(["keygen", "--out", str(tmp_path / "k"), "--passphrase"]) == 0
    key = tmp_path / "k" / "holder.key"
    assert b"ENCRYPTED" in key.read_bytes()
    path = tmp_path / "r" / "reidentify.sealed"
    _seal(path, tmp_path / "k" / "holder.pub", [_entry(0, SOURCES[0])])
    capsys.readouterr()
    rc, out, _ = _reid(capsys, "--key", str(key), "--sealed", str(path))
    assert rc == 0 and json.loads(out)[0]["source"] == SOURCES[0]
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong horse")
    rc, out, err = _reid(capsys, "--key", str(key), "--sealed", str(path))
    assert rc == 2 and out == "" and err.count("\n") == 1 and "wrong passphrase" in err


def test_round_trip_merges_runs_latest_entry_wins(tmp_path: Path, keys: tuple[Path, Path], capsys) -> None:
    path = tmp_path / "reidentify.sealed"
    _seal(path, keys[1], [_entry(0, SOURCES[0]), _entry(1, SOURCES[1])], close=False)  # killed
    _seal(path, keys[1], [_entry(1, SOURCES[1], run="b"), _entry(2, SOURCES[2], run="b")])  # the re-run
    raw = read_sealed(path, load_private(keys[0]))
    assert [e["released"] for e in raw] == ["out0.jpg", "out1.jpg", "out1.jpg", "out2.jpg"]
    merged = merge_entries(raw)
    assert [(e["released"], e["source"], e["run"]) for e in merged] == [
        ("out0.jpg", SOURCES[0], "a"), ("out1.jpg", SOURCES[1], "b"), ("out2.jpg", SOURCES[2], "b")
    ]  # fmt: skip
    rc, out, _ = _reid(capsys, "--key", str(keys[0]), "--sealed", str(path), "--file", "out1.jpg")
    assert rc == 0 and json.loads(out)["identity"] == "bob-jones" and json.loads(out)["faces"][0]["box"][0] == 11.0
    rc, out, _ = _reid(capsys, "--key", str(keys[0]), "--sealed", str(path), "--format", "csv")
    lines = out.splitlines()
    assert rc == 0 and len(lines) == 4 and lines[0].startswith("released,source,input,identity")
    assert lines[3].startswith("out2.jpg,ward5/patient-cy-wu.png,,cy-wu,")
    rc, _, err = _reid(capsys, "--key", str(keys[0]), "--sealed", str(path), "--file", "nope.jpg")
    assert rc == 2 and err.count("\n") == 1 and "no entry for nope.jpg" in err


def test_the_sealed_bytes_name_no_source_and_no_identity(sealed: Path) -> None:
    data = sealed.read_bytes()
    for src in SOURCES:
        for word in (src, Path(src).name, "patient", "smith", "ward3", "bob"):
            assert word.encode() not in data and word.encode("utf-16-le") not in data
    assert b"out0.jpg" not in data  # not even the released names
    _, end = scan(data)
    sizes = {b - a for _, a, b in scan(data)[0][1:-1]}
    assert end == len(data) and sizes == {12 + 512 + 16}  # padded: the record sizes say nothing either


def test_a_wrong_key_is_one_line_exit_2(tmp_path: Path, sealed: Path, capsys) -> None:
    other, _ = generate_keypair(tmp_path / "other")
    rc, out, err = _reid(capsys, "--key", str(other), "--sealed", str(sealed))
    assert rc == 2 and out == "" and err.count("\n") == 1 and "not sealed to this holder key" in err


def test_every_flipped_byte_is_detected(sealed: Path, keys: tuple[Path, Path], tmp_path: Path, capsys) -> None:
    private = load_private(keys[0])
    data = sealed.read_bytes()
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            with pytest.raises(SealError):
                decode_sealed(data[:i] + bytes([data[i] ^ bit]) + data[i + 1 :], private)
    bad = tmp_path / "bad.sealed"
    bad.write_bytes(data[:200] + bytes([data[200] ^ 0x10]) + data[201:])
    rc, out, err = _reid(capsys, "--key", str(keys[0]), "--sealed", str(bad))
    assert rc == 2 and out == "" and err.count("\n") == 1 and "damaged or was altered" in err


def test_any_truncation_is_detected_and_partial_reads_what_is_whole(
    sealed: Path, keys: tuple[Path, Path], tmp_path: Path, capsys
) -> None:
    private = load_private(keys[0])
    data = sealed.read_bytes()
    bad = tmp_path / "cut.sealed"
    records, _ = scan(data)
    boundaries = {HEADER_SIZE} | {b for _, _, b in records}
    for n in sorted(boundaries | set(range(0, len(data), 37))):
        if n == len(data):
            continue
        with pytest.raises(SealError):
            decode_sealed(data[:n], private)
    bad.write_bytes(data[: records[2][2] + 100])  # two whole entries, then half of the third
    assert [e["source"] for e in read_sealed(bad, private, allow_partial=True)] == SOURCES[:2]
    rc, out, err = _reid(capsys, "--key", str(keys[0]), "--sealed", str(bad))
    assert rc == 2 and out == "" and err.count("\n") == 1 and "truncated" in err


def test_a_rerun_cuts_a_half_written_record_and_completes_the_file(keys: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "reidentify.sealed"
    _seal(path, keys[1], [_entry(0, SOURCES[0]), _entry(1, SOURCES[1])], close=False)
    data = path.read_bytes()
    path.write_bytes(data[:-300])  # killed inside the second record's write
    _seal(path, keys[1], [_entry(1, SOURCES[1], "b"), _entry(2, SOURCES[2], "b")])
    merged = merge_entries(read_sealed(path, load_private(keys[0])))
    assert [(e["source"], e["run"]) for e in merged] == [(SOURCES[0], "a"), (SOURCES[1], "b"), (SOURCES[2], "b")]


def test_a_release_cannot_be_continued_with_another_key_or_naming(keys: tuple[Path, Path], tmp_path: Path) -> None:
    path = tmp_path / "reidentify.sealed"
    _seal(path, keys[1], [_entry(0, SOURCES[0])])
    _, other_pub = generate_keypair(tmp_path / "other")
    with pytest.raises(SealError, match="sealed to another holder key"):
        SealedWriter(path, load_public(other_pub), {"rename": "keep"})
    with pytest.raises(SealError, match="rename='keep'"):
        SealedWriter(path, load_public(keys[1]), {"rename": "hash"}, must_match=("rename",))
    assert len(read_sealed(path, load_private(keys[0]))) == 1  # neither attempt touched the file


def test_hashed_names_are_stable_keyed_by_the_file_and_say_nothing(tmp_path: Path) -> None:
    (tmp_path / "subject01.happy").write_bytes(b"GIF89a" + b"\0" * 50)
    (tmp_path / "patient-ann.JPG").write_bytes(b"\xff\xd8\xff\xe0" + b"\1" * 50)
    (tmp_path / "patient-bob.JPG").write_bytes(b"\xff\xd8\xff\xe0" + b"\2" * 50)
    a = hashed_name(tmp_path / "subject01.happy", "subject01.happy")
    b = hashed_name(tmp_path / "patient-ann.JPG", "patient-ann.JPG")
    c = hashed_name(tmp_path / "patient-bob.JPG", "patient-ann.JPG")  # same path, other bytes
    assert a.endswith(".gif") and b.endswith(".jpg") and len(a) == 36 and len(b) == 36
    assert b == hashed_name(tmp_path / "patient-ann.JPG", "patient-ann.JPG") and b != c
    assert b != hashed_name(tmp_path / "patient-ann.JPG", "copy/patient-ann.JPG")
    assert all(w not in n for n in (a, b, c) for w in ("subject", "happy", "patient", "ann"))
    assert hashed_name(tmp_path / "missing.png", "missing.png") != hashed_name(tmp_path / "missing.png", "missing.png")


@pytest.mark.parametrize("which", ["missing", "private"])
def test_a_bad_seal_to_fails_before_anything_is_loaded(tmp_path: Path, keys: tuple[Path, Path], which, capsys) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"x")
    pub = tmp_path / "nope.pub" if which == "missing" else keys[0]
    rc = kssgan_main(["deidentify", "--ckpt", str(tmp_path / "no.ckpt"), "--input", str(tmp_path / "in"),
                      "--output", str(tmp_path / "out"), "--seal-to", str(pub)])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1
    assert ("not found" if which == "missing" else "not a PEM public key") in err
    assert not (tmp_path / "out").exists()


def test_continuing_a_release_with_another_key_or_naming_fails_before_anything_is_loaded(
    tmp_path: Path, keys: tuple[Path, Path], capsys
) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.png").write_bytes(b"x")
    out = tmp_path / "out"
    _seal(out / "reidentify.sealed", keys[1], [_entry(0, SOURCES[0])])
    before = (out / "reidentify.sealed").read_bytes()
    _, other_pub = generate_keypair(tmp_path / "other")
    base = ["deidentify", "--ckpt", str(tmp_path / "no.ckpt"), "--input", str(tmp_path / "in"), "--output", str(out)]
    for extra, message in [
        (["--seal-to", str(other_pub)], "sealed to another holder key"),
        (["--seal-to", str(keys[1]), "--rename", "hash"], "started with rename='keep'"),
        ([], "pass --seal-to"),
    ]:
        assert kssgan_main([*base, *extra]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err
    assert (out / "reidentify.sealed").read_bytes() == before
    assert kssgan_main([*base, "--seal-to", str(keys[1])]) == 2  # the right key gets as far as the checkpoint
    assert "checkpoint" in capsys.readouterr().err and (out / "reidentify.sealed").read_bytes() == before
