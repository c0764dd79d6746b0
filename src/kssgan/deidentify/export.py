"""``kssgan export``: write a checkpoint's generator to ONNX and check it against torch with onnxruntime.

    kssgan export --ckpt model.ckpt [--output model.onnx] [--opset 17]
    kssgan export --config export.yaml          # the same options from YAML (--print_config shows them)

The ONNX graph has inputs ``image`` (N×3×S×S, [-1, 1]) and ``label`` (N×C) with a dynamic batch axis
and output ``output``. The checkpoint's image size, label spec and groups are stored as metadata, so
``kssgan deidentify --backend onnxruntime`` can refuse an export that does not match its checkpoint.
Export uses the TorchScript-based exporter (``dynamo=False``).
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from jsonargparse import ArgumentParser

from kssgan.deidentify.backends import ONNX_META_GROUPS, ONNX_META_IMAGE_SIZE, ONNX_META_LABEL_SPEC, OnnxGenerator
from kssgan.deidentify.options import DeidentifyError
from kssgan.job_config import job_parser

DEFAULT_OPSET = 17
VERIFY_BATCH = 2
VERIFY_TOLERANCE = 1e-3  # max |torch - onnxruntime| on the tanh output, fp32


def export_generator(
    generator: torch.nn.Module,
    label_dim: int,
    image_size: int,
    path: str | Path,
    metadata: dict[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
) -> Path:
    """Export ``generator`` (``G(image, label)``) to ``path`` with a dynamic batch axis."""
    import onnx

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    gen = generator.float().cpu().eval()
    x = torch.zeros(VERIFY_BATCH, 3, image_size, image_size)
    c = torch.zeros(VERIFY_BATCH, label_dim)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            gen,
            (x, c),
            str(path),
            input_names=["image", "label"],
            output_names=["output"],
            dynamic_axes={"image": {0: "batch"}, "label": {0: "batch"}, "output": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    model = onnx.load(str(path))
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.save(model, str(path))
    return path


def verify_export(
    generator: torch.nn.Module, path: str | Path, label_dim: int, image_size: int, seed: int = 0
) -> float:
    """Max absolute difference between torch and onnxruntime on random inputs."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(VERIFY_BATCH, 3, image_size, image_size, generator=g) * 2 - 1
    c = torch.zeros(VERIFY_BATCH, label_dim)
    c[torch.arange(VERIFY_BATCH), torch.randint(0, label_dim, (VERIFY_BATCH,), generator=g)] = 1
    with torch.inference_mode():
        ref = generator.float().cpu().eval()(x, c).numpy()
    out = OnnxGenerator(path, "cpu")(x.numpy(), c.numpy())
    return float(np.abs(out - ref).max())


def export_checkpoint(ckpt: str | Path, output: str | Path | None = None, opset: int = DEFAULT_OPSET) -> Path:
    from kssgan.safe_checkpoint import CheckpointError, load_model

    ckpt = Path(ckpt)
    try:
        model = load_model(ckpt)
    except CheckpointError as err:
        raise DeidentifyError(str(err)) from err
    size = int(model.hparams.image_size)
    meta = {
        ONNX_META_IMAGE_SIZE: str(size),
        ONNX_META_LABEL_SPEC: model.spec.to_dict(),
        ONNX_META_GROUPS: model.groups,
    }
    out = Path(output) if output else ckpt.with_suffix(".onnx")
    return export_generator(model.release_generator(), model.spec.dim, size, out, meta, opset)


def build_parser() -> ArgumentParser:
    """The ``kssgan export`` parser (:func:`kssgan.job_config.job_parser`: ``--config``, ``--print_config``)."""
    p = job_parser("kssgan export", "export the generator to ONNX")
    p.add_argument("--ckpt", type=str, required=True, help="trained kssgan checkpoint (.ckpt)")
    p.add_argument("--output", type=str, help="ONNX path (default: the checkpoint's path with .onnx)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, help="ONNX opset version")
    p.add_argument("--no-verify", action="store_true", help="skip the onnxruntime vs torch check")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        path = export_checkpoint(args.ckpt, args.output, args.opset)
        print(f"wrote {path}")
        if not args.no_verify:
            from kssgan.system import load_kssgan

            model = load_kssgan(args.ckpt)
            diff = verify_export(model.release_generator(), path, model.spec.dim, int(model.hparams.image_size))
            ok = diff <= VERIFY_TOLERANCE
            verdict = "ok" if ok else "ABOVE"
            print(f"onnxruntime vs torch: max |diff| = {diff:.2e} ({verdict} tolerance {VERIFY_TOLERANCE})")
            return 0 if ok else 1
        return 0
    except DeidentifyError as err:
        print(f"kssgan export: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
