"""What ``kssgan prepare`` tells its user: a summary table on stderr (its benchmark: :mod:`.benchmark`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from kssgan.data.readers._common import printable


def print_summary(summary: Mapping[str, Any], manifest: pd.DataFrame | None = None) -> None:
    """Rich tables: counts by status and reason, splits, groups, throughput (to stderr)."""
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    c = summary["counts"]
    t = Table(title=f"kssgan prepare: {summary.get('name', '')}", show_lines=False)
    t.add_column("what")
    t.add_column("count", justify="right")
    t.add_row("source files", str(c["sources"]))
    t.add_row("[green]ok[/] (aligned crops)", str(c["ok"]))
    t.add_row("[yellow]skipped[/]", str(c["skipped"]))
    for reason, n in c["skipped_by_reason"].items():
        t.add_row(f"  skipped: {reason}", str(n))
    for note, n in c.get("notes_on_ok", {}).items():
        t.add_row(f"  ok, note: {note}", str(n))
    t.add_row("identities", str(c["identities"]))
    for split, n in c["by_split"].items():
        t.add_row(f"  split {split}", str(n))
    g = summary.get("groups", {})
    if "error" in g:
        t.add_row("[red]groups[/]", g["error"])
    elif g:
        t.add_row(f"groups (k={g['k']}, {g['method']})", f"{g['num_groups']} sizes {sorted(set(g['group_sizes']))}")
        t.add_row("audit", "ok" if g["audit"] == "ok" else "; ".join(g["audit"]))
    tm = summary["timing"]
    if tm.get("images_per_s"):
        t.add_row("throughput", f"{tm['images_per_s']:.1f} images/s")
    if c.get("resumed"):
        t.add_row("already done (resumed)", str(c["resumed"]))
    console.print(t)
    if manifest is not None:
        bad = manifest[manifest["status"] == "skipped"]
        if len(bad):
            console.print(f"skipped files ({len(bad)}), first ones:")
            for s, r in list(zip(bad["source"], bad["reason"], strict=True))[:10]:
                console.print(f"  {printable(s)}: {r}", markup=False)
