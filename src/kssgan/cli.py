"""``kssgan`` command line: Lightning's CLI for training, plus one sub-command per job.

    kssgan fit --config experiments/demo.yaml      # train (also validate, test, predict)
    kssgan prepare ...                             # photos -> aligned crops, groups, labels
    kssgan audit-groups outputs/prepared/yale/groups.json
    kssgan evaluate / deidentify / export / sweep / bench
    kssgan keygen / reidentify                     # sealed re-identification (kssgan.seal)

The job modules are imported only when their command is run, so ``kssgan fit`` does not pay for
OpenCV models, Ray or W&B.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

JOBS: dict[str, tuple[str, str]] = {
    "prepare": ("kssgan.data.prepare", "photos → aligned crops, manifest, k-Same groups"),
    "audit-groups": ("kssgan.data.audit", "check that every group holds at least k identities"),
    "demo-data": ("kssgan.data.demo", "generate the synthetic demo dataset"),
    "evaluate": ("kssgan.evaluate.cli", "privacy, utility and quality report"),
    "deidentify": ("kssgan.deidentify.cli", "de-identify images, folders and videos"),
    "keygen": ("kssgan.seal.cli:keygen", "the data holder's key pair for sealed re-identification"),
    "reidentify": ("kssgan.seal.cli:reidentify", "read a sealed release mapping with the holder's key"),
    "export": ("kssgan.deidentify.export", "export the generator to ONNX"),
    "sweep": ("kssgan.tune.sweep", "Ray Tune hyper-parameter search"),
    "bench": ("kssgan.bench", "speed and memory benchmarks (JSON)"),
}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def build_cli(args: Any = None, run: bool = True, **kwargs: Any):
    """Lightning's CLI over :class:`KSSGAN` and any :class:`FaceDataModule` subclass."""
    from jsonargparse import set_parsing_settings
    from lightning.pytorch.cli import LightningArgumentParser, LightningCLI

    from kssgan.data.datamodule import FaceDataModule
    from kssgan.system import KSSGAN

    class KSSGANCLI(LightningCLI):
        def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
            # What the model needs to know about the data is taken from the data, never repeated.
            parser.link_arguments("data", "model.label_spec", lambda dm: dm.label_spec_dict, apply_on="instantiate")
            parser.link_arguments("data", "model.groups", lambda dm: dm.groups_dict, apply_on="instantiate")
            parser.link_arguments("data", "model.image_size", lambda dm: dm.image_size, apply_on="instantiate")

        def before_instantiate_classes(self) -> None:
            cfg = self.config.get(self.subcommand) if self.subcommand else self.config
            if cfg is not None and "trainer" in cfg:
                cfg.trainer.precision = resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator)

    kwargs.setdefault("save_config_kwargs", {"overwrite": True})
    # omegaconf+: ${trainer.default_root_dir} in experiments/base.yaml is resolved once, after every
    # --config is merged, so a dataset's file sets the root and every path under it follows.
    set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    return KSSGANCLI(
        KSSGAN,
        FaceDataModule,
        subclass_mode_data=True,
        args=args,
        run=run,
        parser_kwargs={"parser_mode": "omegaconf+"},
        **kwargs,
    )


def resolve_precision(precision: str | int | None, accelerator: str | None = "auto") -> str | int | None:
    """One config for every machine: fp16 autocast (``16-mixed``) needs CUDA; on a CPU it becomes
    ``bf16-mixed``, the CPU's mixed-precision format. Everything else is passed through."""
    import torch

    if str(precision) in ("16-mixed", "16") and (accelerator == "cpu" or not torch.cuda.is_available()):
        print("kssgan: precision 16-mixed needs a CUDA GPU; using bf16-mixed on this CPU", file=sys.stderr)
        return "bf16-mixed"
    return precision


def user_error(err: BaseException) -> BaseException | None:
    """The innermost exception of ``err``'s cause chain when kssgan raised it on purpose about the
    user's input (a ValueError/FileNotFoundError/KeyError from kssgan's own code), else None."""
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    if not isinstance(inner, (ValueError, FileNotFoundError, KeyError)):
        return None
    tb = inner.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return inner if tb is not None and f"{os.sep}kssgan{os.sep}" in tb.tb_frame.f_code.co_filename else None


def with_base_experiment(argv: list[str]) -> list[str]:
    """``argv`` with ``experiments/base.yaml`` put before the first ``--config`` that is a delta of it
    (a file with a ``base.yaml`` beside it), unless the base is already given: the dataset files are
    short deltas, and one alone would silently train the library defaults instead of the recipe."""
    from kssgan.experiment_config import BASE_NAME, experiment_files

    configs = [
        (i, a.split("=", 1)[1] if a.startswith("--config=") else argv[i + 1])
        for i, a in enumerate(argv)
        if a.startswith("--config=") or (a == "--config" and i + 1 < len(argv))
    ]
    if not configs or any(Path(c).name == BASE_NAME for _, c in configs):
        return argv
    i, first = configs[0]
    files = experiment_files(first)
    if len(files) == 1:
        return argv
    print(f"kssgan: composing {files[0]} before {first} (the experiments' shared base)", file=sys.stderr)
    return [*argv[:i], "--config", str(files[0]), *argv[i:]]


def _usage() -> str:
    lines = ["usage: kssgan COMMAND [options]", "", "training (Lightning CLI):"]
    lines += [f"  {c:<14} see `kssgan {c} --help`" for c in LIGHTNING_COMMANDS]
    lines += ["", "jobs:"] + [f"  {name:<14} {desc}" for name, (_, desc) in JOBS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from_console = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    command, rest = argv[0], argv[1:]
    if command in JOBS:
        module_name, _, function = JOBS[command][0].partition(":")
        return int(getattr(importlib.import_module(module_name), function or "main")(rest) or 0)
    if command in LIGHTNING_COMMANDS:
        composed = with_base_experiment(argv)
        if composed != argv and from_console:
            sys.argv[1:] = composed  # LightningCLI reads the console's own argv
        argv = composed
        try:
            build_cli(args=None if from_console else argv)
        except Exception as err:  # a user mistake gets one clear line; a bug keeps its traceback
            cause = user_error(err)
            if cause is None or os.environ.get("KSSGAN_DEBUG") == "1":
                raise
            print(f"kssgan {command}: {cause}", file=sys.stderr)
            return 2
        return 0
    print(f"kssgan: unknown command {command!r}\n\n{_usage()}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
