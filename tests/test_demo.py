"""The built-in synthetic demo dataset goes through the real `kssgan prepare` pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kssgan.data.demo import generate_demo, main
from kssgan.data.prepared import PreparedDataset


def test_demo_is_a_prepared_dataset_grouped_by_sface(demo_dir: Path) -> None:
    data = PreparedDataset.open(demo_dir)
    assert data.groups.recogniser == "sface"
    assert data.groups.audit() == []
    assert len(data.manifest) == 12 * 5  # YuNet finds every synthetic face
    assert set(data.manifest["split"]) == {"train", "val", "test"}
    assert (demo_dir / data.manifest["crop"][0]).is_file()


def test_latent_grouping_and_rebuild_on_new_settings(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    generate_demo(out, num_identities=6, images_per_identity=3, k=2, image_size=32, grouping="latent")
    groups = json.loads((out / "groups.json").read_text())
    assert groups["recogniser"] == "dcgan-latent" and min(groups["group_sizes"]) >= 2
    stamp = (out / "manifest.csv").stat().st_mtime_ns
    generate_demo(out, num_identities=6, images_per_identity=3, k=2, image_size=32, grouping="latent")
    assert (out / "manifest.csv").stat().st_mtime_ns == stamp  # complete: not rebuilt
    assert main(["--out", str(out), "--identities", "6", "--images", "3", "--k", "3", "--size", "32"]) == 0
    assert json.loads((out / "groups.json").read_text())["recogniser"] == "sface"
    assert len(pd.read_csv(out / "manifest.csv")) == 18


def test_demo_never_overwrites_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not a kssgan demo folder"):
        generate_demo(tmp_path, num_identities=6, images_per_identity=3, k=2, image_size=32)
    assert (tmp_path / "mine.txt").read_text() == "keep me"


def test_k_larger_than_the_identities_is_refused(tmp_path: Path) -> None:
    from kssgan.data.demo import DemoDataModule

    with pytest.raises(ValueError, match="larger than the number of demo identities"):
        DemoDataModule(prepared_dir=str(tmp_path / "d"), num_identities=4, k=5)


def _tone_spread(root: Path) -> float:
    """Median ΔE76 of each photo's skin tone to its group's mean tone (the tone its face is given)."""
    import numpy as np

    from kssgan.data.grouping import GroupAssignment
    from kssgan.data.prepare.grouping_step import photo_tones

    groups = GroupAssignment.load(root / "groups.json")
    ok = PreparedDataset.open(root, groups=None, text=True).manifest
    ok = ok[ok["identity"].astype(str).isin(groups.identity_to_group)]
    tones, ids = photo_tones(root, ok), ok["identity"].astype(str).to_numpy()
    out = []
    for g in range(groups.num_groups):
        rows = np.isin(ids, groups.members(g))
        out += list(np.linalg.norm(tones[rows] - tones[rows].mean(0), axis=1))
    return float(np.median(out))


def test_the_demo_groups_people_alike_in_skin_tone_when_asked(tmp_path: Path) -> None:
    args = dict(num_identities=12, images_per_identity=3, k=3, image_size=32)
    plain = generate_demo(tmp_path / "plain", **args)
    kind = generate_demo(tmp_path / "kind", **args, grouping_kind={"tone": 1.0})
    assert json.loads((kind / "groups.json").read_text())["kind"] == {"tone": 1.0}
    assert json.loads((plain / "groups.json").read_text()).get("kind") is None
    assert _tone_spread(kind) < 0.8 * _tone_spread(plain)
    with pytest.raises(ValueError, match="grouping_kind needs grouping='sface'"):
        generate_demo(tmp_path / "latent", **args, grouping="latent", grouping_kind={"tone": 1.0})
