"""``kssgan sweep``: Ray Tune hyper-parameter search over an experiment.

    kssgan sweep --sweep sweeps/pso.yaml --dataset demo --trials 8
    kssgan sweep --sweep sweeps/pso.yaml --dataset demo --resume          # continue an interrupted sweep
    RAY_ADDRESS=ray://head:10001 kssgan sweep --sweep sweeps/hyperopt.yaml --dataset yale

Writes to ``<output>`` (default ``outputs/sweeps/<sweep>-<dataset>``):

    trials.csv, trials.md     one row per trial: status, objective, sampled values, error if any
    best.yaml                 the experiment with the best trial's values: ``kssgan fit --config best.yaml``
    objective.png             the objective of every trial, in order, with the best so far
    trials/                   Ray Tune's experiment folder (one sub-folder per trial, resumable)
"""

from __future__ import annotations

import copy
import importlib
import math
import sys
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace

from kssgan.job_config import job_parser
from kssgan.tune.cluster import init_ray, quiet_ray_environment
from kssgan.tune.plot import plot_objective
from kssgan.tune.space import build_search_space, flatten_config, merge_overrides
from kssgan.tune.trainable import TRIAL_CONFIG

EXPERIMENT_FOLDER = "trials"
DDP_DRIVER_CPU = 0.01  # Ray refuses a zero-resource trial; the DDP trial's own process is idle
SWEEP_DEFAULTS: dict[str, Any] = {
    "trials": 8,
    "seed": 0,
    "max_concurrent": 1,
    "reuse_actors": True,
    "resources": {"cpu": 1, "gpu": 0, "workers": 1},
    "wandb": {"enabled": True},
    # 2, not 1: Ray deletes a trial's previous checkpoint when a better one is written, before its
    # experiment state records the new one; a kill -9 in between left the state pointing at nothing
    "checkpoints": {"enabled": True, "num_to_keep": 2},
    "scheduler": {"kind": "fifo"},
}
SWEEP_SECTIONS = {*SWEEP_DEFAULTS, "name", "searcher", "metric", "budget", "space", "verbose"}


def load_sweep(path: str | Path) -> dict[str, Any]:
    """A ``sweeps/*.yaml`` with defaults filled in and its sections checked."""
    raw = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: a sweep file is a mapping of sections")
    unknown = sorted(set(raw) - SWEEP_SECTIONS)
    if unknown:
        raise ValueError(f"{path}: unknown sweep sections {unknown}; known: {sorted(SWEEP_SECTIONS)}")
    cfg = copy.deepcopy(SWEEP_DEFAULTS)
    for key, value in raw.items():
        if isinstance(value, dict) and isinstance(cfg.get(key), dict):
            cfg[key] = {**cfg[key], **value}
        else:
            cfg[key] = value
    cfg.setdefault("name", Path(path).stem)
    for key in ("searcher", "metric", "budget", "space"):
        if not cfg.get(key):
            raise ValueError(f"{path}: the sweep needs a `{key}:` section")
    if cfg["metric"].get("mode") not in ("min", "max") or not cfg["metric"].get("name"):
        raise ValueError(f"{path}: metric needs a name and mode: min|max")
    if "max_steps" not in cfg["budget"]:
        raise ValueError(f"{path}: budget needs max_steps (Lightning steps: critic + generator)")
    return cfg


def experiment_path(dataset: str | None, experiment: str | None) -> Path:
    """``--experiment`` as given, else ``experiments/<dataset>.yaml``."""
    if experiment:
        return Path(experiment)
    path = Path("experiments") / f"{dataset}.yaml"
    if not path.is_file():
        available = " ".join(sorted(p.stem for p in Path("experiments").glob("*.yaml")))
        raise FileNotFoundError(f"no experiment config {path}; available: {available or 'none'}")
    return path


def load_experiment(path: Path) -> dict[str, Any]:
    """The experiment as ``kssgan fit`` composes it: ``experiments/base.yaml`` then the delta."""
    from kssgan.experiment_config import load_experiment as compose_experiment

    return compose_experiment(path)


def for_trials(experiment: dict[str, Any]) -> dict[str, Any]:
    """The experiment with its prepared-data folder made absolute (trials run in their own folders)."""
    cfg = copy.deepcopy(experiment)
    init = cfg.get("data", {}).get("init_args", {})
    if "prepared_dir" in init:
        init["prepared_dir"] = str(Path(init["prepared_dir"]).resolve())
    return cfg


def prepare_data_once(experiment: dict[str, Any]) -> None:
    """Build the prepared dataset (the demo generates itself) before trials start, not in each."""
    data = experiment.get("data", {})
    class_path = data.get("class_path") if isinstance(data, dict) else None
    if not class_path:
        return
    module, name = class_path.rsplit(".", 1)
    dm = getattr(importlib.import_module(module), name)(**data.get("init_args", {}))
    dm.prepare_data()
    _ = dm.label_spec  # fails here, with the "how to prepare" hint, when the data is missing


def parse_args(argv: list[str]) -> Namespace:
    """The job's options: flags, or any of them by name in a ``--config`` YAML (``--print_config``)."""
    p = job_parser(
        "kssgan sweep",
        "Ray Tune hyper-parameter search",
        "--config FILE sets these options (sweep: sweeps/pso.yaml, dataset: demo, trials: 8); the search "
        "itself (space, searcher, metric, budget) is the --sweep file.",
    )
    p.add_argument("--sweep", type=str, required=True, help="sweep config, e.g. sweeps/pso.yaml")
    p.add_argument("--dataset", type=str, default="demo", help="experiment name: experiments/<dataset>.yaml")
    p.add_argument("--experiment", type=str, help="experiment YAML path (overrides --dataset)")
    p.add_argument("--trials", type=int, help="number of trials (default: the sweep's `trials`)")
    p.add_argument("--max-concurrent", type=int, help="trials at a time (default: the sweep's)")
    p.add_argument("--output", type=str, help="sweep folder (default outputs/sweeps/<sweep>-<dataset>)")
    p.add_argument("--resume", action="store_true", help="continue the interrupted sweep in --output")
    p.add_argument("--address", type=str, help="Ray cluster to join (default: $RAY_ADDRESS, else a local Ray)")
    p.add_argument("--no-wandb", action="store_true", help="CSV logs only")
    return p.parse_args(argv)


def run_sweep(args: Namespace) -> dict[str, Any]:
    """Run (or resume) the sweep; returns the summary (paths, counts, best trial)."""
    sweep = load_sweep(args.sweep)  # a bad sweep or experiment fails before Ray starts
    exp_path = experiment_path(args.dataset, args.experiment)
    experiment = load_experiment(exp_path)  # as written: the base of best.yaml
    quiet_ray_environment()
    from ray import tune

    from kssgan.tune.searchers import build_scheduler, build_searcher
    from kssgan.tune.trainable import train_trial

    trial_base = for_trials(experiment)
    dataset = args.dataset if not args.experiment else exp_path.stem
    out = Path(args.output or Path("outputs") / "sweeps" / f"{sweep['name']}-{dataset}").resolve()
    trials = int(args.trials or sweep["trials"])
    concurrent = int(args.max_concurrent or sweep["max_concurrent"])
    if args.no_wandb:
        sweep["wandb"]["enabled"] = False
    metric, mode = sweep["metric"]["name"], sweep["metric"]["mode"]
    settings = {k: sweep[k] for k in ("budget", "metric", "wandb", "resources", "checkpoints")}
    settings["group"] = out.name
    exp_dir = out / EXPERIMENT_FOLDER

    prepare_data_once(trial_base)
    init_ray(args.address, output_root=Path("outputs").resolve())
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, experiment=trial_base, settings=settings),
        trial_resources(sweep["resources"]),
    )
    if tune.Tuner.can_restore(str(exp_dir)):
        if not args.resume:
            raise FileExistsError(f"{out} already holds a sweep: add --resume to continue it, or pick --output")
        print(f"kssgan sweep: resuming {exp_dir}", file=sys.stderr)
        tuner = tune.Tuner.restore(str(exp_dir), trainable=trainable, resume_unfinished=True, resume_errored=False)
    else:
        budget = sweep["budget"]
        interval = max(1, int(budget.get("val_check_interval", budget["max_steps"])))
        max_reports = math.ceil(budget["max_steps"] / interval)
        tuner = tune.Tuner(
            trainable,
            param_space=build_search_space(sweep["space"]),
            tune_config=tune.TuneConfig(
                metric=metric,
                mode=mode,
                num_samples=trials,
                search_alg=build_searcher(sweep["searcher"], trials, concurrent, sweep["seed"]),
                scheduler=build_scheduler(sweep.get("scheduler"), max_reports),
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
                reuse_actors=bool(sweep["reuse_actors"]),
            ),
            run_config=tune.RunConfig(
                name=EXPERIMENT_FOLDER,
                storage_path=str(out),
                failure_config=tune.FailureConfig(max_failures=0, fail_fast=False),
                checkpoint_config=tune.CheckpointConfig(
                    num_to_keep=sweep["checkpoints"].get("num_to_keep"),
                    checkpoint_score_attribute=metric,
                    checkpoint_score_order=mode,
                ),
                verbose=int(sweep.get("verbose", 1)),
            ),
        )
    results = tuner.fit()
    table = results_table(results, metric, mode)
    summary = write_results(table, out, metric, mode, experiment, exp_path, sweep)
    summary["expected_trials"] = trials
    return summary


def _trial_name(trial: Any) -> str:
    """Short trial folder names (Ray's default repeats every sampled value)."""
    return f"trial_{trial.trial_id}"


def trial_resources(resources: dict[str, Any]) -> dict[str, float]:
    """Tune resources of one trial. A multi-worker (DDP) trial's own process only waits on its Ray
    Train workers, which reserve ``cpu``/``gpu`` each; it holds ``driver_cpu`` (a sliver)."""
    if int(resources.get("workers", 1)) > 1:
        return {"cpu": float(resources.get("driver_cpu", DDP_DRIVER_CPU))}
    out: dict[str, float] = {"cpu": float(resources.get("cpu", 1)), "gpu": float(resources.get("gpu", 0))}
    out.update({k: float(v) for k, v in (resources.get("custom") or {}).items()})
    return out


def results_table(results: Any, metric: str, mode: str) -> list[dict[str, Any]]:
    """One row per trial: its best ``metric`` over its reports, its sampled values, its status."""
    rows = []
    for result in results:
        row: dict[str, Any] = {"trial": Path(result.path).name if result.path else ""}
        history = result.metrics_dataframe
        best = None
        if history is not None and metric in history and history[metric].notna().any():
            best = history.loc[history[metric].idxmin() if mode == "min" else history[metric].idxmax()]
        last = result.metrics or {}
        row["status"] = "error" if result.error else "ok"
        row[metric] = float(best[metric]) if best is not None else float("nan")
        row["reports"] = int(last.get("training_iteration", 0) or 0)
        row["global_step"] = int(last.get("global_step", 0) or 0)
        row["world_size"] = int(last.get("world_size", 0) or 0)
        row["checkpoint"] = _checkpoint_path(result, last)
        for key, value in flatten_config(result.config or {}).items():
            row[key] = value
        row["node_id"] = str(last.get("node_id", ""))[:12]
        row["error"] = _first_line(result.error) if result.error else ""
        row["path"] = result.path or ""
        rows.append(row)
    rows.sort(key=lambda r: r["trial"])
    return rows


def _checkpoint_path(result: Any, last: dict[str, Any]) -> str:
    """The trial's latest checkpoint folder: Tune's, or for a multi-worker trial Ray Train's (under
    the trial's ``ray_train/``; Tune only gets its path, as the ``checkpoint_path`` metric)."""
    checkpoint = getattr(result, "checkpoint", None)
    if checkpoint is not None:
        return str(checkpoint.path)
    return str(last.get("checkpoint_path", "") or "")


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    lines = [ln for ln in text if ln.strip()]
    for ln in reversed(lines):  # Ray wraps the trial's exception; its own message is last
        if "Error" in ln or "Diverged" in ln:
            return ln.strip()[:200]
    return (lines[-1] if lines else type(error).__name__)[:200]


def best_row(table: list[dict[str, Any]], metric: str, mode: str) -> dict[str, Any] | None:
    ok = [r for r in table if r["status"] == "ok" and math.isfinite(r[metric])]
    if not ok:
        return None
    return (min if mode == "min" else max)(ok, key=lambda r: r[metric])


def markdown_table(table: list[dict[str, Any]], columns: list[str]) -> str:
    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in columns) + " |" for r in table]
    return "\n".join(lines) + "\n"


def best_experiment(experiment: dict[str, Any], overrides: dict[str, Any], suffix: str = "_best") -> dict[str, Any]:
    """The experiment with the best values, its outputs moved to ``<default_root_dir><suffix>``
    so that training it does not overwrite the original run."""
    cfg = merge_overrides(experiment, overrides)
    trainer = cfg.get("trainer", {})
    root = trainer.get("default_root_dir")
    if isinstance(root, str) and root:
        cfg["trainer"] = _replace_prefix(trainer, root.rstrip("/"), root.rstrip("/") + suffix)
    for logger in cfg.get("trainer", {}).get("logger") or []:
        init = logger.get("init_args", {}) if isinstance(logger, dict) else {}
        if "Wandb" in str(logger.get("class_path", "")) and "name" in init:
            init["name"] = f"{init['name']}{suffix}"
    from kssgan.experiment_config import resolve

    return resolve(cfg)  # a standalone config: ${trainer.default_root_dir} paths written out


def _replace_prefix(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: _replace_prefix(v, old, new) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_prefix(v, old, new) for v in node]
    if isinstance(node, str) and (node == old or node.startswith(old + "/")):
        return new + node[len(old) :]
    return node


def write_results(
    table: list[dict[str, Any]],
    out: Path,
    metric: str,
    mode: str,
    experiment: dict[str, Any],
    exp_path: Path,
    sweep: dict[str, Any],
) -> dict[str, Any]:
    """trials.csv, trials.md, objective.png and best.yaml in ``out``; returns a summary."""
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    df = pd.DataFrame(table)
    df.to_csv(out / "trials.csv", index=False)
    space_cols = [c for c in df.columns if c.startswith(("model.", "data.", "trainer."))]
    columns = ["trial", "status", metric, "reports", "global_step", *space_cols, "node_id", "error"]
    best = best_row(table, metric, mode)
    header = f"# Sweep `{sweep['name']}` on `{exp_path}`: {len(table)} trials, metric `{metric}` ({mode})\n\n"
    if best is not None:
        header += f"Best: `{best['trial']}` with {metric} = {best[metric]:.4g}; config: `best.yaml`.\n\n"
    (out / "trials.md").write_text(header + markdown_table(table, [c for c in columns if c in df.columns]))
    summary: dict[str, Any] = {
        "output": out,
        "trials": len(table),
        "ok": sum(r["status"] == "ok" for r in table),
        "errors": sum(r["status"] == "error" for r in table),
        "table_csv": out / "trials.csv",
        "table_md": out / "trials.md",
        "best": best,
        "best_config": None,
    }
    if best is not None:
        trial_cfg = Path(best["path"]) / TRIAL_CONFIG if best["path"] else None
        sampled = {k: v for k, v in best.items() if k in space_cols}
        nested: dict[str, Any] = {}
        for key, value in sampled.items():
            from kssgan.tune.space import set_path

            set_path(nested, key, value)
        cfg = best_experiment(experiment, nested)
        note = (
            f"# Best of sweep {sweep['name']} ({out}): trial {best['trial']}, {metric} = {best[metric]:.6g} ({mode}).\n"
            f"# Sampled values merged into {exp_path}; train it with: kssgan fit --config {out / 'best.yaml'}\n"
            + (f"# The trial's own (short-budget) config: {trial_cfg}\n" if trial_cfg else "")
        )
        (out / "best.yaml").write_text(note + yaml.safe_dump(cfg, sort_keys=False))
        summary["best_config"] = out / "best.yaml"
    summary["plot"] = plot_objective(table, metric, mode, out / "objective.png")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        summary = run_sweep(args)
    except (FileNotFoundError, FileExistsError, ValueError) as err:
        print(f"kssgan sweep: {err}", file=sys.stderr)
        return 2
    best = summary["best"]
    counts = f"{summary['trials']} trials ({summary['ok']} ok, {summary['errors']} failed)"
    print(f"kssgan sweep: {counts} → {summary['output']}")
    print(f"  table: {summary['table_csv']}  {summary['table_md']}")
    if summary["trials"] < summary["expected_trials"]:
        print(f"  stopped early: continue with the same command plus --resume (output {summary['output']})")
    if best is None:
        print("  no trial finished: see the errors in the table", file=sys.stderr)
        return 1
    print(f"  best: {best['trial']}  → kssgan fit --config {summary['best_config']}")
    return 0


__all__ = ["best_experiment", "load_sweep", "main", "results_table", "run_sweep", "write_results"]
