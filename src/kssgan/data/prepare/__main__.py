"""``python -m kssgan.data.prepare``: the same as ``kssgan prepare``."""

from kssgan.data.prepare.cli import main

raise SystemExit(main())
