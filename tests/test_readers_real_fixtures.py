"""RaFD- and CelebA-layout fixtures made of real faces (Yale, ORL) renamed into those layouts:
the real parsers read them exactly and `prepare` turns them into clean prepared datasets."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from kssgan.data.audit import audit_groups
from kssgan.data.prepare import prepare_dataset
from kssgan.data.readers import read_celeba, read_rafd
from kssgan.data.readers.image_io import load_image

pytestmark = pytest.mark.shared_data

YALE_TO_RAFD = {"happy": "happy", "sad": "sad", "surprised": "surprised", "normal": "neutral"}


def _rafd_from_yale(shared: Path, root: Path) -> pd.DataFrame:
    rows = []
    for subj in range(1, 6):
        gender = "female" if subj % 2 else "male"
        for cond, expr in YALE_TO_RAFD.items():
            img = load_image(shared / "yale" / "yalefaces" / f"subject{subj:02d}.{cond}")[0]
            name = f"Rafd090_{subj:02d}_Caucasian_{gender}_{expr}_frontal.jpg"
            cv2.imwrite(str(root / name), img)
            rows.append({"source": name, "identity": f"{subj:02d}", "gender": gender, "expression": expr})
        # a profile shot (angle 045) that the default filter must drop
        cv2.imwrite(str(root / f"Rafd045_{subj:02d}_Caucasian_{gender}_neutral_left.jpg"), img)
    cv2.imwrite(str(root / "Rafd090_notes.jpg"), img)  # does not follow the convention
    return pd.DataFrame(rows).sort_values(["identity", "source"]).reset_index(drop=True)


def test_rafd_fixture_parses_exactly_and_prepares(shared_datasets, tmp_path):
    raw = tmp_path / "RaFD"
    raw.mkdir()
    truth = _rafd_from_yale(shared_datasets, raw)
    df = read_rafd(raw)
    assert len(df) == 20
    got = df[["source", "identity", "gender", "expression"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(got, truth)
    assert (df["angle"] == 90).all() and (df["gaze"] == "frontal").all() and (df["ethnicity"] == "caucasian").all()
    assert df["male"].tolist() == [int(g == "male") for g in truth["gender"]]
    assert df.attrs["skipped"] == [("Rafd090_notes.jpg", "unparsed_name")]

    out = tmp_path / "prepared"
    s = prepare_dataset(raw, out, reader="rafd", k=2, image_size=64, progress=False, quiet=True)
    assert s["counts"]["ok"] == 20 and s["counts"]["skipped_by_reason"] == {"unparsed_name": 1}
    man = pd.read_csv(out / "manifest.csv", dtype=str, keep_default_na=False)
    assert man.loc[man["source"] == "Rafd090_notes.jpg", "status"].item() == "skipped"
    assert s["attributes"]["expression"] == ["happy", "neutral", "sad", "surprised"]
    assert audit_groups(out).ok

    # the lead's reader of the prepared folder builds the labels from it (contracts 1-3)
    from kssgan.data.prepared import PreparedDataset

    ds = PreparedDataset.open(out)
    spec = ds.label_spec(["expression"], ["male"])
    assert spec.dim == ds.groups.num_groups + 4 + 1
    records = ds.records(spec)
    vecs = spec.encode_many(records)
    assert [spec.decode(v) for v in vecs] == [
        {**r, "male": int(r["male"])} for r in records
    ]  # manifest stores 0/1 as strings; the round trip yields ints


def _celeba_from_orl(shared: Path, root: Path) -> pd.DataFrame:
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True)
    rows = []
    n = 0
    for person in range(1, 9):
        celeb_id = 1000 + 7 * person
        part = 0 if person <= 6 else person - 6  # persons 7 -> val, 8 -> test: identity-disjoint
        for shot in (1, 4, 7):
            n += 1
            name = f"{n:06d}.jpg"
            img = load_image(shared / "orl" / "orl_faces" / f"s{person}" / f"{shot}.pgm")[0]
            cv2.imwrite(str(img_dir / name), img)
            rows.append((name, celeb_id, part, 1 if person % 2 else -1, 1 if person < 5 else -1))
    (root / "identity_CelebA.txt").write_text("".join(f"{r[0]} {r[1]}\n" for r in rows))
    lines = [str(len(rows)), "Male Young"] + [f"{r[0]} {r[3]:2d} {r[4]:2d}" for r in rows]
    (root / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (root / "list_eval_partition.txt").write_text("".join(f"{r[0]} {r[2]}\n" for r in rows))
    return pd.DataFrame(rows, columns=["image", "identity", "partition", "Male", "Young"])


def test_celeba_fixture_parses_exactly_and_prepares(shared_datasets, tmp_path):
    raw = tmp_path / "celeba"
    truth = _celeba_from_orl(shared_datasets, raw)
    df = read_celeba(raw)
    assert len(df) == 24 and list(df.columns) == ["source", "identity", "split", "Male", "Young"]
    expect = pd.DataFrame(
        {
            "source": "img_align_celeba/" + truth["image"],
            "identity": truth["identity"].astype(str),
            "split": truth["partition"].map({0: "train", 1: "val", 2: "test"}),
            "Male": (truth["Male"] > 0).astype(int),
            "Young": (truth["Young"] > 0).astype(int),
        }
    ).sort_values(["identity", "source"])
    pd.testing.assert_frame_equal(df.reset_index(drop=True), expect.reset_index(drop=True), check_dtype=False)
    by_split = df.groupby("split")["identity"].apply(set)
    assert by_split["val"] == {"1049"} and by_split["test"] == {"1056"} and len(by_split["train"]) == 6

    out = tmp_path / "prepared"
    s = prepare_dataset(raw, out, reader="celeba", k=3, image_size=64, progress=False, quiet=True)
    assert s["counts"]["ok"] == 24 and s["counts"]["identities"] == 8
    rep = audit_groups(out)
    # every training identity is grouped (sizes 3..5); the val/test people are open-set, in no group
    assert rep.ok and rep.num_identities == 6 and min(rep.group_sizes) >= 3
    grouped = set(json.loads((out / "groups.json").read_text())["identity_to_group"])
    assert grouped == by_split["train"] and not grouped & {"1049", "1056"}
    crop = cv2.imread(str(out / pd.read_csv(out / "manifest.csv")["crop"].iloc[0]))
    assert crop.shape == (64, 64, 3) and float(np.std(crop)) > 10
