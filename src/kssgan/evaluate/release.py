"""The images under evaluation: a prepared dataset (contract 1) loaded into memory, its k-Same
groupings for every k, and the conversion of its crops into what the recognisers expect."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from kssgan.data.grouping import GroupAssignment, KSameGrouping
from kssgan.data.prepared import DatasetNotPreparedError, PreparedDataset

SPLITS = ("all", "train", "val", "test")


@dataclass
class ReleaseSet:
    """Aligned crops (N×S×S×3 uint8 RGB at the working size) with identities, splits and attributes."""

    name: str
    root: Path
    images: np.ndarray
    manifest: pd.DataFrame  # the rows of ``images``, in order
    groups: GroupAssignment  # the prepared dataset's own grouping
    margin: float
    # per-identity mean of embeddings.npz over every ok image (whatever the split), for regrouping
    identity_means: dict[str, np.ndarray] | None = field(default=None, repr=False)

    @property
    def identities(self) -> list[str]:
        return self.manifest["identity"].astype(str).tolist()

    @property
    def splits(self) -> np.ndarray:
        return self.manifest["split"].astype(str).to_numpy()

    def grouping(self, k: int) -> GroupAssignment:
        """The k-Same grouping for ``k``: the prepared one when it has that k, else rebuilt like
        ``kssgan prepare --regroup`` does (MDAV on per-identity mean embeddings)."""
        if k == self.groups.k:
            return self.groups
        if self.identity_means is None:
            raise FileNotFoundError(f"{self.root}/embeddings.npz is needed to regroup for k={k}")
        g = self.groups
        return KSameGrouping(k=k, method=g.method, seed=g.seed, recogniser=g.recogniser).fit(self.identity_means)


def resolve_dataset(dataset: str, repo_root: Path | None = None, prepare_missing: bool = True) -> tuple[str, Path]:
    """``yale``/``orl``/``demo`` (a recipe name), a ``data_modules/*.yaml`` recipe, or a prepared folder.

    A named recipe whose prepared folder is missing is prepared first (``kssgan prepare``) when
    ``prepare_missing``; the built-in demo is generated.
    """
    path = Path(dataset)
    if path.is_dir():
        return path.resolve().name, path
    roots = [Path.cwd()] + ([repo_root] if repo_root else [])
    recipe: Path | None = None
    if path.suffix in (".yaml", ".yml") and path.is_file():
        recipe = path
    else:
        for root in roots:
            cand = root / "data_modules" / f"{dataset}.yaml"
            if cand.is_file():
                recipe = cand
                break
    if recipe is not None:
        from kssgan.data.prepare.recipe import load_recipe

        spec = load_recipe(recipe)
        name = str(spec.get("name", recipe.stem))
        prepared = Path(spec.get("prepared_dir") or f"outputs/prepared/{name}")
        if not (prepared / "manifest.csv").is_file():
            if not prepare_missing:
                raise FileNotFoundError(f"{prepared} is not prepared; run: make prepare DATASET={name}")
            from kssgan.data.prepare import main as prepare_main

            print(f"kssgan evaluate: {prepared} is not prepared yet; running `kssgan prepare --config {recipe}`")
            if prepare_main(["--config", str(recipe)]) != 0:
                raise RuntimeError(f"kssgan prepare --config {recipe} failed")
        return name, prepared
    if dataset == "demo":
        from kssgan.data.demo import generate_demo

        return "demo", generate_demo(Path("outputs/prepared/demo"))
    raise FileNotFoundError(
        f"dataset {dataset!r}: not a prepared folder, not data_modules/{dataset}.yaml and not 'demo'"
    )


def load_release(root: str | Path, image_size: int | None, split: str = "all", name: str | None = None) -> ReleaseSet:
    """Read the ok crops of ``split`` (``all`` = every ok image, the data holder's release)."""
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    from kssgan.data.readers import STRANGER_SPLIT

    data = PreparedDataset.open(root)
    identity_means = _identity_means(data)
    manifest = data.manifest
    strangers = set(manifest.loc[manifest["split"].astype(str) == STRANGER_SPLIT, "identity"].astype(str))
    if identity_means is not None and strangers:  # strangers never join a group, at any k
        identity_means = {i: v for i, v in identity_means.items() if i not in strangers}
    if split == "all":  # the closed set: strangers are the open-set evaluation's (load_strangers)
        manifest = manifest[manifest["split"].astype(str) != STRANGER_SPLIT].reset_index(drop=True)
    else:
        manifest = manifest[manifest["split"] == split].reset_index(drop=True)
    if manifest.empty:
        raise ValueError(f"{root}: no ok images in split {split!r}")
    images = data.read_crops(manifest["crop"].tolist(), image_size)
    return ReleaseSet(
        name or Path(root).resolve().name, data.root, images, manifest, data.groups, data.margin, identity_means
    )


def stranger_photos(root: str | Path) -> pd.DataFrame:
    """The ok manifest rows of the identities ``kssgan prepare --open-set-fraction`` held out of
    training and grouping (split ``stranger``); empty when there are none."""
    from kssgan.data.readers import STRANGER_SPLIT

    manifest = PreparedDataset.open(root).manifest
    return manifest[manifest["split"].astype(str) == STRANGER_SPLIT].reset_index(drop=True)


def _identity_means(data: PreparedDataset) -> dict[str, np.ndarray] | None:
    """What ``kssgan prepare --regroup`` groups on: each identity's mean embedding over its ok
    images; None when ``embeddings.npz`` is missing or incomplete (no regrouping then)."""
    try:
        return data.identity_means()
    except DatasetNotPreparedError:
        return None


def recogniser_crops(images_rgb: np.ndarray, margin: float = 0.0, size: int = 112) -> list[np.ndarray]:
    """ArcFace-framed ``size``×``size`` BGR crops (what every recogniser takes) from our crops."""
    from kssgan.faces.align import similarity_transform, template

    side = images_rgb.shape[1]
    out = []
    if abs(margin) < 1e-9:
        for img in images_rgb:
            interp = cv2.INTER_AREA if side > size else cv2.INTER_CUBIC
            out.append(cv2.cvtColor(cv2.resize(img, (size, size), interpolation=interp), cv2.COLOR_RGB2BGR))
        return out
    m = similarity_transform(template(side, margin), size, margin=0.0)
    for img in images_rgb:
        warped = cv2.warpAffine(img, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        out.append(cv2.cvtColor(warped, cv2.COLOR_RGB2BGR))
    return out
