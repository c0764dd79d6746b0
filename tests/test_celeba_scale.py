"""A CelebA-layout dataset with ~10,000 identities through `kssgan prepare`, the DataModule and 2
training steps: the identity files are full size, the photos a few real Yale faces (CI-fast).

Identity-disjoint protocol: only identities with a training image are grouped (every group is seen
in training); val/test identities are open-set and labelled with their nearest group."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest

from kssgan.data.datamodule import FaceDataModule
from kssgan.data.readers.celeba import CELEBA_ATTRIBUTES
from kssgan.data.readers.image_io import load_image
from tests.conftest import quiet_trainer, tiny_model

pytestmark = pytest.mark.shared_data

IDENTITIES = 10_000  # as full CelebA (10,177)
IMAGES_PER_IDENTITY = 2
WITH_PHOTOS = 60  # identities whose photo files exist (the rest are listed but missing: missing_file)
ATTRS = ["Male", "Young"]


def _partition(identity: int) -> int:
    return 1 if identity % 10 == 8 else 2 if identity % 10 == 9 else 0  # identity-disjoint: 80/10/10


@pytest.fixture(scope="module")
def celeba_root(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("celeba")
    (root / "img_align_celeba").mkdir()
    yale = sorted((shared_datasets / "yale" / "yalefaces").glob("subject*"))
    faces = [load_image(p)[0] for p in yale[:: max(1, len(yale) // 12)][:12]]
    ident_lines, part_lines, attr_lines = [], [], []
    rng = np.random.default_rng(0)
    for ident in range(1, IDENTITIES + 1):
        for j in range(IMAGES_PER_IDENTITY):
            name = f"{(ident - 1) * IMAGES_PER_IDENTITY + j + 1:06d}.jpg"
            ident_lines.append(f"{name} {ident}")
            part_lines.append(f"{name} {_partition(ident)}")
            flags = rng.choice(["-1", "1"], size=len(CELEBA_ATTRIBUTES))
            attr_lines.append(" ".join([name, *flags]))
            if ident <= WITH_PHOTOS:
                face = faces[(ident * 7 + j) % len(faces)]
                cv2.imwrite(str(root / "img_align_celeba" / name), face)
    (root / "identity_CelebA.txt").write_text("\n".join(ident_lines) + "\n")
    (root / "list_eval_partition.txt").write_text("\n".join(part_lines) + "\n")
    header = [str(len(attr_lines)), " ".join(CELEBA_ATTRIBUTES)]
    (root / "list_attr_celeba.txt").write_text("\n".join(header + attr_lines) + "\n")
    return root


@pytest.fixture(scope="module")
def celeba_prepared(celeba_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from kssgan.data.prepare import prepare_dataset

    out = tmp_path_factory.mktemp("celeba_prepared")
    prepare_dataset(
        celeba_root,
        out,
        reader="celeba",
        image_size=32,
        k=3,
        reader_options={"protocol": "identity_disjoint", "attributes": ATTRS},
        progress=False,
        quiet=True,
        name="celeba",
    )
    return out


def test_only_training_identities_are_grouped(celeba_prepared: Path) -> None:
    from kssgan.data.grouping import GroupAssignment

    manifest = pd.read_csv(celeba_prepared / "manifest.csv", dtype=str, keep_default_na=False)
    assert len(manifest) == IDENTITIES * IMAGES_PER_IDENTITY
    assert (manifest["reason"] == "missing_file").sum() == (IDENTITIES - WITH_PHOTOS) * IMAGES_PER_IDENTITY
    ok = manifest[manifest["status"] == "ok"]
    assert ok.groupby("identity")["split"].nunique().max() == 1  # identity-disjoint
    train_ids = set(ok.loc[ok["split"] == "train", "identity"])
    other_ids = set(ok["identity"]) - train_ids
    assert len(train_ids) >= 40 and len(other_ids) >= 8
    groups = GroupAssignment.load(celeba_prepared / "groups.json")
    assert set(groups.identity_to_group) == train_ids  # no group the model never sees, no val/test identity
    assert not groups.audit() and max(groups.group_sizes) <= 2 * 3 - 1


def test_datamodule_labels_open_set_identities_with_their_nearest_group_and_trains(
    celeba_prepared: Path, tmp_path: Path
) -> None:
    from kssgan.data.grouping import KSameGrouping

    dm = FaceDataModule(prepared_dir=str(celeba_prepared), binary_attributes=ATTRS, image_size=32, batch_size=8)
    dm.setup("fit")
    data, spec = dm.prepared, dm.label_spec
    assert spec.num_groups == data.groups.num_groups and spec.dim == spec.num_groups + len(ATTRS)
    val = dm.splits["val"]
    assert val is not dm.splits["train"] and len(val) > 0
    with np.load(celeba_prepared / "embeddings.npz") as z:
        lookup = dict(zip(z["crop"].tolist(), z["embedding"], strict=True))
    val_rows = data.manifest[data.manifest["split"] == "val"]
    means = KSameGrouping.mean_embeddings(list(val_rows["identity"]), np.stack([lookup[c] for c in val_rows["crop"]]))
    for row, ident in enumerate(val_rows["identity"]):
        assert ident not in data.groups.identity_to_group
        assert spec.decode(val.labels[row].numpy())["group"] == data.groups.nearest_group(means[ident])
    model = tiny_model(dm, n_critic=1, siamese_pretrain_steps=1)
    assert model.generator.group_embedding is not None  # the default: constant in the number of groups
    trainer = quiet_trainer(tmp_path, max_steps=4, limit_val_batches=1)  # 2 iterations: critic + generator
    trainer.fit(model, dm)
    assert int(model.critic_steps) == 2 and int(model.generator_steps) == 2
