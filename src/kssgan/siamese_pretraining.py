"""Pre-training the Siamese net with the contrastive loss before GAN training (``siamese_mode``
``pretrain_frozen`` and ``cotrain``). Lightning glue around :func:`kssgan.losses.contrastive_loss`:
it drives the module's own optimizer over the DataModule's training loader, with a progress bar."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import Tensor

from kssgan.losses import contrastive_loss


def pretrain_siamese(module: Any) -> float:
    """``module.hparams.siamese_pretrain_steps`` contrastive steps; returns the last loss."""
    steps = module.hparams.siamese_pretrain_steps
    trainer = module.trainer
    dm = trainer.datamodule
    loader = dm.train_dataloader() if dm is not None else trainer.train_dataloader
    opt = module.optimizers()[2]
    module.siamese.train()
    done, last = 0, float("nan")
    bar = progress_bar(steps, "Siamese pre-training", trainer)
    while done < steps:
        for batch in loader:
            batch = module.transfer_batch_to_device(batch, module.device, 0)
            with trainer.precision_plugin.forward_context():
                loss = module.siamese_step(batch)
            opt.zero_grad(set_to_none=True)
            module.manual_backward(loss)
            opt.step()
            done += 1
            last = float(loss.detach())
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{last:.3f}")
            if done >= steps:
                break
    if bar is not None:
        bar.close()
    module.siamese_ready.fill_(True)
    return last


def progress_bar(total: int, desc: str, trainer: L.Trainer):
    if not trainer.is_global_zero or not trainer.progress_bar_callback:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True)


def contrastive_step(embed: Any, batch: dict[str, Tensor], margin: float) -> Tensor:
    """Contrastive loss on (x, same-identity partner) and (x, shifted partner) pairs."""
    f_a = embed(batch["image"])
    f_p = embed(batch["image_pos"])
    shifted = torch.roll(f_p, 1, dims=0)
    same_shift = (batch["identity"] == torch.roll(batch["identity"], 1)).float()
    ones = torch.ones_like(same_shift)
    return 0.5 * (contrastive_loss(f_a, f_p, ones, margin) + contrastive_loss(f_a, shifted, same_shift, margin))
