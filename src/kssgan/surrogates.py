"""k-Same surrogate faces: the identity of a released face comes from its group, by construction.

kSS-GAN as published translates the *source* image x to the group label c, so whatever identity
survives in G(x, c) is a one-to-one function of the source: members A and B of one group can
receive different outputs, and an attacker who de-identifies their own gallery the same way (the
parrot attack) links them. With ``generator_input="surrogate"`` the generator never sees the
source's pixels. Its input is the group's **surrogate face** — the pixel mean of the aligned photos of
a group's identities (k-Same-Pixel, Newton et al. 2005), per value of the kept attribute (e.g. the
mean *smiling* face of the group) — and the label of what must be kept (expression, attributes).
Every member of a group with the same kept attributes therefore receives the same released face,
whatever the generator learns: the parrot attack scores exactly 1/|group| ≤ 1/k. The generator's job
becomes making that mean face a sharp, natural face with the source's expression (k-Same-Net idea,
Meden et al. 2017).

Which group's mean a group receives (``assign_surrogates``):

* ``own``: its own mean (k-Same-M/k-Same-Net). At small k the mean of k faces still verifies as
  each member (SFace matches 53 % of ORL k=3 pairs to k-Same-Pixel outputs): weak protection.
* ``farthest`` (default): the mean of *another* group of the same stratum (e.g. the same gender),
  chosen by a minimum-cost one-to-one assignment that maximises the recogniser distance between
  the two groups' centroids. Outputs then look like nobody in their own group. The mapping is a
  permutation, so no two groups share a surrogate.
* ``nearest``: the most similar other group (keeps more look-alike attributes, less protection).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

ASSIGNMENTS = ("own", "farthest", "nearest")


class SurrogateBank(nn.Module):
    """Buffers: ``faces`` (G·V, C, H, W), the group means per kept-attribute value in [-1, 1]
    (row ``g·V + v``; 4-D so that channels-last conversion and ONNX export treat it like an image
    batch), and ``source_group`` (G,): the group whose mean group g is released as."""

    def __init__(self, num_groups: int, num_values: int, image_size: int, channels: int = 3) -> None:
        super().__init__()
        self.num_groups, self.num_values = num_groups, max(1, num_values)
        self.register_buffer("faces", torch.zeros(num_groups * self.num_values, channels, image_size, image_size))
        self.register_buffer("source_group", torch.arange(num_groups))
        self.register_buffer("ready", torch.zeros((), dtype=torch.bool))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs) -> None:
        key = prefix + "faces"
        if key in state_dict and state_dict[key].dim() == 5:  # checkpoints written before the 4-D layout
            state_dict[key] = state_dict[key].flatten(0, 1)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def fill(self, faces: Tensor, source_group: Tensor) -> None:
        """``faces``: (G, V, C, H, W) means; ``source_group``: (G,)."""
        expected = (self.num_groups, self.num_values, *self.faces.shape[1:])
        if tuple(faces.shape) != expected:
            raise ValueError(f"surrogate faces must be {expected}, got {tuple(faces.shape)}")
        self.faces.copy_(faces.flatten(0, 1))
        self.source_group.copy_(source_group)
        self.ready.fill_(True)

    def lookup(self, group: Tensor, value: Tensor) -> Tensor:
        """The surrogate face of each (group, value) pair: (B, C, H, W)."""
        rows = nn.functional.embedding(group, self.source_group.view(-1, 1)).view(-1) * self.num_values + value
        flat = nn.functional.embedding(rows, self.faces.flatten(1))  # a plain Gather, also in ONNX
        return flat.view(-1, *self.faces.shape[1:])


def group_means(
    images: Tensor, group: Tensor, value: Tensor, num_groups: int, num_values: int
) -> tuple[Tensor, list[tuple[int, int]]]:
    """Per (group, value) pixel means of ``images`` (N, C, H, W). A pair without any image falls back
    to the group's mean over all values; returns the means and the list of such fallbacks."""
    num_values = max(1, num_values)
    c, h, w = images.shape[1:]
    sums = torch.zeros(num_groups, num_values, c, h, w, dtype=torch.float64)
    counts = torch.zeros(num_groups, num_values, dtype=torch.float64)
    flat = group * num_values + value
    sums.view(-1, c, h, w).index_add_(0, flat, images.double())
    counts.view(-1).index_add_(0, flat, torch.ones_like(flat, dtype=torch.float64))
    if (counts.sum(1) == 0).any():
        empty = torch.nonzero(counts.sum(1) == 0).flatten().tolist()
        raise ValueError(f"groups {empty[:5]} have no image to build their surrogate face from")
    fallbacks = []
    group_mean = sums.sum(1) / counts.sum(1).view(-1, 1, 1, 1)
    means = torch.empty_like(sums)
    for g in range(num_groups):
        for v in range(num_values):
            if counts[g, v] > 0:
                means[g, v] = sums[g, v] / counts[g, v]
            else:
                means[g, v] = group_mean[g]
                fallbacks.append((g, v))
    return means.float(), fallbacks


def medoid_rows(images: Tensor, identity: Sequence[str], value: Tensor) -> list[int]:
    """One row per (identity, value): the image closest (pixel L2) to that identity's mean for that
    value, so a group's surrogate can be the mean of k faces, one per member (k-Same's own
    definition), rather than of every photo of the group (a mean over poses: a blur)."""
    keys: dict[tuple[str, int], list[int]] = {}
    for row, (ident, v) in enumerate(zip(identity, value.tolist(), strict=True)):
        keys.setdefault((str(ident), int(v)), []).append(row)
    chosen = []
    for rows in keys.values():
        x = images[rows].double().flatten(1)
        chosen.append(rows[int((x - x.mean(0)).pow(2).sum(1).argmin())])
    return sorted(chosen)


def assign_surrogates(centroids: np.ndarray, mode: str = "farthest", strata: Sequence[str] | None = None) -> np.ndarray:
    """``source_group`` for every group (see the module doc). ``strata`` (one label per group)
    restricts the choice to groups of the same stratum; a stratum of one group keeps its own mean
    only if no other group exists at all, otherwise it borrows from the whole set."""
    if mode not in ASSIGNMENTS:
        raise ValueError(f"surrogate assignment must be one of {ASSIGNMENTS}, got {mode!r}")
    n = len(centroids)
    if mode == "own" or n < 2:
        return np.arange(n)
    from scipy.optimize import linear_sum_assignment

    c = np.asarray(centroids, np.float64)
    c = c / np.clip(np.linalg.norm(c, axis=1, keepdims=True), 1e-12, None)
    dist = 1.0 - c @ c.T  # cosine distance between group centroids
    cost = -dist if mode == "farthest" else dist.copy()
    big = 1e6
    np.fill_diagonal(cost, big)
    if strata is not None:
        s = np.asarray([str(v) for v in strata])
        cross = s[:, None] != s[None, :]
        lonely = np.array([(s == v).sum() < 2 for v in s])
        cost = np.where(cross & ~lonely[:, None], big / 2, cost)  # other strata only where unavoidable
    rows, cols = linear_sum_assignment(cost)
    out = np.empty(n, dtype=np.int64)
    out[rows] = cols
    return out


def batch_k_means(images: Tensor, value: Tensor, k: int, generator: torch.Generator | None = None) -> Tensor:
    """Training inputs that look like surrogate faces but vary: each row is the mean of itself and
    up to k−1 other rows of the batch with the same kept-attribute value."""
    b = images.size(0)
    out = torch.empty_like(images)
    perm_keys = torch.rand(b, b, generator=generator).to(images.device)
    same = value.view(-1, 1) == value.view(1, -1)
    for i in range(b):
        peers = torch.nonzero(same[i]).flatten()
        peers = peers[peers != i]
        if len(peers):
            order = torch.argsort(perm_keys[i, peers])
            peers = peers[order[: max(0, k - 1)]]
        idx = torch.cat([torch.tensor([i], device=images.device), peers])
        out[i] = images[idx].float().mean(0).to(images.dtype)
    return out


def ghosted_mean(images: Tensor, k: int, shift: float = 0.04, scale: float = 0.04, angle_deg: float = 4.0) -> Tensor:
    """The mean of k randomly jittered copies of each image (translation up to ``shift`` of the side,
    scale up to ±``scale``, rotation up to ±``angle_deg``): what a k-Same mean face looks like —
    features doubled and softened — but of one person, so that the sharp original is a target."""
    import math

    b = images.size(0)
    out = torch.zeros_like(images)
    for _ in range(max(1, k)):
        theta = torch.rand(b, device=images.device) * 2 - 1
        a = theta * math.radians(angle_deg)
        s = 1 + (torch.rand(b, device=images.device) * 2 - 1) * scale
        t = (torch.rand(b, 2, device=images.device) * 2 - 1) * shift * 2  # affine_grid units: side = 2
        m = torch.stack(
            [
                torch.stack([s * torch.cos(a), -s * torch.sin(a), t[:, 0]], 1),
                torch.stack([s * torch.sin(a), s * torch.cos(a), t[:, 1]], 1),
            ],
            1,
        )
        grid = nn.functional.affine_grid(m, list(images.shape), align_corners=False)
        out += nn.functional.grid_sample(images, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out / max(1, k)


class SurrogateReleaseGenerator(nn.Module):
    """G(surrogate(c), kept(c)) behind the generator's own ``(image, label)`` interface, so that
    ``deidentify`` backends and the ONNX export treat both generator inputs alike. The image is
    accepted and never read: the released face depends on the label alone."""

    def __init__(
        self, generator: nn.Module, bank: SurrogateBank, group: slice, value: slice | None, sharpen: float = 0.0
    ) -> None:
        super().__init__()
        self.generator, self.bank, self.sharpen = generator, bank, sharpen
        self.group_start, self.group_stop = group.start, group.stop
        self.value = (value.start, value.stop) if value is not None else None

    def surrogate(self, label: Tensor) -> Tensor:
        """The surrogate face of each label's (group, kept attribute value)."""
        g = label[:, self.group_start : self.group_stop].argmax(dim=1)
        v = label[:, self.value[0] : self.value[1]].argmax(dim=1) if self.value else torch.zeros_like(g)
        return self.bank.lookup(g, v)

    def forward(self, image: Tensor, label: Tensor) -> Tensor:
        kept = torch.cat([label[:, : self.group_start], label[:, self.group_stop :]], dim=1).to(image.dtype)
        return unsharp(self.generator(self.surrogate(label).to(image.dtype), kept), self.sharpen)


def unsharp(x: Tensor, amount: float, sigma: float = 1.0) -> Tensor:
    """``x + amount·(x − blur(x))`` clamped to [−1, 1]: an unsharp mask (a fixed linear filter of the
    released face, so it adds no identity information); ``amount = 0`` returns ``x`` unchanged."""
    if amount <= 0:
        return x
    import kornia

    blurred = kornia.filters.gaussian_blur2d(x.float(), (5, 5), (sigma, sigma))
    return (x.float() + amount * (x.float() - blurred)).clamp(-1, 1).to(x.dtype)


class SharpenedGenerator(nn.Module):
    """G(x, c) followed by :func:`unsharp` (the image-mode release path with ``release_sharpen``)."""

    def __init__(self, generator: nn.Module, amount: float) -> None:
        super().__init__()
        self.generator, self.amount = generator, amount

    def forward(self, image: Tensor, label: Tensor) -> Tensor:
        return unsharp(self.generator(image, label), self.amount)
