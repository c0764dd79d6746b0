"""Print the side-by-side tables of docs/evaluation.md from an evaluation's metrics.json.

    python docs/evaluation/summarize.py docs/evaluation/london/metrics.json
"""

import json
import sys


def cell(p: dict) -> str:
    return "—" if not p.get("n") else f"{p['value']:.3f}"


def main() -> None:
    m = json.load(open(sys.argv[1]))
    recs = list(m["recognisers"])
    orig = next(r for r in m["results"] if r["method"] == "original")
    sharp0 = orig["utility"]["sharpness_laplacian_var"]
    k_model = {c["k"] for c in m["checkpoints"]} or {3}
    rows = [r for r in m["results"] if r["k"] is None or r["k"] in k_model]
    head = "| method | k | " + " | ".join(f"parrot {r}" for r in recs) + " | "
    head += " | ".join(f"parrot {r} (JPEG/½)" for r in recs) + " | "
    head += " | ".join(f"rank-1 {r}" for r in recs) + " | " + " | ".join(f"protection {r}" for r in recs)
    head += " | YuNet | sharpness × | expression acc. | gender agr. |"
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for r in rows:
        p, a, u = r["privacy"], r.get("privacy_attacker", {}), r["utility"]
        cells = [r["method"], str(r["k"] or "—")]
        cells += [cell(p[x]["parrot"]["rank1"]) for x in recs]
        cells += [cell(a[x]["parrot"]["rank1"]) if x in a else "—" for x in recs]
        cells += [cell(p[x]["identification"]["rank1"]) for x in recs]
        cells += [f"{p[x]['verification']['protection_rate']:.3f}" for x in recs]
        cells.append(f"{u.get('detection_rate_yunet', float('nan')):.3f}")
        cells.append(f"{u['sharpness_laplacian_var'] / sharp0:.2f}")
        e = u.get("expression")
        cells.append(f"{e['accuracy']:.3f}" if e else "—")
        cells.append(f"{u['gender_agreement']:.3f}" if "gender_agreement" in u else "—")
        print("| " + " | ".join(cells) + " |")
    for c in m["checkpoints"]:
        print(f"\n- `{c['method']}`: `{c['path']}` sha256 `{c.get('sha256', '?')}`", end="")
    print()


if __name__ == "__main__":
    main()
