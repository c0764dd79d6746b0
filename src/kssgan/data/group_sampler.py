"""A batch sampler of P groups × K members (the k-Same consistency loss needs several members of
one group in a batch; person re-identification's PK sampling, applied to k-Same groups)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch.utils.data import Sampler


class GroupBatchSampler(Sampler[list[int]]):
    """Batches of ``groups_per_batch`` (P) distinct groups with ``members_per_group`` (K) rows each.

    Rows of a group are drawn without replacement while they last, then with replacement (groups
    hold as few as k identities). One epoch yields ``len(rows) // (P·K)`` batches (at least one).

    Args:
        row_groups: the group of every dataset row.
        groups_per_batch, members_per_group: P and K.
        seed: base seed; the epoch is added so that every epoch differs but is reproducible.
    """

    def __init__(self, row_groups: Sequence[int], groups_per_batch: int, members_per_group: int, seed: int = 0) -> None:
        if groups_per_batch < 1 or members_per_group < 1:
            raise ValueError(f"P and K must be >= 1, got P={groups_per_batch}, K={members_per_group}")
        self.by_group: dict[int, list[int]] = {}
        for row, g in enumerate(row_groups):
            self.by_group.setdefault(int(g), []).append(row)
        if groups_per_batch > len(self.by_group):
            raise ValueError(f"groups_per_batch={groups_per_batch} exceeds the {len(self.by_group)} groups of the data")
        self.p, self.k, self.seed, self.epoch = groups_per_batch, members_per_group, seed, 0
        self.num_rows = len(row_groups)

    def __len__(self) -> int:
        return max(1, self.num_rows // (self.p * self.k))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[list[int]]:
        gen = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        groups = sorted(self.by_group)
        for _ in range(len(self)):
            chosen = torch.randperm(len(groups), generator=gen)[: self.p].tolist()
            batch: list[int] = []
            for gi in chosen:
                rows = self.by_group[groups[gi]]
                if len(rows) >= self.k:
                    pick = torch.randperm(len(rows), generator=gen)[: self.k].tolist()
                else:
                    pick = torch.randint(len(rows), (self.k,), generator=gen).tolist()
                batch += [rows[i] for i in pick]
            yield batch
