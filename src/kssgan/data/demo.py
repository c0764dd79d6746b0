"""The built-in demo dataset: synthetic people, so no real face ships with kssgan.

Identities are latents of the MIT-licensed DCGAN shipped in the ``gan-face-generate`` package
(64×64 RGB faces of people who do not exist). Each identity gets several images: the latent
perturbed by ``sigma``·N(0, I) (σ = 0.2 keeps the identity: SFace matches every such pair, see
shared/datasets/README.md) plus mild flips and colour jitter. Identities are grouped k-Same style
on their latents (``recogniser = "dcgan-latent"``) and the result is written once, as a normal
prepared dataset (ARCHITECTURE.md, contract 1), into a cache folder.
"""

from __future__ import annotations

import json
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
) -> Path:
    """Write the demo prepared dataset to ``out_dir`` (skipped when already complete)."""
    out = Path(out_dir)
    info = {
        "kind": "demo",
        "num_identities": num_identities,
        "images_per_identity": images_per_identity,
        "k": k,
        "sigma": sigma,
        "seed": seed,
        "image_size": image_size,
    }
    done = out / "prepare.json"
    if done.is_file() and json.loads(done.read_text()).get("params") == info:
        return out
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
    aug = np.random.default_rng(seed)
    rows = []
    for n, img in enumerate(imgs):
        ident, j = divmod(n, images_per_identity)
        if j > 0:  # mild photometric/flip variation; image 0 stays as drawn
            if aug.random() < 0.5:
                img = img[:, ::-1]
            gain, bias = aug.uniform(0.9, 1.1), aug.uniform(-10, 10)
            img = np.clip(img.astype(np.float32) * gain + bias, 0, 255).astype(np.uint8)
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
    done.write_text(json.dumps({"params": info, "counts": {"ok": len(rows)}}, indent=1))
    return out


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
        )

    def ensure_prepared(self) -> None:
        generate_demo(self.prepared_dir, **self.demo_args)
