"""The release targets of a de-identification model, checked on an evaluation's metrics.

One table per model row (``kss-gan`` and any ``--method`` row): each target, the measured value,
pass/fail and — where it fails — by how much. Targets (docs/evaluation.md):

* parrot rank-1 ≤ 1/k with its 95 % upper bound ≤ 1/k + 0.05, every recogniser, plain and after
  the attacker's JPEG/resize preprocessing. The bound is the clustered interval's (the probes of a
  k-Same group are not independent; see :mod:`kssgan.evaluate.privacy`); the Wilson bound, which
  treats them as independent, is shown beside it;
* protection rate ≥ 0.90 with every recogniser (plain and preprocessed);
* YuNet finds a face in ≥ 90 % of outputs; sharpness within 0.5×–1.5× the originals';
* expression accuracy within 10 points of the real images' (when labelled); gender agreement ≥ 0.85.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from kssgan.evaluate.privacy import Z_95

MODEL_ROWS_EXCLUDED = ("original", "blur", "pixelate", "k-same-pixel", "k-same-eigen")


def checks(metrics: dict[str, Any], row: dict[str, Any]) -> list[tuple[str, str, bool, str]]:
    """(target, measured, passed, shortfall) for one result row."""
    out: list[tuple[str, str, bool, str]] = []
    k = row["k"]
    bound = 1.0 / k
    for kind, key in (("plain", "privacy"), ("attacker JPEG/resize", "privacy_attacker")):
        for rec, p in row.get(key, {}).items():
            r1 = p["parrot"]["rank1"]
            if r1["n"]:
                ok = r1["value"] <= bound + 1e-9
                out.append(
                    (
                        f"parrot rank-1 ≤ 1/k = {bound:.3f}, {rec}, {kind}",
                        f"{r1['value']:.3f}",
                        ok,
                        "" if ok else f"+{r1['value'] - bound:.3f}",
                    )
                )
                out.append(_upper_bound_check(p["parrot"], bound))
            prot = p["verification"]["protection_rate"]
            out.append(
                (
                    f"protection ≥ 0.90, {rec}, {kind}",
                    f"{prot:.3f}",
                    prot >= 0.9,
                    "" if prot >= 0.9 else f"−{0.9 - prot:.3f}",
                )
            )
    orig = next((r for r in metrics["results"] if r["method"] == "original"), None)
    u = row.get("utility", {})
    if "detection_rate_yunet" in u:
        v = u["detection_rate_yunet"]
        out.append(("YuNet detects ≥ 0.90", f"{v:.3f}", v >= 0.9, "" if v >= 0.9 else f"−{0.9 - v:.3f}"))
    if orig is not None:
        ratio = u["sharpness_laplacian_var"] / max(orig["utility"]["sharpness_laplacian_var"], 1e-9)
        ok = 0.5 <= ratio <= 1.5
        gap = "" if ok else (f"−{0.5 - ratio:.2f}× (too soft)" if ratio < 0.5 else f"+{ratio - 1.5:.2f}× (noise)")
        out.append(("sharpness 0.5×–1.5× the originals'", f"{ratio:.2f}×", ok, gap))
        if "expression" in u and "expression" in orig.get("utility", {}):
            real, ours = orig["utility"]["expression"]["accuracy"], u["expression"]["accuracy"]
            ok = ours >= real - 0.10
            out.append(
                (
                    "expression accuracy within 10 points of real",
                    f"{ours:.3f} (real {real:.3f})",
                    ok,
                    "" if ok else f"−{real - 0.10 - ours:.3f}",
                )
            )
    if "gender_agreement" in u:
        v = u["gender_agreement"]
        out.append(("gender agreement ≥ 0.85", f"{v:.3f}", v >= 0.85, "" if v >= 0.85 else f"−{0.85 - v:.3f}"))
    return out


def clustered_upper(result: dict) -> str:
    """The clustered 95 % upper bound of an identification result's rank-1, with its units."""
    c = result.get("rank1_clustered")
    if not c or not result["rank1"]["n"]:
        return "—"
    return f"{c['ci_high']:.3f} ({c['n_clusters']} {'groups' if c['unit'] != 'person' else 'persons'})"


def _upper_bound_check(parrot: dict[str, Any], bound: float) -> tuple[str, str, bool, str]:
    """Parrot rank-1's 95 % upper bound against 1/k + 0.05: the clustered bound, Wilson's beside it."""
    r1, cl = parrot["rank1"], parrot.get("rank1_clustered")
    # Wilson's width is set by the number of probes n: at p = 1/k it is ≈ 1.96·√(p(1−p)/n)
    need = int(np.ceil((Z_95 * np.sqrt(bound * (1 - bound)) / 0.05) ** 2))
    wilson = f"Wilson, probes independent: {r1['ci_high']:.3f}; {r1['n']} probes, ≈{need} needed at 1/k"
    if cl is None:
        high, target = (
            r1["ci_high"],
            f"its 95 % upper bound ≤ {bound + 0.05:.3f} (Wilson; {r1['n']} probes, ≈{need} needed at 1/k)",
        )
        measured = f"{high:.3f}"
    else:
        high = cl["ci_high"]
        target = f"its 95 % upper bound ≤ {bound + 0.05:.3f} (clustered by {cl['unit']}, {cl['n_clusters']} of them)"
        measured = f"{high:.3f} ({wilson})"
    ok = high <= bound + 0.05
    return target, measured, ok, "" if ok else f"+{high - bound - 0.05:.3f}"


def markdown_section(metrics: dict[str, Any]) -> list[str]:
    rows = [r for r in metrics["results"] if r["method"] not in MODEL_ROWS_EXCLUDED and r["k"]]
    if not rows:
        return []
    lines = ["", "## Release targets", ""]
    for row in rows:
        lines += [
            f"### `{row['method']}` (k = {row['k']})",
            "",
            "| target | measured | met | short by |",
            "|---|---|---|---|",
        ]
        lines += [f"| {t} | {m} | {'yes' if ok else '**no**'} | {gap} |" for t, m, ok, gap in checks(metrics, row)]
        lines.append("")
    return lines


def attacker_tables(metrics: dict[str, Any]) -> list[str]:
    rows = [r for r in metrics["results"] if "privacy_attacker" in r]
    if not rows:
        return []
    recs = list(rows[0]["privacy_attacker"])
    pre = rows[0]["privacy_attacker"][recs[0]]["preprocessing"]
    lines = []
    for rec in recs:
        lines += [
            "",
            f"## Privacy — {rec}, released images after the attacker's preprocessing ({pre})",
            "",
            "| method | k | 1/k | rank-1 (originals gallery) | parrot rank-1 | clustered upper | protection rate |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in rows:
            p = r["privacy_attacker"][rec]
            bound = f"{1 / r['k']:.3f}" if r["k"] else "—"
            r1, pr = p["identification"]["rank1"], p["parrot"]["rank1"]
            fmt = lambda d: "—" if not d["n"] else f"{d['value']:.3f} [{d['ci_low']:.2f}, {d['ci_high']:.2f}]"  # noqa: E731
            lines.append(
                f"| {r['method']} | {r['k'] or '—'} | {bound} | {fmt(r1)} | {fmt(pr)} | "
                f"{clustered_upper(p['parrot'])} | {p['verification']['protection_rate']:.3f} |"
            )
    return lines
