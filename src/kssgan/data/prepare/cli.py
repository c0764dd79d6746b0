"""``kssgan prepare``: the command line of :func:`~kssgan.data.prepare.prepare_dataset`.

One config system (:func:`kssgan.job_config.job_parser`): a dataset recipe
(``data_modules/<name>.yaml``) is a config file whose keys are the options below (``grouping:``
and ``labels:`` are nested blocks: ``grouping.stratify`` …); ``--dataset NAME`` reads
``data_modules/NAME.yaml`` before every other option, ``--config FILE`` where it stands (later
options override earlier ones). A key that is no option is an error; ``--print_config`` prints
the merged config, which ``--config`` reads back.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal

from kssgan.data.grouping import GroupingError
from kssgan.data.prepare.grouping_step import regroup
from kssgan.data.prepare.recipe import PATH_KEYS, READERS, expand, find_recipe, resolve_path
from kssgan.data.prepare.run import prepare_dataset
from kssgan.data.prepare.store import PrepareConfigMismatch
from kssgan.data.prepare.workers import WorkersFailed

# recipe keys that go to the reader (kssgan.data.readers); None leaves the reader's default
READER_KEYS = (
    "labels_csv",
    "protocol",
    "angles",
    "gazes",
    "expressions",
    "attributes",
    "max_identities",
    "open_set_fraction",
)
EPILOG = (
    "--dataset NAME reads the recipe data_modules/NAME.yaml before every other option;\n"
    "--grouping METHOD is short for --grouping.method METHOD.\n\n"
    "examples:\n"
    "  kssgan prepare --dataset folder --data-dir ../shared/datasets/yale --k 3\n"
    "  kssgan prepare --config data_modules/orl.yaml\n"
    "  kssgan prepare --config data_modules/london.yaml --workers 16       # 16 processes\n"
    "  RAY_ADDRESS=head:6379 kssgan prepare --config data_modules/celeba.yaml  # Ray tasks on a cluster\n"
    "  kssgan prepare --config data_modules/orl.yaml --print_config   # the merged config, as YAML\n"
    "  kssgan prepare --regroup outputs/prepared/yale --k 5 --groups-out groups_k5.json"
)


def build_parser() -> Any:
    """The jsonargparse parser of ``kssgan prepare`` (its keys are a recipe's keys)."""
    from kssgan.job_config import job_parser

    p = job_parser(
        "kssgan prepare",
        "Detect, align and crop faces, embed them and build k-Same groups (a prepared dataset).",
        EPILOG,
    )
    p.add_argument("--name", type=str | None, help="dataset name (default: the recipe's, else the data dir's)")
    p.add_argument("--reader", choices=list(READERS), default="folder", help="how the raw folder is laid out")
    p.add_argument("--data-dir", type=str | None, help="raw dataset root (${VAR:-default} and ~ expanded)")
    p.add_argument(
        "--prepared-dir", "--out", type=str | None, help="prepared folder (default: outputs/prepared/<name>)"
    )
    p.add_argument("--labels-csv", type=str | None, help="folder reader: labels.csv relative to the data dir")
    p.add_argument("--protocol", type=Literal["closed_set", "identity_disjoint"] | None, help="split protocol")
    p.add_argument("--max-identities", type=int | None, help="keep only the first N identities (subsets)")
    p.add_argument(
        "--open-set-fraction",
        type=float | None,
        help="hold this share of the identities out of training and grouping (split 'stranger'): "
        "kssgan evaluate releases and attacks them as strangers",
    )
    p.add_argument("--angles", type=list[int] | None, help="rafd reader: camera angles kept")
    p.add_argument("--gazes", type=list[str] | None, help="rafd reader: gazes kept (null: all)")
    p.add_argument("--expressions", type=list[str] | None, help="rafd reader: expressions kept (null: all)")
    p.add_argument("--attributes", type=list[str] | None, help="celeba reader: attribute columns kept (null: all)")
    p.add_argument("--reader-options", type=dict | None, help="further reader keyword arguments")
    p.add_argument(
        "--allow-outside-root", action="store_true", help="folder reader: read labels.csv paths outside --data-dir"
    )
    p.add_argument("--limit", type=int | None, help="process only the first N images")
    p.add_argument("--image-size", type=int, default=128)
    p.add_argument("--margin", type=float, default=0.0, help="zoom out the crop (0 = ArcFace framing)")
    p.add_argument("--detector", choices=["yunet", "insightface"], default="yunet")
    p.add_argument("--det-score-threshold", type=float, default=0.6, help="weakest detection kept")
    p.add_argument("--recogniser", "--recognizer", choices=["sface", "dlib", "insightface"], default="sface")
    p.add_argument("--model-dir", type=str | None, help="folder with insightface ONNX files (never downloaded)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--min-face", type=float, default=24.0, help="smallest face (box side, px) kept")
    p.add_argument(
        "--workers", type=int | None, help="processes doing the per-photo work (default: this machine's cores)"
    )
    p.add_argument(
        "--ray",
        type=bool | None,
        help="run the per-photo work as Ray tasks (default: true when RAY_ADDRESS or --ray-address is set)",
    )
    p.add_argument(
        "--ray-address", type=str | None, help="Ray cluster to join (default: $RAY_ADDRESS; none: local Ray)"
    )
    p.add_argument("--chunk-size", type=int | None, help="photos a worker takes at a time (default: 4 ... 32)")
    p.add_argument("--k", type=int | None, help="group size (default 3; --regroup needs it)")
    p.add_argument("--grouping.method", choices=["mdav", "random"], default="mdav", help="grouping method")
    p.add_argument("--grouping.seed", "--seed", type=int, default=0)
    p.add_argument("--grouping.stratify", "--stratify", type=str | None, help="no group mixes values of this attribute")
    p.add_argument(
        "--grouping.kind",
        type=dict[str, float] | None,
        help="group on these beside identity, by weight: {tone: 0.5, age: 0.5} (skin colour, age; docs/evaluation.md)",
    )
    p.add_argument("--labels.onehot", type=list[str] | None, help="manifest columns one-hot in the domain label")
    p.add_argument("--labels.binary", type=list[str] | None, help="0/1 manifest columns in the domain label")
    p.add_argument("--overwrite", action="store_true", help="start over instead of resuming")
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--regroup", type=str | None, metavar="PREPARED_DIR", help="only rebuild groups.json of a folder")
    p.add_argument("--groups-out", type=str | None, help="with --regroup: output file (default groups.json in it)")
    return p


class _UsageError(ValueError):
    """A mistake on the command line: one line, exit code 2."""


def _rewrite(argv: list[str]) -> list[str]:
    """``--dataset NAME`` → ``--config data_modules/NAME.yaml`` first; ``--grouping M`` →
    ``--grouping.method M`` (the flags ``kssgan prepare`` always had)."""
    out: list[str] = []
    recipes: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        flag, eq, value = arg.partition("=")
        if flag in ("--dataset", "--grouping"):
            if not eq:
                if i + 1 >= len(argv):
                    raise _UsageError(f"{flag} needs a value")
                value, i = argv[i + 1], i + 1
            if flag == "--grouping":
                out += ["--grouping.method", value]
            else:
                recipe = find_recipe(value)
                if recipe is not None:
                    recipes += ["--config", str(recipe)]
                elif value in READERS:
                    recipes += ["--name", value, "--reader", value]
                else:
                    raise _UsageError(f"no recipe data_modules/{value}.yaml and not a reader name")
        else:
            out.append(arg)
        i += 1
    return recipes + out


def _job(cfg: Any) -> dict[str, Any]:
    """The keyword arguments of :func:`prepare_dataset` for a parsed config."""
    if not cfg.data_dir:
        raise _UsageError("give --data-dir or a recipe with data_dir")
    data_dir = resolve_path(expand(cfg.data_dir))
    # a reader's template recipe (name: folder …) without a prepared_dir names the dataset after its folder
    name = cfg.name
    if name is None or (name in READERS and not cfg.prepared_dir):
        name = Path(data_dir).resolve().name
    reader_options = dict(cfg.reader_options or {})
    for key in READER_KEYS:
        value = cfg[key]
        if value is not None:
            reader_options[key] = expand(value) if key in PATH_KEYS and isinstance(value, str) else value
    if cfg.workers is not None and cfg.workers < 1:
        raise _UsageError(f"--workers must be at least 1, got {cfg.workers}")
    if cfg.chunk_size is not None and cfg.chunk_size < 1:
        raise _UsageError(f"--chunk-size must be at least 1, got {cfg.chunk_size}")
    if cfg.allow_outside_root:
        reader_options["allow_outside_root"] = True
    blocks = (("onehot", cfg.labels.onehot), ("binary", cfg.labels.binary))
    labels = {key: list(value) for key, value in blocks if value is not None}
    return {
        "raw_root": data_dir,
        "out_dir": expand(cfg.prepared_dir) if cfg.prepared_dir else f"outputs/prepared/{name}",
        "reader": cfg.reader,
        "image_size": cfg.image_size,
        "detector": cfg.detector,
        "recogniser": cfg.recogniser,
        "k": 3 if cfg.k is None else cfg.k,
        "grouping_method": cfg.grouping.method,
        "seed": cfg.grouping.seed,
        "grouping_stratify": cfg.grouping.stratify,
        "grouping_kind": cfg.grouping.kind,
        "model_dir": expand(cfg.model_dir) if cfg.model_dir else None,
        "reader_options": reader_options,
        "margin": cfg.margin,
        "min_face": cfg.min_face,
        "det_score_threshold": cfg.det_score_threshold,
        "device": cfg.device,
        "limit": cfg.limit,
        "progress": not cfg.no_progress,
        "overwrite": cfg.overwrite,
        "labels": labels,
        "name": name,
        "workers": cfg.workers,
        "ray": cfg.ray,
        "ray_address": cfg.ray_address,
        "chunk_size": cfg.chunk_size,
    }


def _regroup(cfg: Any) -> int:
    if cfg.k is None:
        print("kssgan prepare --regroup needs --k", file=sys.stderr)
        return 2
    g = cfg.grouping
    try:
        a = regroup(cfg.regroup, cfg.k, g.method, g.seed, cfg.groups_out, g.stratify, g.kind)
    except (GroupingError, FileNotFoundError) as err:
        print(f"kssgan prepare: {err}", file=sys.stderr)
        return 1
    print(json.dumps({"k": a.k, "num_groups": a.num_groups, "group_sizes": a.group_sizes, "audit": a.audit() or "ok"}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``kssgan prepare``; returns a process exit code (0 ok, 1 grouping failed, 2 bad input)."""
    from kssgan.data.readers import DatasetLayoutError

    try:
        args = _rewrite(list(sys.argv[1:] if argv is None else argv))
        cfg = build_parser().parse_args(args)
        if cfg.regroup:
            return _regroup(cfg)
        job = _job(cfg)
        prepare_dataset(**job)
    except (_UsageError, DatasetLayoutError, PrepareConfigMismatch, FileNotFoundError) as err:
        print(f"kssgan prepare: {err}", file=sys.stderr)
        return 2
    except WorkersFailed as err:
        print(f"kssgan prepare: {err}", file=sys.stderr)
        return 1
    except GroupingError as err:
        print(
            f"kssgan prepare: grouping failed: {err} (crops and manifest are kept; use --regroup with a smaller k)",
            file=sys.stderr,
        )
        return 1
    print(f"prepared dataset written to {job['out_dir']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
