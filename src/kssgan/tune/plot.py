"""The objective plot of a sweep (``objective.png``): each trial's objective in order, failed trials
marked, and the best so far."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

__all__ = ["plot_objective"]


def plot_objective(table: list[dict[str, Any]], metric: str, mode: str, path: Path) -> Path | None:
    """Each trial's objective in trial order, failed trials marked, and the best so far."""
    if not table:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    values = [r[metric] for r in table]
    xs = list(range(1, len(values) + 1))
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ok = [(x, v) for x, v, r in zip(xs, values, table, strict=True) if r["status"] == "ok" and math.isfinite(v)]
    if ok:
        ax.scatter(*zip(*ok, strict=True), label="trial", color="tab:blue")
        best_so_far, running = [], None
        for x, v in ok:
            running = v if running is None else (min(running, v) if mode == "min" else max(running, v))
            best_so_far.append((x, running))
        ax.step(*zip(*best_so_far, strict=True), where="post", color="tab:orange", label="best so far")
    failed = [x for x, r in zip(xs, table, strict=True) if r["status"] != "ok"]
    for x in failed:
        ax.axvline(x, color="tab:red", alpha=0.3, lw=4)
    if failed:
        ax.plot([], [], color="tab:red", alpha=0.3, lw=4, label="failed")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"{metric} ({mode})")
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
