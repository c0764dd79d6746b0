"""One config system for every job: jsonargparse, the parser LightningCLI uses for ``kssgan fit``.

Each job (``prepare``, ``evaluate``, ``deidentify``, ``export``, ``sweep``, ``bench``) builds its
parser with :func:`job_parser`, so every job reads a YAML file the same way
(``--config FILE``, repeatable, later files and flags override earlier ones) and prints its full,
merged config with ``--print_config`` (a YAML that ``--config`` reads back).
"""

from __future__ import annotations

import argparse

from jsonargparse import ActionConfigFile, ArgumentParser


def job_parser(prog: str, description: str, epilog: str | None = None) -> ArgumentParser:
    """A jsonargparse parser with ``--config`` and ``--print_config``; add the job's options to it."""
    parser = ArgumentParser(
        prog=prog,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        default_env=False,
    )
    parser.add_argument(
        "--config",
        action=ActionConfigFile,
        help="YAML setting any option below by its name (image_size: 64); repeatable, flags after it "
        "override it; --print_config shows the merged config",
    )
    return parser
