"""Callbacks: sample grids of a fixed validation batch translated to every target domain, a writer
of de-identified crops for ``kssgan predict``, and :class:`CheckpointOnExit` (a run that is stopped
by ``trainer.max_time``, SIGTERM or Ctrl-C leaves ``last.ckpt`` of its very last step)."""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter, ModelCheckpoint
from PIL import Image


def make_grid(rows: list[list[np.ndarray]], pad: int = 2) -> np.ndarray:
    """Tile equally sized HxWx3 uint8 images into one image (rows × columns)."""
    h, w = rows[0][0].shape[:2]
    n_cols = max(len(r) for r in rows)
    grid = np.full((len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = img
    return grid


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(B, 3, H, W) in [-1, 1] → (B, H, W, 3) uint8."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()


class SampleGrid(L.Callback):
    """Every ``every_n_generator_steps`` (and at the end), translate a fixed validation batch to
    each group (own attributes kept) and save a PNG grid under ``<log_dir>/samples/``; also sent to
    loggers that accept images. Original faces are only included when ``include_originals``.
    """

    def __init__(
        self,
        every_n_generator_steps: int = 50,
        num_images: int = 6,
        max_domains: int = 8,
        include_originals: bool = False,
        dirpath: str | None = None,
    ) -> None:
        self.every = every_n_generator_steps
        self.num_images, self.max_domains = num_images, max_domains
        self.include_originals, self.dirpath = include_originals, dirpath
        self._batch: dict[str, torch.Tensor] | None = None
        self._last_step = -1
        self.saved: list[Path] = []

    def _fixed_batch(self, trainer: L.Trainer) -> dict[str, torch.Tensor] | None:
        if self._batch is None:
            dm = trainer.datamodule
            if dm is None:
                return None
            ds = dm.splits.get("val") or dm.splits.get("train")
            n = min(self.num_images, len(ds))
            items = [ds[i] for i in np.linspace(0, len(ds) - 1, n).astype(int)]
            self._batch = {k: torch.stack([it[k] for it in items]) for k in ("image", "label")}
        return self._batch

    def out_dir(self, trainer: L.Trainer) -> Path:
        base = self.dirpath or trainer.log_dir or trainer.default_root_dir
        return Path(base) / "samples"

    @torch.no_grad()
    def save(self, trainer: L.Trainer, module: L.LightningModule) -> Path | None:
        batch = self._fixed_batch(trainer)
        if batch is None or not trainer.is_global_zero:
            return None
        step = int(module.generator_steps)
        x, labels = batch["image"].to(module.device), batch["label"].to(module.device)
        spec = module.spec
        n_groups = min(spec.num_groups, self.max_domains)
        columns = [to_uint8(x)] if self.include_originals else []
        was_training = module.training
        module.eval()
        for g in range(n_groups):
            target = torch.from_numpy(np.stack([spec.with_field(lab.cpu().numpy(), "group", g) for lab in labels])).to(
                module.device
            )
            columns.append(to_uint8(module.translate(x, target)))
        module.train(was_training)
        rows = [[col[i] for col in columns] for i in range(x.size(0))]
        grid = make_grid(rows)
        out = self.out_dir(trainer)
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"step_{step:06d}.png"
        Image.fromarray(grid).save(path)
        self.saved.append(path)
        caption = "columns: " + ("original, " if self.include_originals else "") + f"groups 0..{n_groups - 1}"
        for logger in trainer.loggers:
            if hasattr(logger, "log_image"):
                try:
                    logger.log_image(key="samples", images=[grid], step=trainer.global_step, caption=[caption])
                except Exception:  # a logger's image upload must never stop training
                    pass
        self._last_step = step
        return path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step = int(pl_module.generator_steps)
        if self.every and step and step % self.every == 0 and step != self._last_step:
            self.save(trainer, pl_module)

    def on_train_end(self, trainer, pl_module) -> None:
        if int(pl_module.generator_steps) != self._last_step:
            self.save(trainer, pl_module)


class SaveDeidentifiedCrops(BasePredictionWriter):
    """For ``kssgan predict``: write each de-identified crop (own group, own attributes) as a PNG.

    Files are named by their position in the prediction set (``<output_dir>/<batch>_<row>.png``) —
    never by the source file name, which may itself identify the person.
    """

    def __init__(self, output_dir: str = "outputs/predict") -> None:
        super().__init__(write_interval="batch")
        self.output_dir = Path(output_dir)

    def write_on_batch_end(
        self, trainer, pl_module, prediction, batch_indices, batch, batch_idx, dataloader_idx=0
    ) -> None:
        self.output_dir.mkdir(parents=True, exist_ok=True)
        for row, img in enumerate(to_uint8(prediction)):
            Image.fromarray(img).save(self.output_dir / f"{batch_idx:05d}_{row:03d}.png")


class CheckpointOnExit(L.Callback):
    """Save ``last.ckpt`` when training ends for any reason but a crash, so that resuming
    (``--ckpt_path last``) loses nothing.

    * ``trainer.max_time`` (or ``max_steps``, early stopping): ``on_train_end``.
    * SIGTERM (a scheduler's pre-emption): Lightning's signal handler only raises a flag, acted on at
      the end of the epoch; this callback checks it after every batch, saves and stops the run
      (Lightning then exits with its ``SIGTERMException``).
    * Ctrl-C: Lightning turns it into ``on_exception(KeyboardInterrupt)``, where the save happens.

    The file goes to the :class:`ModelCheckpoint`'s ``dirpath`` (``last.ckpt``, what ``save_last``
    writes), else ``<default_root_dir>/checkpoints``; ``dirpath`` overrides both. A step already
    saved there is not saved again. Single-process runs save on Ctrl-C; every run saves on SIGTERM
    and at the end.
    """

    def __init__(self, dirpath: str | None = None, filename: str = "last") -> None:
        self.dirpath, self.filename = dirpath, filename
        self._saved_step = -1
        self.saved: list[Path] = []

    def path(self, trainer: L.Trainer) -> Path:
        base = self.dirpath
        if base is None:
            cb = next((c for c in trainer.callbacks if isinstance(c, ModelCheckpoint) and c.dirpath), None)
            base = cb.dirpath if cb is not None else str(Path(trainer.default_root_dir) / "checkpoints")
        return Path(base) / f"{self.filename}.ckpt"

    def save(self, trainer: L.Trainer) -> Path | None:
        step = int(trainer.global_step)
        path = self.path(trainer)
        if step == self._saved_step or step == 0:
            return None
        trainer.save_checkpoint(path, weights_only=False)  # full and resumable: optimizer state too
        self._saved_step = step
        self.saved.append(path)
        return path

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if trainer.received_sigterm and not trainer.should_stop:
            self.save(trainer)
            trainer.should_stop = True

    def on_train_end(self, trainer, pl_module) -> None:
        self.save(trainer)

    def on_exception(self, trainer, pl_module, exception: BaseException) -> None:
        from lightning.pytorch.utilities.exceptions import SIGTERMException

        if isinstance(exception, SIGTERMException | KeyboardInterrupt) and trainer.world_size == 1:
            self.save(trainer)
