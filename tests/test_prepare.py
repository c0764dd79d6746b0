"""`kssgan prepare` on real faces: crops, manifest, embeddings, groups, resumability, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from kssgan.data import prepare as prep
from kssgan.data.audit import audit_groups
from kssgan.data.audit import main as audit_main
from kssgan.data.grouping import GroupAssignment, GroupingError
from kssgan.data.prepare import (
    LANDMARK_COLUMNS,
    PrepareConfigMismatch,
    identity_groups,
    load_recipe,
    prepare_dataset,
    processing,
    regroup,
)
from kssgan.data.readers import DatasetLayoutError, read_folder
from kssgan.data.readers.image_io import load_image

pytestmark = pytest.mark.shared_data
REPO = Path(__file__).resolve().parents[1]
YALE5 = {"max_identities": 5}
N_YALE5 = 54  # subjects 01-05: 11 conditions each, subject01.centerlight is missing


def _run(raw: Path, out: Path, **kw) -> dict:
    kw.setdefault("progress", False)
    kw.setdefault("quiet", True)
    return prepare_dataset(raw, out, **kw)


@pytest.fixture(scope="module")
def yale5(shared_datasets, tmp_path_factory):
    out = tmp_path_factory.mktemp("prep") / "yale5"
    summary = _run(shared_datasets / "yale", out, k=2, reader_options=YALE5, chunk_size=16)
    return out, summary


def test_prepared_layout_and_manifest(yale5, shared_datasets):
    out, summary = yale5
    expected = read_folder(shared_datasets / "yale", max_identities=5)
    man = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(man) == len(expected) == N_YALE5
    assert man["source"].tolist() == expected["source"].tolist()
    assert set(prep.CORE_COLUMNS) <= set(man.columns) and {"condition", "expression"} <= set(man.columns)
    ok = man[man["status"] == "ok"]
    assert len(ok) / len(man) >= 0.95  # measured: 164/164 on the whole of Yale
    assert (ok["reason"].str.contains("converted:grey")).all()  # Yale is greyscale
    for crop in ok["crop"].head(8):
        img = cv2.imread(str(out / crop), cv2.IMREAD_UNCHANGED)
        assert img.shape == (128, 128, 3)
    lms = ok[LANDMARK_COLUMNS].astype(float).to_numpy().reshape(-1, 5, 2)
    assert (lms[:, 0, 0] < lms[:, 1, 0]).all()  # right eye left of left eye in the image
    assert (ok["det_score"].astype(float) >= 0.6).all()
    assert summary["counts"]["ok"] == len(ok) and summary["counts"]["identities"] == 5
    info = json.loads((out / "prepare.json").read_text())
    assert info["settings"]["image_size"] == 128 and info["settings"]["detector"] == "yunet"
    assert info["attributes"]["expression"] == ["happy", "neutral", "sad", "sleepy", "surprised", "wink"]
    assert len(info["template"]) == 5 and info["timing"]["images_per_s"] > 1


def test_embeddings_match_the_ok_rows(yale5):
    out, _ = yale5
    man = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    with np.load(out / "embeddings.npz") as z:
        crops, emb = z["crop"].tolist(), z["embedding"]
    assert crops == man.loc[man["status"] == "ok", "crop"].tolist()
    assert emb.shape == (len(crops), 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
    assert not (out / ".parts").exists()


def test_groups_audit_clean_and_regroup(yale5, tmp_path):
    out, summary = yale5
    rep = audit_groups(out / "groups.json")
    assert rep.ok and rep.k == 2 and rep.num_identities == 5 and sorted(rep.group_sizes) == [2, 3]
    assert summary["groups"]["audit"] == "ok"
    assert (
        regroup(out, 2, out=tmp_path / "g2.json").identity_to_group
        == GroupAssignment.load(out / "groups.json").identity_to_group
    )
    for k in (2, 3, 5):
        a = regroup(out, k, out=tmp_path / f"groups_k{k}.json")
        assert audit_groups(tmp_path / f"groups_k{k}.json", out / "manifest.csv").ok
        assert min(a.group_sizes) >= k and max(a.group_sizes) <= 2 * k - 1
    assert regroup(out, 5, out=tmp_path / "k5.json").group_sizes == [5]
    with pytest.raises(GroupingError, match="k=6"):
        regroup(out, 6, out=tmp_path / "k6.json")
    assert audit_main([str(out / "groups.json"), str(tmp_path / "groups_k3.json")]) == 0
    groups = identity_groups(out)
    assert set(groups) == {f"subject0{i}" for i in range(1, 6)} and {how for _, how in groups.values()} == {"closed"}


def test_open_set_identity_goes_to_the_nearest_centroid(yale5, tmp_path):
    out, _ = yale5
    full = GroupAssignment.load(out / "groups.json")
    partial = GroupAssignment(**{**vars(full), "identity_to_group": dict(full.identity_to_group)})
    del partial.identity_to_group["subject05"]  # pretend subject05 was never seen
    partial.save(tmp_path / "partial.json")
    got = identity_groups(out, tmp_path / "partial.json")
    group, how = got["subject05"]
    assert how == "nearest" and got["subject01"] == (full.identity_to_group["subject01"], "closed")
    man = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    with np.load(out / "embeddings.npz") as z:
        lookup = dict(zip(z["crop"].tolist(), z["embedding"], strict=True))
    mean = np.mean([lookup[c] for c in man.loc[man["identity"] == "subject05", "crop"]], axis=0)
    cent = full.centroids / np.linalg.norm(full.centroids, axis=1, keepdims=True)
    assert group == int(np.argmax(cent @ (mean / np.linalg.norm(mean))))


def test_open_set_fraction_holds_whole_people_out_of_training_and_groups(shared_datasets, tmp_path):
    """--open-set-fraction: a seeded fifth of the people become strangers (every photo, split
    ``stranger``), never join a group, and the evaluation's closed set leaves them out."""
    from kssgan.evaluate.release import load_release, stranger_photos

    out = tmp_path / "yale-open"
    _run(shared_datasets / "yale", out, k=3, reader_options={"open_set_fraction": 0.2}, chunk_size=32)
    man = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    ok = man[man["status"] == "ok"]
    strangers = set(ok.loc[ok["split"] == "stranger", "identity"])
    assert len(strangers) == 3  # round(15 people x 0.2)
    assert all(set(ok.loc[ok["identity"] == s, "split"]) == {"stranger"} for s in strangers)
    groups = GroupAssignment.load(out / "groups.json")
    assert not strangers & set(groups.identity_to_group) and len(groups.identity_to_group) == 12
    assert set(stranger_photos(out)["identity"]) == strangers
    assert not strangers & set(load_release(out, 32).identities)
    again = tmp_path / "yale-open-2"  # the same people, whatever else runs
    _run(shared_datasets / "yale", again, k=3, reader_options={"open_set_fraction": 0.2}, chunk_size=32)
    assert set(stranger_photos(again)["identity"]) == strangers
    with pytest.raises(PrepareConfigMismatch, match="open_set_fraction"):  # a resume cannot change who is held out
        _run(shared_datasets / "yale", again, k=3, reader_options={"open_set_fraction": 0.4})


def test_rerun_processes_nothing(yale5, shared_datasets):
    out, _ = yale5
    man_before = (out / "manifest.csv").read_text()
    crop = next((out / "crops").rglob("*.png"))
    mtime = crop.stat().st_mtime_ns
    again = _run(shared_datasets / "yale", out, k=2, reader_options=YALE5)
    assert again["counts"]["processed_this_run"] == 0 and again["counts"]["resumed"] == N_YALE5
    assert (out / "manifest.csv").read_text() == man_before
    assert crop.stat().st_mtime_ns == mtime
    assert audit_groups(out).ok


def test_killed_run_resumes_where_it_stopped(yale5, shared_datasets, tmp_path, monkeypatch):
    ref_out, _ = yale5
    out = tmp_path / "killed"
    real = processing.process_chunk
    calls = {"n": 0}

    def dies_on_third_chunk(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # what a Ctrl-C / kill between chunks looks like to the loop
        return real(*args, **kwargs)

    monkeypatch.setattr(processing, "process_chunk", dies_on_third_chunk)
    with pytest.raises(KeyboardInterrupt):  # in this process (workers=1), where the patch applies
        _run(shared_datasets / "yale", out, k=2, reader_options=YALE5, chunk_size=8, workers=1)
    monkeypatch.setattr(processing, "process_chunk", real)
    partial = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(partial) == 16 and len(list((out / ".parts").glob("emb_*.npz"))) == 2
    with open(out / "manifest.csv", "a") as fh:  # and a torn half line from a kill mid-write
        fh.write("yalefaces/subject02.happy,crops/subj")
    resumed = _run(shared_datasets / "yale", out, k=2, reader_options=YALE5, chunk_size=8)
    assert resumed["counts"]["resumed"] == 16 and resumed["counts"]["processed_this_run"] == N_YALE5 - 16
    ref = pd.read_csv(ref_out / "manifest.csv", dtype=str, keep_default_na=False)
    got = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    pd.testing.assert_frame_equal(got, ref)
    with np.load(out / "embeddings.npz") as a, np.load(ref_out / "embeddings.npz") as b:
        assert a["crop"].tolist() == b["crop"].tolist()
        np.testing.assert_allclose(a["embedding"], b["embedding"], atol=1e-6)
    assert json.loads((out / "groups.json").read_text()) == json.loads((ref_out / "groups.json").read_text())


def test_ok_row_without_embedding_is_redone(yale5, tmp_path, shared_datasets):
    ref_out, _ = yale5
    out = tmp_path / "lost"
    out.mkdir()
    # the manifest says two rows are done, but their embeddings never reached disk
    ref = pd.read_csv(ref_out / "manifest.csv", dtype=str, keep_default_na=False)
    ref.head(2).to_csv(out / "manifest.csv", index=False)
    s = _run(shared_datasets / "yale", out, k=1, reader_options=YALE5, limit=6)
    assert s["counts"]["resumed"] == 0 and s["counts"]["processed_this_run"] == 6 and s["counts"]["ok"] == 6
    with np.load(out / "embeddings.npz") as z:
        assert z["crop"].tolist()[:2] == ref["crop"].head(2).tolist()
    # a re-run over a smaller selection is another dataset: refused, nothing touched
    before = (out / "manifest.csv").read_bytes()
    with pytest.raises(PrepareConfigMismatch, match="--limit 6, not 3"):
        _run(shared_datasets / "yale", out, k=1, reader_options=YALE5, limit=3)
    assert (out / "manifest.csv").read_bytes() == before and (out / "groups.json").is_file()
    # unless asked to start over
    s = _run(shared_datasets / "yale", out, k=1, reader_options=YALE5, limit=3, overwrite=True)
    assert s["counts"]["sources"] == 3 and len(np.load(out / "embeddings.npz")["crop"]) == 3


def _write_bad_inputs(root: Path, shared: Path) -> None:
    yale = shared / "yale" / "yalefaces"
    faces = {f"p{i}": load_image(yale / f"subject0{i}.normal")[0] for i in (2, 3, 4)}
    for person in faces:
        (root / person).mkdir(parents=True)
        for j, cond in enumerate(("happy", "sad")):
            cv2.imwrite(str(root / person / f"{j}.png"), load_image(yale / f"subject0{person[1]}.{cond}")[0])
    bad = root / "p2"
    face = faces["p2"]
    ok_jpeg = cv2.imencode(".jpg", face)[1].tobytes()
    (bad / "truncated.jpg").write_bytes(ok_jpeg[: len(ok_jpeg) // 2])
    (bad / "text.jpg").write_text("this is not a JPEG\n")
    (bad / "empty.png").write_bytes(b"")
    from PIL import Image

    Image.fromarray(face[:, :, ::-1]).convert("CMYK").save(bad / "cmyk.jpg", quality=95)
    cv2.imwrite(str(bad / "sixteen.png"), face[:, :, 0].astype(np.uint16) * 257)
    cv2.imwrite(str(bad / "blank.png"), np.full((240, 320, 3), 128, np.uint8))
    cv2.imwrite(str(bad / "two_faces.png"), np.hstack([face, faces["p3"]]))
    small = cv2.resize(face, None, fx=0.15, fy=0.15, interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[200 : 200 + small.shape[0], 300 : 300 + small.shape[1]] = small
    cv2.imwrite(str(bad / "tiny.png"), canvas)
    rgba = cv2.cvtColor(face, cv2.COLOR_BGR2BGRA)
    cv2.imwrite(str(bad / "alpha.png"), rgba)


def test_bad_inputs_are_recorded_with_reasons(shared_datasets, tmp_path):
    raw = tmp_path / "raw"
    _write_bad_inputs(raw, shared_datasets)
    out = tmp_path / "out"
    s = _run(raw, out, k=2)
    man = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False).set_index("source")

    def row(name: str) -> pd.Series:
        return man.loc[f"p2/{name}"]

    assert (row("truncated.jpg")["status"], row("truncated.jpg")["reason"]) == ("skipped", "truncated")
    assert (row("text.jpg")["status"], row("text.jpg")["reason"]) == ("skipped", "not_an_image")
    assert row("empty.png")["reason"] == "empty_file"
    assert (row("blank.png")["status"], row("blank.png")["reason"]) == ("skipped", "no_face")
    assert row("tiny.png")["status"] == "skipped" and row("tiny.png")["reason"].startswith("tiny_face:")
    assert int(row("tiny.png")["reason"].split(":")[1].split("px")[0]) < 24
    for name, note in (
        ("cmyk.jpg", "converted:cmyk"),
        ("sixteen.png", "converted:16bit"),
        ("alpha.png", "converted:rgba"),
    ):
        assert row(name)["status"] == "ok" and note in row(name)["reason"], name
    two = row("two_faces.png")
    assert two["status"] == "ok" and "several_faces:2" in two["reason"] and two["n_faces"] == "2"
    assert s["counts"]["skipped_by_reason"] == {
        "empty_file": 1,
        "no_face": 1,
        "not_an_image": 1,
        "tiny_face": 1,
        "truncated": 1,
    }
    assert s["counts"]["ok"] == 6 + 4 and s["counts"]["notes_on_ok"]["several_faces"] == 1
    for name in ("cmyk.jpg", "sixteen.png"):
        crop = cv2.imread(str(out / row(name)["crop"]))
        assert crop.shape == (128, 128, 3) and crop.std() > 20
    assert audit_groups(out).ok


def test_min_face_and_fewer_identities_than_k(shared_datasets, tmp_path):
    out = tmp_path / "k10"
    with pytest.raises(GroupingError, match="k=10 is larger than the number of identities"):
        _run(shared_datasets / "yale", out, k=10, reader_options={"max_identities": 3}, limit=12)
    info = json.loads((out / "prepare.json").read_text())
    assert "error" in info["groups"] and not (out / "groups.json").exists()
    assert (out / "manifest.csv").is_file() and (out / "embeddings.npz").is_file()
    assert regroup(out, 2).num_groups == 1  # the work is kept: regroup with a smaller k
    with pytest.raises(GroupingError, match="no usable face"):
        _run(shared_datasets / "yale", tmp_path / "big", k=1, min_face=500, limit=4)
    info = json.loads((tmp_path / "big" / "prepare.json").read_text())
    assert info["counts"]["skipped_by_reason"] == {"tiny_face": 4} and info["counts"]["ok"] == 0


def test_changed_settings_need_a_new_folder(yale5, shared_datasets):
    out, _ = yale5
    with pytest.raises(PrepareConfigMismatch, match="image_size"):
        _run(shared_datasets / "yale", out, k=2, image_size=64, reader_options=YALE5)


def test_wrong_layout_fails_before_writing(tmp_path, capsys):
    raw = tmp_path / "flat"
    raw.mkdir()
    for i in range(3):
        cv2.imwrite(str(raw / f"{i}.jpg"), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(DatasetLayoutError, match="expected either <root>/<identity>/<image files>"):
        _run(raw, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert prep.main(["--dataset", "folder", "--data-dir", str(raw), "--out", str(tmp_path / "o2")]) == 2
    assert "folder layout not recognised" in capsys.readouterr().err


def test_cli_with_recipe_and_audit(shared_datasets, tmp_path, monkeypatch):
    monkeypatch.setenv("KSSGAN_SHARED_DATA", str(shared_datasets))
    recipe = load_recipe(REPO / "data_modules" / "yale.yaml")
    assert recipe["data_dir"] == f"{shared_datasets}/yale" and recipe["labels"]["onehot"] == ["expression"]
    out = tmp_path / "cli"
    argv = ["--config", str(REPO / "data_modules" / "yale.yaml"), "--out", str(out), "--max-identities", "3"]
    assert prep.main([*argv, "--k", "3", "--no-progress", "--image-size", "64"]) == 0
    info = json.loads((out / "prepare.json").read_text())
    assert info["name"] == "yale" and info["labels"]["onehot"] == ["expression"]
    assert info["settings"]["image_size"] == 64 and info["groups"]["group_sizes"] == [3]
    assert cv2.imread(str(next((out / "crops").rglob("*.png")))).shape == (64, 64, 3)
    assert audit_main([str(out)]) == 0
    assert prep.main(["--regroup", str(out), "--k", "4"]) == 1  # 3 identities < 4
    assert prep.main(["--regroup", str(out), "--k", "1", "--groups-out", "g1.json"]) == 0
    assert audit_groups(out / "g1.json").group_sizes == [1, 1, 1]


def test_bench_prepare(shared_datasets, tmp_path):
    """The prepare benchmark's runner (one real `python -m kssgan.data.prepare` per configuration),
    its CelebA projection and its MDAV check, on small inputs."""
    import sys

    from kssgan.data.prepare.benchmark import _run, bench_grouping, project_celeba

    out = tmp_path / "bench"
    argv = [sys.executable, "-m", "kssgan.data.prepare", "--data-dir", str(shared_datasets / "yale"),
            "--prepared-dir", str(out), "--k", "1", "--limit", "6", "--workers", "2", "--no-progress"]  # fmt: skip
    r = _run(argv, out)
    assert r["photos"] == 6 and r["ok"] == 6 and r["photos_per_s"] > 0.5
    assert set(r["stage_seconds"]) == {"load", "detect", "align", "embed", "write"}
    assert len(r["worker_peak_rss_mb"]) >= 1 and r["driver_peak_rss_mb"] > 50
    fixture = {
        "runs": [{"workers": 2, "fixture_photos": 10_000, "photos_per_s": 100.0, "driver_cpu_ms_per_photo": 1.0}]
    }
    p = project_celeba(fixture)
    assert p["photos_per_s_per_core"] == 50.0 and p["writer_cap_photos_per_s"] == 1000.0
    assert p["celeba_202599_photos_minutes_on_2_cores"] == round(202_599 / 100 / 60, 1)
    assert p["celeba_202599_photos_minutes_on_64_cores"] == round(202_599 / 1000 / 60, 1)  # the writer's cap
    g = bench_grouping(identities=400, k=3)
    assert g["same_groups_as_reference"] and g["groups"] == 133


def test_another_dataset_in_the_same_folder_is_refused_in_one_line(yale5, shared_datasets, tmp_path, capsys):
    out, _ = yale5
    manifest = (out / "manifest.csv").read_bytes()
    other_root = tmp_path / "other"
    (other_root / "p1").mkdir(parents=True)
    cv2.imwrite(
        str(other_root / "p1" / "a.png"), load_image(shared_datasets / "yale" / "yalefaces" / "subject01.happy")[0]
    )
    cases = [
        (["--data-dir", str(other_root)], "holds a different dataset (raw root"),
        (["--data-dir", str(shared_datasets / "yale"), "--max-identities", "4"], "max_identities=5, not 4"),
        (["--data-dir", str(shared_datasets / "yale"), "--max-identities", "5", "--limit", "5"], "--limit None, not 5"),
    ]
    for extra, message in cases:
        rc = prep.main([*extra, "--out", str(out), "--k", "2", "--no-progress"])
        err = capsys.readouterr().err.strip()
        assert rc == 2 and len(err.splitlines()) == 1 and message in err, err
    assert (out / "manifest.csv").read_bytes() == manifest and (out / "groups.json").is_file()


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../outside.png,p9", "lies outside the data root"),
        ("{abs},p9", "lies outside the data root"),
        ("p1/0.png,p2", "under two identities ('p1' and 'p2')"),
        ("./p1/../p1/0.png,p2", "under two identities"),
    ],
)
def test_labels_csv_cannot_escape_the_root_or_count_a_photo_twice(shared_datasets, tmp_path, capsys, row, message):
    face = load_image(shared_datasets / "yale" / "yalefaces" / "subject01.happy")[0]
    root = tmp_path / "raw"
    (root / "p1").mkdir(parents=True)
    cv2.imwrite(str(root / "p1" / "0.png"), face)
    cv2.imwrite(str(tmp_path / "outside.png"), face)
    row = row.format(abs=tmp_path / "outside.png")
    (root / "labels.csv").write_text(f"path,identity\np1/0.png,p1\n{row}\n")
    rc = prep.main(["--data-dir", str(root), "--out", str(tmp_path / "out"), "--k", "1", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out" / "manifest.csv").exists()
    if "outside" in message:  # an explicit opt-in reads it
        table = read_folder(root, allow_outside_root=True)
        assert len(table) == 2


def test_a_file_name_that_is_not_utf8_is_recorded_and_the_run_goes_on(shared_datasets, tmp_path):
    import os

    root = tmp_path / "raw"
    for person, name in (("p1", "subject01.happy"), ("p2", "subject02.happy")):
        (root / person).mkdir(parents=True)
        cv2.imwrite(str(root / person / "ok.png"), load_image(shared_datasets / "yale" / "yalefaces" / name)[0])
    odd = os.fsdecode(b"caf\xe9-latin1.png")  # Latin-1 bytes: not UTF-8
    (root / "p1" / odd).write_bytes((root / "p1" / "ok.png").read_bytes())
    s = _run(root, tmp_path / "out", k=1)
    assert s["counts"]["ok"] == 2 and s["counts"]["skipped_by_reason"] == {"non_utf8_name": 1}
    manifest = pd.read_csv(tmp_path / "out" / "manifest.csv", dtype=str, keep_default_na=False)
    row = manifest[manifest["source"] == "p1/caf\\xe9-latin1.png"]
    assert row["reason"].tolist() == ["non_utf8_name"]
    again = _run(root, tmp_path / "out", k=1)
    assert again["counts"]["processed_this_run"] == 0 and again["counts"]["ok"] == 2
