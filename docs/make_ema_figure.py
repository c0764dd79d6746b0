"""Build docs/synthetic_raw_vs_ema.png: a surrogate-mode checkpoint's surrogate faces (top), its
generator's output on them (middle) and its weight average's (bottom; ``g_ema``). Synthetic demo
faces only.

    python docs/make_ema_figure.py outputs/demo-synthetic-ema/checkpoints/final.ckpt docs/synthetic_raw_vs_ema.png
"""

import sys

import numpy as np
import torch
from PIL import Image

from kssgan.system import load_kssgan


def strip(t: torch.Tensor) -> np.ndarray:
    return np.concatenate(list(((t.clamp(-1, 1).permute(0, 2, 3, 1).numpy() + 1) * 127.5).astype(np.uint8)), 1)


def main() -> None:
    model = load_kssgan(sys.argv[1]).eval()
    if model.generator_ema is None or model.surrogates is None:
        raise SystemExit(f"{sys.argv[1]}: needs a surrogate-mode checkpoint trained with g_ema > 0")
    bank = model.surrogates.faces
    kept = torch.zeros(bank.size(0), model.spec.dim - model.spec.num_groups)
    with torch.no_grad():
        raw, ema = model.generator(bank, kept), model.generator_ema.module(bank, kept)
    print(
        f"mean |G - surrogate| {(raw - bank).abs().mean():.4f}, mean |EMA - surrogate| {(ema - bank).abs().mean():.4f}"
    )
    Image.fromarray(np.concatenate([strip(bank), strip(raw), strip(ema)], 0)).save(sys.argv[2])
    print("wrote", sys.argv[2])


if __name__ == "__main__":
    main()
