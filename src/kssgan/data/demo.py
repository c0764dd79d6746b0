"""The built-in demo dataset: synthetic people, so no real face ships with kssgan.

Identities are latents of the MIT-licensed DCGAN shipped in the ``gan-face-generate`` package
(64×64 RGB faces of people who do not exist). Each identity gets several images: the latent
perturbed by ``sigma``·N(0, I) (σ = 0.2 keeps the identity: SFace matches every such pair, see
shared/datasets/README.md) plus mild flips and colour jitter.

With ``grouping="sface"`` (the default) the synthetic photos, upscaled to 256 px, go through the
real ``kssgan prepare`` pipeline — YuNet detection, 5-point alignment, SFace embeddings, MDAV
k-Same groups — so a demo checkpoint behaves like a real one (open-set faces get the nearest group
by SFace embedding). ``grouping="latent"`` skips detection and groups identities on their DCGAN
latents (``recogniser = "dcgan-latent"``), using the whole 64×64 image as the crop. Either way the
result is written once, as a normal prepared dataset (ARCHITECTURE.md, contract 1).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from kssgan.data.datamodule import FaceDataModule
from kssgan.data.grouping import KSameGrouping

LATENT_DIM = 100


def load_dcgan() -> torch.nn.Module:
    """The DCGAN generator with its shipped weights (no download)."""
    try:
        from gan_face_generate.models import Generator
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the demo dataset needs the `gan-face-generate` package: pip install --no-deps gan-face-generate"
        ) from err
    weights = resources.files("gan_face_generate") / "weights.tar"
    state = torch.load(str(weights), map_location="cpu", weights_only=True)["netG_state_dict"]
    net = Generator(0, 3, LATENT_DIM, 64)
    net.load_state_dict(state)
    return net.eval()


def generate_demo(
    out_dir: str | Path,
    num_identities: int = 24,
    images_per_identity: int = 8,
    k: int = 3,
    sigma: float = 0.2,
    seed: int = 0,
    image_size: int = 64,
    grouping: str = "sface",
    grouping_kind: dict[str, float] | None = None,
) -> Path:
    """Write the demo prepared dataset to ``out_dir`` (skipped when already complete). ``grouping_kind``
    (``grouping="sface"`` only): group-mates alike in kind as well as in face, as ``kssgan prepare``'s
    ``grouping.kind`` (the demo people have no age: ``tone`` only)."""
    if grouping not in ("sface", "latent"):
        raise ValueError(f"demo grouping must be 'sface' or 'latent', got {grouping!r}")
    if grouping_kind and grouping != "sface":
        raise ValueError("demo grouping_kind needs grouping='sface' (the latent grouping reads no crop)")
    out = Path(out_dir)
    info = {
        "kind": "demo",
        "num_identities": num_identities,
        "images_per_identity": images_per_identity,
        "k": k,
        "sigma": sigma,
        "seed": seed,
        "image_size": image_size,
        "grouping": grouping,
    }
    if grouping_kind:
        info["grouping_kind"] = dict(grouping_kind)
    done = out / "demo.json"
    if done.is_file() and json.loads(done.read_text()).get("params") == info:
        return out
    _clear_stale_demo(out)
    if images_per_identity < 3:
        raise ValueError("the demo needs at least 3 images per identity (train, val and test)")
    (out / "crops").mkdir(parents=True, exist_ok=True)
    rng = torch.Generator().manual_seed(seed)
    latents = torch.randn(num_identities, LATENT_DIM, generator=rng)
    noise = torch.randn(num_identities, images_per_identity, LATENT_DIM, generator=rng)
    noise[:, 0] = 0  # the first image of each identity is its latent itself
    z = latents[:, None] + sigma * noise
    net = load_dcgan()
    with torch.no_grad():
        imgs = net(z.view(-1, LATENT_DIM, 1, 1)).clamp(-1, 1)
    imgs = ((imgs + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    if grouping == "sface":
        _prepare_through_pipeline(out, imgs, images_per_identity, k, seed, image_size, grouping_kind)
        done.write_text(json.dumps({"params": info}, indent=1))
        return out
    rows = []
    for ident, j, img in _varied_photos(imgs, images_per_identity, seed):
        if image_size != img.shape[0]:
            img = cv2.resize(np.ascontiguousarray(img), (image_size, image_size), interpolation=cv2.INTER_CUBIC)
        rel = f"crops/id{ident:03d}/{j:02d}.png"
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(out / rel), cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2BGR))
        split = "val" if j == images_per_identity - 2 else "test" if j == images_per_identity - 1 else "train"
        rows.append(
            {
                "source": f"dcgan:seed{seed}:id{ident}:{j}",
                "crop": rel,
                "identity": f"id{ident:03d}",
                "split": split,
                "status": "ok",
                "reason": "",
                "det_score": 1.0,
            }
        )
    pd.DataFrame(rows).to_csv(out / "manifest.csv", index=False)
    names = [f"id{i:03d}" for i in range(num_identities)]
    np.savez(out / "embeddings.npz", crop=np.array([r["crop"] for r in rows]), embedding=z.view(len(rows), -1))
    grouping = KSameGrouping(k=k, method="mdav", seed=seed, recogniser="dcgan-latent")
    grouping.fit(dict(zip(names, latents.numpy(), strict=True))).save(out / "groups.json")
    (out / "prepare.json").write_text(json.dumps({"detector": None, "recogniser": "dcgan-latent"}, indent=1))
    done.write_text(json.dumps({"params": info, "counts": {"ok": len(rows)}}, indent=1))
    return out


def _varied_photos(imgs: np.ndarray, images_per_identity: int, seed: int) -> Iterator[tuple[int, int, np.ndarray]]:
    """(identity, index, RGB image) with mild flips and photometric changes; image 0 stays as drawn."""
    aug = np.random.default_rng(seed)
    for n, img in enumerate(imgs):
        ident, j = divmod(n, images_per_identity)
        if j > 0:
            if aug.random() < 0.5:
                img = img[:, ::-1]
            gain, bias = aug.uniform(0.9, 1.1), aug.uniform(-10, 10)
            img = np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
        yield ident, j, np.ascontiguousarray(img)


def _clear_stale_demo(out: Path) -> None:
    """Remove an earlier demo build with other settings; refuse to touch a folder that is not one."""
    if not out.exists() or not any(out.iterdir()):
        return
    marker = out / "demo.json"
    legacy = out / "prepare.json"
    if marker.is_file() or (legacy.is_file() and '"kind": "demo"' in legacy.read_text()):
        shutil.rmtree(out)
        return
    raise FileExistsError(f"{out} is not empty and is not a kssgan demo folder; choose another prepared_dir")


def main(argv: list[str] | None = None) -> int:
    """``kssgan demo-data [--out DIR] [--identities N] [--images N] [--k K] [--size PX]``."""
    from kssgan.job_config import job_parser

    p = job_parser("kssgan demo-data", "generate the synthetic demo dataset")
    p.add_argument("--out", type=str, default="outputs/prepared/demo")
    p.add_argument("--identities", type=int, default=24)
    p.add_argument("--images", type=int, default=8, help="images per identity")
    p.add_argument("--k", type=int, default=3)
    p.add_argument("--size", type=int, default=64, help="crop side in pixels")
    p.add_argument("--grouping", choices=["sface", "latent"], default="sface")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    out = generate_demo(a.out, a.identities, a.images, a.k, seed=a.seed, image_size=a.size, grouping=a.grouping)
    print(f"kssgan demo-data: {out}")
    return 0


RAW_SIZE = 256  # YuNet finds every DCGAN face once upscaled to this size


def _prepare_through_pipeline(
    out: Path,
    imgs: np.ndarray,
    images_per_identity: int,
    k: int,
    seed: int,
    image_size: int,
    grouping_kind: dict[str, float] | None = None,
) -> None:
    """Write the synthetic photos as ``<out>/raw/idNNN/MM.png`` and run ``kssgan prepare`` on them."""
    from kssgan.data.prepare import prepare_dataset

    raw = out / "raw"
    for ident, j, img in _varied_photos(imgs, images_per_identity, seed):
        big = cv2.resize(np.ascontiguousarray(img), (RAW_SIZE, RAW_SIZE), interpolation=cv2.INTER_CUBIC)
        path = raw / f"id{ident:03d}" / f"{j:02d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), cv2.cvtColor(big, cv2.COLOR_RGB2BGR))
    prepare_dataset(
        raw,
        out,
        reader="folder",
        image_size=image_size,
        k=k,
        seed=seed,
        grouping_kind=grouping_kind,
        progress=False,
        quiet=True,
        name="demo",
    )


class DemoDataModule(FaceDataModule):
    """:class:`FaceDataModule` over the synthetic demo, generated on first use."""

    def __init__(
        self,
        prepared_dir: str = "outputs/prepared/demo",
        num_identities: int = 24,
        images_per_identity: int = 8,
        k: int = 3,
        sigma: float = 0.2,
        image_size: int = 64,
        batch_size: int = 16,
        num_workers: int = 0,
        augmentation: dict | None = None,
        seed: int = 0,
        grouping: str = "sface",
        grouping_kind: dict[str, float] | None = None,
    ) -> None:
        super().__init__(
            prepared_dir=prepared_dir,
            image_size=image_size,
            batch_size=batch_size,
            num_workers=num_workers,
            augmentation=augmentation,
            seed=seed,
        )
        if k > num_identities:
            raise ValueError(f"k={k} is larger than the number of demo identities ({num_identities})")
        self.demo_args = dict(
            num_identities=num_identities,
            images_per_identity=images_per_identity,
            k=k,
            sigma=sigma,
            seed=seed,
            image_size=image_size,
            grouping=grouping,
            grouping_kind=grouping_kind,
        )

    def ensure_prepared(self) -> None:
        generate_demo(self.prepared_dir, **self.demo_args)
