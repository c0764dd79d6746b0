"""One config system for every job: jsonargparse, the parser LightningCLI uses for ``kssgan fit``.

Each job (``prepare``, ``evaluate``, ``deidentify``, ``export``, ``sweep``, ``bench``) builds its
parser with :func:`job_parser`, so every job reads a YAML file the same way
(``--config FILE``, repeatable, later files and flags override earlier ones) and prints its full,
merged config with ``--print_config`` (a YAML that ``--config`` reads back).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from jsonargparse import ActionConfigFile, ArgumentParser
from jsonargparse._common import debug_mode_active


class JobParser(ArgumentParser):
    """jsonargparse's parser with kssgan's error contract: a bad option or config is one line on
    stderr, ``kssgan <job>: error: <what is wrong> (see --help)``, and exit status 2."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error or debug_mode_active():
            super().error(message, ex)
        one_line = " ".join(str(message).split())
        sys.stderr.write(f"{self.prog}: error: {one_line} (see {self.prog} --help)\n")
        sys.exit(2)


def job_parser(prog: str, description: str, epilog: str | None = None) -> ArgumentParser:
    """A jsonargparse parser with ``--config`` and ``--print_config``; add the job's options to it."""
    parser = JobParser(
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
