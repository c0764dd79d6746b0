"""`kssgan evaluate` releases and attacks the people held out of training (the open set) as
`deidentify` releases a stranger: no identity given, the nearest group's face."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]


def test_strangers_are_released_and_attacked_beside_the_closed_set(shared_datasets: Path, tmp_path: Path) -> None:
    import lightning as L
    from conftest import SURROGATE_RECIPE, quiet_trainer, tiny_model

    from kssgan.data.datamodule import FaceDataModule
    from kssgan.data.prepare import prepare_dataset
    from kssgan.evaluate.pipeline import EvalSettings, run_evaluation

    prepared = tmp_path / "yale-open"
    prepare_dataset(
        shared_datasets / "yale", prepared, reader="folder", image_size=32, k=2, progress=False, quiet=True,
        reader_options={"open_set_fraction": 0.2}, labels={"onehot": ["expression"], "binary": []},
    )  # fmt: skip
    L.seed_everything(0, verbose=False)
    dm = FaceDataModule(prepared_dir=str(prepared), onehot_attributes=["expression"], image_size=32, batch_size=8)
    trainer = quiet_trainer(tmp_path / "train", max_steps=6, limit_val_batches=0)
    trainer.fit(tiny_model(dm, n_critic=1, **SURROGATE_RECIPE), dm)  # the default recipe, TINY
    ckpt = tmp_path / "open.ckpt"
    trainer.save_checkpoint(ckpt)
    settings = EvalSettings(ks=[2], recognisers=["sface"], progress=False, gender=False, detection=False)
    settings.fidelity = False
    metrics = run_evaluation(str(prepared), tmp_path / "eval", [str(ckpt)], settings=settings)
    import pandas as pd

    man = pd.read_csv(prepared / "manifest.csv", dtype=str, keep_default_na=False)
    ok = man[man["status"] == "ok"]
    n_strangers = int((ok["split"] == "stranger").sum())
    assert metrics["dataset"]["images"] == len(ok) - n_strangers  # the closed set: 12 people; 3 held out
    (row,) = [r for r in metrics["results"] if r["method"] == "kss-gan"]
    open_set = row["privacy_release_open_set"]
    assert open_set["identities"] == 3 and open_set["photos"] == n_strangers >= 30
    assert 1 <= open_set["groups_used"] <= 6 and open_set["bound"].startswith("1/k = 0.500")
    entry = open_set["sface"]
    assert entry["photos"] == n_strangers and entry["withheld"] + entry["attacker_found_face"]["n"] == n_strangers
    # rank-1 against every original photo (closed set and strangers) and protection, as for the closed set
    assert entry["identification"]["rank1"]["n"] == pytest.approx(entry["attacker_found_face"]["value"] * n_strangers)
    assert 0.0 <= entry["verification"]["protection_rate"] <= 1.0
    # the parrot attack: strangers as probes against the whole released population, and among themselves
    assert entry["parrot"]["rank1"]["n"] > 0 and 0.0 <= entry["parrot"]["rank1"]["value"] <= 1.0
    alone = entry["parrot_strangers_only"]
    assert alone["bound"] is not None and 1 / 3 <= alone["bound"] <= 1.0  # 3 strangers over the groups used
    # drawn faces have no donors
    assert entry["donor"]["chance"] == 0 and entry["donor"]["first_ranked_is_donor"]["value"] == 0
    assert np.isfinite(row["privacy_release"]["sface"]["parrot"]["rank1"]["value"])
    report = (tmp_path / "eval" / "report.md").read_text()
    assert "strangers" in report.lower()
