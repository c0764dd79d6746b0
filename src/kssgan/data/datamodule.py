"""LightningDataModules: read a prepared dataset, label it, serve batches (contract 4)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from kssgan.data.labels import LabelSpec
from kssgan.data.prepared import PreparedDataset


class FaceCrops(Dataset):
    """Aligned crops of one split, with domain labels and a same-identity partner image."""

    def __init__(
        self,
        root: Path,
        crops: list[str],
        identities: list[str],
        labels: np.ndarray,
        image_size: int,
        transform: Any = None,
    ) -> None:
        self.root, self.crops, self.labels = root, crops, torch.from_numpy(labels)
        self.image_size, self.transform = image_size, transform
        names = sorted(set(identities))
        self.identity_names = names
        index = {n: i for i, n in enumerate(names)}
        self.identity = torch.tensor([index[i] for i in identities], dtype=torch.long)
        self.by_identity: dict[int, list[int]] = {}
        for row, ident in enumerate(self.identity.tolist()):
            self.by_identity.setdefault(ident, []).append(row)

    def __len__(self) -> int:
        return len(self.crops)

    def load(self, row: int) -> np.ndarray:
        # INTER_AREA both ways, as training always resized (the release set enlarges with INTER_CUBIC)
        return PreparedDataset.read_crop(self.root, self.crops[row], self.image_size, enlarge=cv2.INTER_AREA)

    def to_tensor(self, img: np.ndarray) -> torch.Tensor:
        if self.transform is not None:
            img = self.transform(image=img)["image"]
        return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).float().div(127.5).sub(1.0)

    def __getitem__(self, row: int) -> dict[str, torch.Tensor]:
        ident = int(self.identity[row])
        peers = self.by_identity[ident]
        # torch's RNG: seeded by Lightning/seed_everything and distinct in every DataLoader worker
        partner = peers[int(torch.randint(len(peers), ()))] if len(peers) > 1 else row
        if partner == row and len(peers) > 1:
            partner = peers[(peers.index(row) + 1) % len(peers)]
        return {
            "image": self.to_tensor(self.load(row)),
            "image_pos": self.to_tensor(self.load(partner)),
            "label": self.labels[row],
            "identity": torch.tensor(ident),
        }


class FaceDataModule(L.LightningDataModule):
    """Serves a prepared dataset (``kssgan prepare`` output or the built-in demo).

    Args:
        prepared_dir: folder with manifest.csv, crops/, groups.json.
        onehot_attributes: manifest columns appended to the group one-hot, e.g. ``[expression]``;
            None (default): the ``labels: onehot:`` of the dataset recipe (``data_modules/*.yaml``),
            which ``kssgan prepare`` records in ``prepare.json`` — the one place labels are set.
        binary_attributes: 0/1 manifest columns appended after them, e.g. ``[Male, Blond_Hair]``;
            None (default): the recipe's ``labels: binary:``, likewise.
        image_size: crops are resized to this side if they differ.
        augmentation: albumentations settings for the training split (None disables).
        prepare_hint: what the "not prepared" error tells the user to run.
        group_batches: ``{groups: P, members: K}`` draws training batches of P k-Same groups × K
            members (:class:`~kssgan.data.group_sampler.GroupBatchSampler`, for the k-Same
            consistency loss); None: shuffled batches of ``batch_size``.
    """

    def __init__(
        self,
        prepared_dir: str = "outputs/prepared/demo",
        onehot_attributes: list[str] | None = None,
        binary_attributes: list[str] | None = None,
        image_size: int = 128,
        batch_size: int = 16,
        num_workers: int = 0,
        augmentation: dict[str, Any] | None = None,
        val_batch_size: int | None = None,
        seed: int = 0,
        prepare_hint: str = "",
        group_batches: dict[str, int] | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.prepared_dir = Path(prepared_dir)
        self._onehot_given, self._binary_given = onehot_attributes, binary_attributes
        self.image_size, self.batch_size, self.num_workers = image_size, batch_size, num_workers
        self.val_batch_size = val_batch_size or batch_size
        self.augmentation, self.seed, self.prepare_hint = augmentation, seed, prepare_hint
        self.group_batches = dict(group_batches) if group_batches else None
        self._prepared: PreparedDataset | None = None
        self._spec: LabelSpec | None = None
        self.splits: dict[str, FaceCrops] = {}

    # -- the prepared data and its label spec (needed before the model is built) ------------
    def ensure_prepared(self) -> None:
        """Hook for subclasses that can build their data themselves (the demo)."""

    @property
    def prepared(self) -> PreparedDataset:
        if self._prepared is None:
            self.ensure_prepared()
            self._prepared = PreparedDataset.open(self.prepared_dir, hint=self.prepare_hint)
        return self._prepared

    @property
    def onehot_attributes(self) -> list[str]:
        given = self._onehot_given
        return list(given if given is not None else self.prepared.info.get("labels", {}).get("onehot") or [])

    @property
    def binary_attributes(self) -> list[str]:
        given = self._binary_given
        return list(given if given is not None else self.prepared.info.get("labels", {}).get("binary") or [])

    @property
    def label_spec(self) -> LabelSpec:
        if self._spec is None:
            self._spec = self.prepared.label_spec(self.onehot_attributes, self.binary_attributes)
        return self._spec

    @property
    def label_spec_dict(self) -> dict[str, Any]:
        return self.label_spec.to_dict()

    @property
    def groups_dict(self) -> dict[str, Any]:
        return self.prepared.groups.to_dict()

    @property
    def prepare_record(self) -> dict[str, Any]:
        """The face framing of the prepared data (saved as ``checkpoint["kssgan"]["prepare"]``)."""
        return self.prepared.provenance()

    # -- Lightning hooks ----------------------------------------------------------------------
    def prepare_data(self) -> None:
        self.ensure_prepared()

    def setup(self, stage: str | None = None) -> None:
        if self.splits:
            return
        data, spec = self.prepared, self.label_spec
        labels = spec.encode_many(data.records(spec))
        train_tf = None
        if self.augmentation:
            from kssgan.data.augment import build_train_augmentation

            train_tf = build_train_augmentation(self.augmentation)
        for split in ("train", "val", "test"):
            mask = (data.manifest["split"] == split).to_numpy()
            if not mask.any():
                continue
            self.splits[split] = FaceCrops(
                data.root,
                data.manifest.loc[mask, "crop"].tolist(),
                data.manifest.loc[mask, "identity"].tolist(),
                labels[mask],
                self.image_size,
                transform=train_tf if split == "train" else None,
            )
        if "train" not in self.splits:
            raise ValueError(f"{self.prepared_dir}/manifest.csv has no training images (split == 'train')")
        if "val" not in self.splits:  # small sets: validate on training images rather than not at all
            self.splits["val"] = self.splits["train"]

    def _loader(self, split: str, shuffle: bool, batch_size: int) -> DataLoader:
        ds = self.splits[split]
        return DataLoader(
            ds,
            batch_size=min(batch_size, len(ds)),
            shuffle=shuffle,
            drop_last=shuffle and len(ds) >= batch_size,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
            generator=torch.Generator().manual_seed(self.seed) if shuffle else None,
        )

    def train_dataloader(self) -> DataLoader:
        if not self.group_batches:
            return self._loader("train", True, self.batch_size)
        from kssgan.data.group_sampler import GroupBatchSampler

        ds = self.splits["train"]
        groups = self.prepared.groups
        row_groups = [groups.group_of(ds.identity_names[int(i)]) for i in ds.identity]
        sampler = GroupBatchSampler(
            row_groups, int(self.group_batches["groups"]), int(self.group_batches["members"]), self.seed
        )
        return DataLoader(
            ds, batch_sampler=sampler, num_workers=self.num_workers, persistent_workers=self.num_workers > 0
        )

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.val_batch_size)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test" if "test" in self.splits else "val", False, self.val_batch_size)

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
