"""Dataset readers on fixture trees (RaFD names, CelebA txt files, generic folders) and wrong layouts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kssgan.data.readers import (
    DatasetLayoutError,
    assign_splits,
    get_reader,
    is_image_file,
    parse_rafd_name,
    read_celeba,
    read_folder,
    read_rafd,
)

PNG_1PX = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010800000000"
    "3a7e9b550000000a4944415478da63f80f00010101001b9c4e6a0000000049454e44ae426082"
)


def _touch(path: Path, data: bytes = PNG_1PX) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# -- RaFD -----------------------------------------------------------------------------------------
def test_parse_rafd_name():
    assert parse_rafd_name("Rafd090_01_Caucasian_female_angry_frontal.jpg") == {
        "angle": 90,
        "subject": 1,
        "ethnicity": "caucasian",
        "gender": "female",
        "male": 0,
        "expression": "angry",
        "gaze": "frontal",
    }
    got = parse_rafd_name("Rafd045_67_Moroccan_male_contemptuous_left.JPG")
    assert got["angle"] == 45 and got["subject"] == 67 and got["male"] == 1 and got["gaze"] == "left"
    assert parse_rafd_name("Rafd090_01_Caucasian_female_bored_frontal.jpg") is None  # not one of the 8
    assert parse_rafd_name("IMG_0001.jpg") is None


def _rafd_tree(root: Path) -> list[str]:
    names = []
    for subj, eth, gen in ((1, "Caucasian", "female"), (2, "Moroccan", "male"), (3, "Caucasian", "male")):
        for expr in ("angry", "happy", "neutral", "sad", "surprised"):
            for angle in (45, 90):
                names.append(f"Rafd{angle:03d}_{subj:02d}_{eth}_{gen}_{expr}_frontal.jpg")
    for n in names:
        _touch(root / "RaFD" / n)
    _touch(root / "RaFD" / "thumbs.jpg")
    (root / "README.txt").write_text("not an image")
    return names


def test_read_rafd_fixture_tree(tmp_path):
    _rafd_tree(tmp_path)
    df = read_rafd(tmp_path)
    assert len(df) == 15  # 3 subjects x 5 expressions at angle 90 only
    assert set(df["angle"]) == {90}
    assert sorted(df["identity"].unique()) == ["01", "02", "03"]
    assert df.columns[:3].tolist() == ["source", "identity", "split"]
    row = df[df["source"] == "RaFD/Rafd090_02_Moroccan_male_happy_frontal.jpg"].iloc[0]
    assert (row["identity"], row["expression"], row["gender"], row["male"], row["ethnicity"]) == (
        "02",
        "happy",
        "male",
        1,
        "moroccan",
    )
    assert df.attrs["skipped"] == [("RaFD/thumbs.jpg", "unparsed_name")]
    # closed set: every identity in train, 5 images -> 3 train, 1 val, 1 test each
    counts = df.groupby(["identity", "split"]).size().unstack()
    assert (counts["train"] == 3).all() and (counts["val"] == 1).all() and (counts["test"] == 1).all()
    assert len(read_rafd(tmp_path, angles=None)) == 30
    assert set(read_rafd(tmp_path, angles=[45, 90], expressions=["happy"])["expression"]) == {"happy"}


def test_read_rafd_wrong_layout(tmp_path):
    _touch(tmp_path / "img_0001.jpg")
    with pytest.raises(DatasetLayoutError) as err:
        read_rafd(tmp_path)
    msg = str(err.value)
    assert "Rafd090_01_Caucasian_female_angry_frontal.jpg" in msg and "img_0001.jpg" in msg and "found" in msg


# -- CelebA ---------------------------------------------------------------------------------------
def _celeba_tree(root: Path, nested: bool = False, n_ids: int = 10, per_id: int = 4) -> pd.DataFrame:
    img_dir = root / ("Img" if nested else "") / "img_align_celeba"
    anno = root / ("Anno" if nested else "")
    evald = root / ("Eval" if nested else "")
    rows = []
    for i in range(n_ids * per_id):
        ident = 100 + i % n_ids  # interleaved, as in the real file
        name = f"{i + 1:06d}.jpg"
        _touch(img_dir / name)
        part = 0 if ident < 100 + n_ids - 2 else (1 if ident == 100 + n_ids - 2 else 2)  # identity-disjoint
        rows.append((name, ident, part, 1 if i % 2 else -1, 1 if ident % 3 == 0 else -1))
    anno.mkdir(parents=True, exist_ok=True)
    evald.mkdir(parents=True, exist_ok=True)
    (anno / "identity_CelebA.txt").write_text("".join(f"{n} {d}\n" for n, d, *_ in rows))
    header = ["Male", "Smiling"]
    lines = [str(len(rows)), " ".join(header)] + [f"{n}  {m:2d} {s:2d}" for n, _, _, s, m in rows]
    (anno / "list_attr_celeba.txt").write_text("\n".join(lines) + "\n")
    (evald / "list_eval_partition.txt").write_text("".join(f"{n} {p}\n" for n, _, p, *_ in rows))
    return pd.DataFrame(rows, columns=["image", "identity", "partition", "Smiling", "Male"])


@pytest.mark.parametrize("nested", [False, True])
def test_read_celeba_identity_disjoint_uses_official_partition(tmp_path, nested):
    truth = _celeba_tree(tmp_path, nested=nested)
    df = read_celeba(tmp_path)
    assert len(df) == 40 and df["identity"].nunique() == 10
    prefix = "Img/img_align_celeba/" if nested else "img_align_celeba/"
    assert df["source"].str.startswith(prefix).all()
    by_name = truth.set_index("image")
    for _, row in df.iterrows():
        t = by_name.loc[row["source"].split("/")[-1]]
        assert row["identity"] == str(t["identity"])
        assert row["Male"] == int(t["Male"] > 0) and row["Smiling"] == int(t["Smiling"] > 0)
        assert row["split"] == {0: "train", 1: "val", 2: "test"}[t["partition"]]
    splits = df.groupby("split")["identity"].apply(set)
    assert not (splits["train"] & splits["val"]) and not (splits["train"] & splits["test"])
    assert not (splits["val"] & splits["test"])


def test_read_celeba_hash_split_is_identity_disjoint_and_deterministic(tmp_path):
    _celeba_tree(tmp_path, n_ids=30, per_id=3)
    (tmp_path / "list_eval_partition.txt").unlink()
    a, b = read_celeba(tmp_path, seed=1), read_celeba(tmp_path, seed=1)
    pd.testing.assert_frame_equal(a, b)
    per_id = a.groupby("identity")["split"].nunique()
    assert (per_id == 1).all()
    n_ids = a.groupby("split")["identity"].nunique()
    assert n_ids["val"] == 3 and n_ids["test"] == 3 and n_ids["train"] == 24
    assert not read_celeba(tmp_path, seed=2)["split"].equals(a["split"])  # another seed, another split


def test_read_celeba_closed_set_and_subsets(tmp_path):
    _celeba_tree(tmp_path, n_ids=6, per_id=5)
    df = read_celeba(tmp_path, protocol="closed_set", attributes=["Male"])
    assert set(df.columns) == {"source", "identity", "split", "Male"}
    assert (df[df["split"] == "train"].groupby("identity").size() == 3).all()  # 5 -> 3/1/1
    assert set(df[df["split"] == "test"]["identity"]) == set(df["identity"])  # every person in every split
    assert read_celeba(tmp_path, max_identities=2)["identity"].nunique() == 2


def test_read_celeba_missing_files_are_reported_not_fatal(tmp_path):
    _celeba_tree(tmp_path, n_ids=4, per_id=2)
    (tmp_path / "img_align_celeba" / "000003.jpg").unlink()
    df = read_celeba(tmp_path)
    assert len(df) == 7
    assert df.attrs["skipped"] == [("img_align_celeba/000003.jpg", "missing_file")]


def test_read_celeba_wrong_layout(tmp_path):
    (tmp_path / "img_align_celeba").mkdir()
    with pytest.raises(DatasetLayoutError) as err:
        read_celeba(tmp_path)
    msg = str(err.value)
    assert "identity_CelebA.txt" in msg and "missing" in msg and "img_align_celeba/" in msg


# -- generic folder -------------------------------------------------------------------------------
def test_read_folder_identity_dirs_content_sniffing(tmp_path):
    for who in ("alice", "bob", "carol"):
        for i in range(4):
            _touch(tmp_path / who / f"{i}.png")
    _touch(tmp_path / "alice" / "noext_image")  # image without extension (like Yale)
    (tmp_path / "alice" / "notes.txt").write_text("hello")  # not an image, no image extension: ignored
    (tmp_path / "bob" / "fake.jpg").write_text("hello")  # image extension: kept, prepare records it
    df = read_folder(tmp_path)
    assert len(df) == 3 * 4 + 2
    assert "alice/noext_image" in set(df["source"]) and "bob/fake.jpg" in set(df["source"])
    assert "alice/notes.txt" not in set(df["source"])
    assert is_image_file(tmp_path / "alice" / "noext_image") and not is_image_file(tmp_path / "bob" / "fake.jpg")
    assert set(df["split"]) == {"train", "val", "test"}


def test_read_folder_labels_csv_with_subject_alias_and_attributes(tmp_path):
    for i in range(6):
        _touch(tmp_path / "pics" / f"p{i}")
    pd.DataFrame(
        {
            "path": [f"pics/p{i}" for i in range(6)] + ["pics/missing.png"],
            "subject": ["s1", "s1", "s1", "s2", "s2", "s2", "s2"],
            "expression": ["happy", "sad", "neutral", "happy", "sad", "neutral", "wink"],
        }
    ).to_csv(tmp_path / "labels.csv", index=False)
    df = read_folder(tmp_path)  # labels.csv found automatically
    assert list(df.columns) == ["source", "identity", "split", "expression"]
    assert len(df) == 6 and set(df["identity"]) == {"s1", "s2"}
    assert df.attrs["skipped"] == [("pics/missing.png", "missing_file")]
    assert df.set_index("source").loc["pics/p4", "expression"] == "sad"


def test_read_folder_split_column_is_respected(tmp_path):
    for i in range(4):
        _touch(tmp_path / f"{i}.png")
    pd.DataFrame(
        {"file": [f"{i}.png" for i in range(4)], "identity": list("aabb"), "split": ["train", "test"] * 2}
    ).to_csv(tmp_path / "meta.csv", index=False)
    df = read_folder(tmp_path, labels_csv="meta.csv")
    assert df["split"].tolist() == ["train", "test", "train", "test"]


def test_read_folder_wrong_layouts(tmp_path):
    for i in range(3):
        _touch(tmp_path / f"{i}.jpg")
    with pytest.raises(DatasetLayoutError) as err:
        read_folder(tmp_path)
    msg = str(err.value)
    assert "<root>/<identity>/<image files>" in msg and "3 images directly in the root" in msg
    pd.DataFrame({"image_name": ["0.jpg"], "who": ["a"]}).to_csv(tmp_path / "labels.csv", index=False)
    with pytest.raises(DatasetLayoutError, match="columns \\['image_name', 'who'\\]"):
        read_folder(tmp_path)
    with pytest.raises(DatasetLayoutError, match="does not exist"):
        read_folder(tmp_path, labels_csv="nope.csv")
    with pytest.raises(DatasetLayoutError, match="no such directory"):
        read_folder(tmp_path / "nowhere")


# -- splits ---------------------------------------------------------------------------------------
def test_closed_set_split_sizes():
    df = pd.DataFrame({"identity": ["a"] * 10 + ["b"] * 2 + ["c"] + ["d"] * 3, "source": [f"f{i}" for i in range(16)]})
    split = assign_splits(df, "closed_set", seed=0)
    got = pd.crosstab(df["identity"], split)
    assert got.loc["a"].tolist() == [1, 8, 1]  # columns sorted: test, train, val
    assert got.loc["b"].tolist() == [1, 1, 0]
    assert got.loc["c"].tolist() == [0, 1, 0]
    assert got.loc["d"].tolist() == [1, 1, 1]
    assert split.equals(assign_splits(df, "closed_set", seed=0))
    with pytest.raises(ValueError, match="protocol"):
        assign_splits(df, "random")


def test_get_reader():
    assert get_reader("RaFD") is read_rafd and get_reader("yale") is read_folder
    with pytest.raises(ValueError, match="unknown dataset reader"):
        get_reader("lfw")


# -- the real shared sets through the folder reader ----------------------------------------------
@pytest.mark.shared_data
def test_orl_and_yale_through_the_folder_reader(shared_datasets):
    orl = read_folder(shared_datasets / "orl")
    assert len(orl) == 400 and orl["identity"].nunique() == 40
    assert (orl.groupby("identity").size() == 10).all()
    assert (pd.crosstab(orl["identity"], orl["split"]).to_numpy() == np.array([1, 8, 1])).all()
    orl_dirs = read_folder(shared_datasets / "orl" / "orl_faces")  # identity folders, README ignored
    assert len(orl_dirs) == 400 and orl_dirs["identity"].nunique() == 40
    yale = read_folder(shared_datasets / "yale")
    assert len(yale) == 164 and yale["identity"].nunique() == 15
    assert set(yale["expression"]) == {"happy", "sad", "sleepy", "surprised", "wink", "neutral"}
    assert "yalefaces/subject01.centerlight" not in set(yale["source"])
    assert yale.attrs["skipped"] == []


def test_load_image_conversions_and_errors(tmp_path):
    from PIL import Image

    from kssgan.data.readers import ImageLoadError, load_image

    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)  # red on the left
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    img, notes = load_image(tmp_path / "rgb.png")
    assert img.shape == (20, 30, 3) and notes == [] and tuple(img[0, 0]) == (0, 0, 255)  # BGR
    Image.fromarray(rgb[:, :, 0]).save(tmp_path / "grey.png")
    img, notes = load_image(tmp_path / "grey.png")
    assert img.shape == (20, 30, 3) and notes == ["converted:grey"]
    Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257).save(tmp_path / "deep.png")
    img, notes = load_image(tmp_path / "deep.png")
    assert notes == ["converted:16bit"] and img.dtype == np.uint8 and img[0, 0, 0] == 255 and img[0, 20, 0] == 0
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.fromarray(rgb).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    img, notes = load_image(tmp_path / "rot.jpg")
    assert img.shape == (30, 20, 3) and notes == ["exif_rotated"]
    (tmp_path / "garbage.png").write_bytes(PNG_1PX[:8] + b"\x00" * 40)
    with pytest.raises(ImageLoadError) as err:
        load_image(tmp_path / "garbage.png")
    assert err.value.reason in ("decode_error", "truncated")
    with pytest.raises(ImageLoadError, match="unreadable"):
        load_image(tmp_path / "nope.png")
