"""One sweep trial: an experiment YAML + sampled overrides → a Lightning run that reports to Tune.

:func:`trial_experiment` writes the trial's complete experiment config (``trial.yaml`` in the trial
folder, runnable by ``kssgan fit --config``): the sampled values merged in, the per-trial budget,
every output redirected into the trial folder, W&B grouped by sweep, Lightning's own checkpointing
and progress bars replaced by :class:`TuneReport`, which after each validation

* adds the sweep objective (a weighted sum of logged metrics, see ``sweeps/README.md``),
* fails the trial with :class:`TrialDiverged` when any metric is NaN/inf (the sweep goes on),
* reports to Tune with a Lightning checkpoint, from which an interrupted trial resumes.

:func:`train_trial` is the function trainable. With ``resources.workers > 1`` it runs the trial as a
Ray Train ``TorchTrainer`` (DDP, ``find_unused_parameters=True``) from inside the function trainable
— Ray refuses a ``TorchTrainer`` handed straight to a ``Tuner``. Such a trial's validation metrics
are averaged over its workers before they are reported; rank 0's Lightning checkpoints are kept by
Ray Train in the trial's storage folder under ``ray_train/<trial>/`` (their path is reported as
``checkpoint_path``), and a restarted trial (``kssgan sweep --resume``) resumes from the latest.
"""

from __future__ import annotations

import math
import os
import socket
import tempfile
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import lightning as L
import yaml

from kssgan.tune.space import merge_overrides

CHECKPOINT_NAME = "checkpoint.ckpt"
TRIAL_CONFIG = "trial.yaml"
RAY_TRAIN_FOLDER = "ray_train"  # a multi-worker trial's Ray Train run, in the trial's folder
# Callbacks that a trial replaces: Tune's reporter checkpoints, and progress bars only clutter logs.
DROPPED_CALLBACKS = ("ModelCheckpoint", "CheckpointOnExit", "TQDMProgressBar", "RichProgressBar")
# Top-level keys of `kssgan fit` that the Trainer-only CLI of a trial does not take.
FIT_ONLY_KEYS = ("ckpt_path", "weights_only")


class TrialDiverged(RuntimeError):
    """A metric became NaN or infinite: the trial is failed, the sweep continues."""


class TuneReport(L.Callback):
    """Report validation metrics (plus the sweep objective) and a checkpoint to Ray Tune / Ray Train.

    Args:
        objective: name under which the weighted sum is reported (the sweep's metric).
        weights: ``{logged metric: weight}``; empty → the objective is a logged metric itself.
        backend: ``tune`` (function trainable, one process) or ``train`` (Ray Train DDP workers).
        save_checkpoints: attach a Lightning checkpoint to each report (resumable trials).
    """

    def __init__(
        self,
        objective: str,
        weights: dict[str, float] | None = None,
        backend: str = "tune",
        save_checkpoints: bool = True,
    ) -> None:
        if backend not in ("tune", "train"):
            raise ValueError(f"backend must be 'tune' or 'train', got {backend!r}")
        self.objective, self.weights = objective, dict(weights or {})
        self.backend, self.save_checkpoints = backend, save_checkpoints

    def metrics(self, trainer: L.Trainer, pl_module: L.LightningModule) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        for key, value in trainer.callback_metrics.items():
            try:
                metrics[key] = float(value)
            except (TypeError, ValueError):
                continue
        metrics.update(self._mean_over_ranks(trainer, pl_module, metrics))
        if self.weights:
            missing = [k for k in self.weights if k not in metrics]
            if missing:
                raise KeyError(f"objective {self.objective!r} needs {missing}; logged: {sorted(metrics)}")
            metrics[self.objective] = sum(w * metrics[k] for k, w in self.weights.items())
        elif self.objective not in metrics:
            raise KeyError(f"metric {self.objective!r} was not logged; logged: {sorted(metrics)}")
        bad = sorted(k for k, v in metrics.items() if not math.isfinite(v))
        if bad:
            raise TrialDiverged(f"non-finite metrics after {trainer.global_step} steps: {bad}")
        metrics["critic_steps"] = int(getattr(pl_module, "critic_steps", 0))
        metrics["generator_steps"] = int(getattr(pl_module, "generator_steps", 0))
        metrics["global_step"] = int(trainer.global_step)
        metrics["world_size"] = int(getattr(trainer, "world_size", 1))  # the trial's DDP processes
        metrics["node_id"], metrics["node_ip"] = _node()
        metrics["hostname"] = socket.gethostname()
        return metrics

    @staticmethod
    def _mean_over_ranks(trainer: L.Trainer, module: L.LightningModule, metrics: dict[str, float]) -> dict[str, float]:
        """Under DDP each rank validated its own shard and logged it unsynced: the ``val/`` metrics
        averaged over all ranks (a collective: every rank calls it, with the same keys)."""
        if int(getattr(trainer, "world_size", 1)) <= 1:
            return {}
        import torch

        keys = sorted(k for k in metrics if k.startswith("val/"))
        if not keys:
            return {}
        local = torch.tensor([metrics[k] for k in keys], dtype=torch.float64, device=module.device)
        mean = trainer.strategy.reduce(local, reduce_op="mean")
        return dict(zip(keys, (float(v) for v in mean.cpu()), strict=True))

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        metrics = self.metrics(trainer, pl_module)
        with self._checkpoint(trainer) as checkpoint:
            if self.backend == "tune":
                from ray import tune

                tune.report(metrics, checkpoint=checkpoint)
            else:
                import ray.train

                ray.train.report(metrics, checkpoint=checkpoint)

    @contextmanager
    def _checkpoint(self, trainer: L.Trainer):
        if not self.save_checkpoints:
            yield None
            return
        with tempfile.TemporaryDirectory(prefix="kssgan-ckpt-") as tmp:
            trainer.save_checkpoint(os.path.join(tmp, CHECKPOINT_NAME), weights_only=False)  # resumable; DDP collective
            if self.backend == "train" and trainer.global_rank != 0:
                yield None  # Ray Train keeps rank 0's checkpoint
                return
            if self.backend == "tune":
                from ray.tune import Checkpoint
            else:
                from ray.train import Checkpoint
            yield Checkpoint.from_directory(tmp)


def _node() -> tuple[str, str]:
    """(Ray node id, node IP) of the process running the trial; empty outside Ray."""
    try:
        import ray

        if not ray.is_initialized():
            return "", ""
        return ray.get_runtime_context().get_node_id(), ray.util.get_node_ip_address()
    except Exception:  # not inside Ray (a trial config run by hand)
        return "", ""


def trial_experiment(
    experiment: dict[str, Any],
    overrides: dict[str, Any],
    trial_dir: str | Path,
    settings: dict[str, Any],
    trial_name: str = "trial",
) -> dict[str, Any]:
    """The complete experiment config of one trial.

    Args:
        experiment: the experiment YAML (``experiments/<dataset>.yaml``) as loaded.
        overrides: the sampled hyper-parameters, nested like the experiment.
        trial_dir: where every output of the trial goes.
        settings: the sweep's ``budget``, ``metric``, ``wandb`` and ``resources`` sections plus
            ``group`` (the W&B group: the sweep's name).
    """
    out = Path(trial_dir).resolve()
    cfg = merge_overrides(experiment, overrides)
    for key in FIT_ONLY_KEYS:
        cfg.pop(key, None)
    trainer = cfg.setdefault("trainer", {})
    budget = settings.get("budget", {})
    for key, value in budget.items():
        trainer[key] = value
    if "val_check_interval" in budget:
        trainer["check_val_every_n_epoch"] = None
    trainer["default_root_dir"] = str(out)
    trainer["enable_progress_bar"] = False
    trainer["enable_checkpointing"] = False
    trainer["logger"] = _trial_loggers(trainer.get("logger"), out, settings, trial_name)
    callbacks = [c for c in _as_list(trainer.get("callbacks")) if _short_name(c) not in DROPPED_CALLBACKS]
    for cb in callbacks:
        if isinstance(cb, dict) and "dirpath" in cb.get("init_args", {}):
            cb["init_args"]["dirpath"] = str(out)
        if isinstance(cb, dict) and _short_name(cb) == "PrivacyMonitor":  # a trial's end: no full-photo release
            cb["init_args"] = {**(cb.get("init_args") or {}), "release_level": False}
    metric = settings["metric"]
    workers = int(settings.get("resources", {}).get("workers", 1))
    callbacks.append(
        {
            "class_path": "kssgan.tune.trainable.TuneReport",
            "init_args": {
                "objective": metric["name"],
                "weights": dict(metric.get("weights") or {}),
                "backend": "train" if workers > 1 else "tune",
                "save_checkpoints": bool(settings.get("checkpoints", {}).get("enabled", True)),
            },
        }
    )
    trainer["callbacks"] = callbacks
    if workers > 1:
        trainer["devices"] = "auto"
        trainer["strategy"] = {
            "class_path": "ray.train.lightning.RayDDPStrategy",
            "init_args": {"find_unused_parameters": True},
        }
        trainer["plugins"] = [{"class_path": "ray.train.lightning.RayLightningEnvironment"}]
    return cfg


def _as_list(value: Any) -> list[Any]:
    if value is None or value is False:
        return []
    return list(value) if isinstance(value, list) else [value]


def _short_name(entry: Any) -> str:
    path = entry.get("class_path", "") if isinstance(entry, dict) else str(entry)
    return path.rsplit(".", 1)[-1]


def _trial_loggers(loggers: Any, out: Path, settings: dict[str, Any], trial_name: str) -> list[dict[str, Any]]:
    """CSV always; W&B (offline without a key) as one run per trial in the sweep's group."""
    wandb_cfg = settings.get("wandb", {})
    use_wandb = bool(wandb_cfg.get("enabled", True))
    project = wandb_cfg.get("project", "kssgan")
    kept: list[dict[str, Any]] = []
    for entry in _as_list(loggers):
        name = _short_name(entry)
        if name == "CSVLogger":
            continue
        if "Wandb" in name:
            project = entry.get("init_args", {}).get("project", project)
            continue
        kept.append(entry)  # other loggers pass through, pointed at the trial folder
        if "save_dir" in entry.get("init_args", {}):
            entry["init_args"]["save_dir"] = str(out)
    csv = {"class_path": "lightning.pytorch.loggers.CSVLogger", "init_args": {"save_dir": str(out), "name": "logs"}}
    result = [csv]
    if use_wandb:
        result.append(
            {
                "class_path": "kssgan.loggers.KSSGANWandbLogger",
                "init_args": {
                    "save_dir": str(out),
                    "project": project,
                    "group": settings.get("group", "sweep"),
                    "name": trial_name,
                    "job_type": "sweep-trial",
                },
            }
        )
    return result + kept


def write_trial_config(cfg: dict[str, Any], trial_dir: str | Path) -> Path:
    path = Path(trial_dir) / TRIAL_CONFIG
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def fit_from_config(config_path: str | Path, checkpoint: Any = None) -> None:
    """Build the Lightning run of ``config_path`` with kssgan's CLI and fit it (resuming from a
    Ray checkpoint if given; loaded with ``weights_only=True``)."""
    from kssgan.cli import build_cli

    cli = build_cli(args=["--config", str(config_path)], run=False)
    trainer = cli.trainer
    if any(type(s).__name__ == "RayDDPStrategy" for s in [trainer.strategy]):
        from ray.train.lightning import prepare_trainer

        trainer = prepare_trainer(trainer)
    context = checkpoint.as_directory() if checkpoint is not None else nullcontext(None)
    try:
        with context as ckpt_dir:
            ckpt_path = str(Path(ckpt_dir) / CHECKPOINT_NAME) if ckpt_dir else None
            trainer.fit(cli.model, datamodule=cli.datamodule, ckpt_path=ckpt_path, weights_only=True)
    finally:
        _finish_wandb()


def _finish_wandb() -> None:
    """Close the trial's W&B run so that a reused actor starts a new run for its next trial."""
    import sys

    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()


def train_trial(config: dict[str, Any], experiment: dict[str, Any], settings: dict[str, Any]) -> None:
    """Ray Tune function trainable (bind ``experiment`` and ``settings`` with ``tune.with_parameters``)."""
    from ray import tune

    context = tune.get_context()
    trial_dir = _trial_folder(context)
    cfg = trial_experiment(experiment, config, trial_dir, settings, context.get_trial_name())
    path = write_trial_config(cfg, trial_dir)
    workers = int(settings.get("resources", {}).get("workers", 1))
    if workers <= 1:
        fit_from_config(path, tune.get_checkpoint())
        return
    _fit_with_ray_train(path, settings, context)


def _trial_folder(context: Any) -> Path:
    """Where the trial writes ``trial.yaml``, logs and samples: its folder in the sweep's output when
    that is a file system path (local, or shared by a cluster's nodes), so that they land there
    whichever actor runs the trial. Ray's ``get_trial_dir()`` is a staging folder that Tune copies
    to the output only for a fresh actor on the driver's node: a reused actor (``reuse_actors``) is
    given another one (``working_dirs/``) whose files never reach the output."""
    import pyarrow.fs

    storage = context.get_storage()
    if isinstance(storage.storage_filesystem, pyarrow.fs.LocalFileSystem):
        return Path(storage.trial_fs_path)
    return Path(context.get_trial_dir())


def _fit_with_ray_train(config_path: Path, settings: dict[str, Any], context: Any) -> None:
    """Multi-worker trial: Ray Train's TorchTrainer (DDP) launched from the function trainable.

    Its run lives in the trial's *storage* folder (``<sweep>/trials/<trial>/ray_train/<trial>``, not
    the node-local staging folder of ``get_trial_dir()``), so that the same run, with its
    checkpoint snapshot, is found again when the trial is restarted by ``--resume``: Ray Train then
    hands its latest checkpoint to the workers (``ray.train.get_checkpoint()``).
    """
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from ray.tune.integration.ray_train import TuneReportCallback

    resources = settings.get("resources", {})
    gpus = float(resources.get("gpu", 0))
    per_worker = {"CPU": float(resources.get("cpu", 1))}
    if gpus:
        per_worker["GPU"] = gpus
    storage = context.get_storage()
    metric, checkpoints = settings["metric"], settings.get("checkpoints", {})
    trainer = TorchTrainer(
        _ray_train_worker,
        train_loop_config={"config": Path(config_path).read_text()},
        scaling_config=ScalingConfig(
            num_workers=int(resources["workers"]), use_gpu=gpus > 0, resources_per_worker=per_worker
        ),
        run_config=RunConfig(
            name=context.get_trial_name(),
            storage_path=f"{storage.trial_fs_path}/{RAY_TRAIN_FOLDER}",
            storage_filesystem=storage.storage_filesystem,
            callbacks=[TuneReportCallback()],
            failure_config=FailureConfig(max_failures=0),  # a failed trial fails; the sweep goes on
            checkpoint_config=CheckpointConfig(  # as the sweep's Tune checkpoints (the latest is always kept)
                num_to_keep=checkpoints.get("num_to_keep"),
                checkpoint_score_attribute=metric["name"],
                checkpoint_score_order=metric["mode"],
            ),
        ),
    )
    trainer.fit()


def _ray_train_worker(loop_config: dict[str, Any]) -> None:
    """One DDP rank. The trial config travels as text: the trial folder it was written to is local
    to the node of the trial's own process, and workers may run on other nodes."""
    import ray.train

    with tempfile.TemporaryDirectory(prefix="kssgan-trial-") as tmp:
        path = Path(tmp) / TRIAL_CONFIG
        path.write_text(loop_config["config"])
        fit_from_config(path, ray.train.get_checkpoint())


__all__ = [
    "CHECKPOINT_NAME",
    "RAY_TRAIN_FOLDER",
    "TRIAL_CONFIG",
    "TrialDiverged",
    "TuneReport",
    "fit_from_config",
    "train_trial",
    "trial_experiment",
    "write_trial_config",
]
