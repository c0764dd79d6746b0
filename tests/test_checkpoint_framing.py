"""Self-describing checkpoints: ``checkpoint["kssgan"]["prepare"]`` carries how `kssgan prepare` framed
the training faces, and `deidentify` frames new faces the same way without being told."""

from __future__ import annotations

import hashlib
from pathlib import Path

import lightning as L
import numpy as np
import pytest
import torch

from kssgan.cli import main as kssgan_main
from kssgan.data.datamodule import FaceDataModule
from kssgan.data.readers.image_io import load_image
from kssgan.deidentify.options import DeidentifyError, DeidentifyOptions
from kssgan.deidentify.pipeline import Deidentifier, Frame
from tests.conftest import quiet_trainer, tiny_model

pytestmark = pytest.mark.shared_data

MARGIN = 0.2
SUBJECTS = 4  # Yale subjects (11 photos each), k=2 → 2 groups


@pytest.fixture(scope="module")
def margin_run(shared_datasets: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Yale prepared at margin 0.2, a tiny model trained 2 steps on it, its checkpoint."""
    from kssgan.data.prepare import prepare_dataset

    prepared = tmp_path_factory.mktemp("yale_margin")
    prepare_dataset(
        shared_datasets / "yale",
        prepared,
        reader="folder",
        image_size=32,
        k=2,
        margin=MARGIN,
        limit=SUBJECTS * 11,
        progress=False,
        quiet=True,
    )
    L.seed_everything(0, verbose=False)
    dm = FaceDataModule(prepared_dir=str(prepared), image_size=32, batch_size=4)
    model = tiny_model(dm, n_critic=1, siamese_pretrain_steps=1)
    trainer = quiet_trainer(tmp_path_factory.mktemp("margin_train"), max_steps=2, limit_val_batches=0)
    trainer.fit(model, dm)
    ckpt = prepared.parent / "margin.ckpt"
    trainer.save_checkpoint(ckpt)
    return prepared, ckpt


def test_checkpoint_carries_the_prepare_framing(margin_run: tuple[Path, Path]) -> None:
    prepared, ckpt = margin_run
    record = torch.load(ckpt, weights_only=True)["kssgan"]["prepare"]
    assert record["margin"] == MARGIN
    assert record["crop_size"] == 32
    assert record["detector"] == "yunet" and record["recogniser"] == "sface"
    assert 0.0 < record["recogniser_threshold"] < 1.0
    assert np.asarray(record["template"]).shape == (5, 2)
    assert record["manifest_sha256"] == hashlib.sha256((prepared / "manifest.csv").read_bytes()).hexdigest()


def test_deidentify_frames_faces_as_prepare_did_without_being_told(
    margin_run: tuple[Path, Path], shared_datasets: Path
) -> None:
    prepared, ckpt = margin_run
    deid = Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(similarity=False, channels_last=False))
    assert deid.options.margin == MARGIN and deid.options.detector == "yunet"
    seen: list[np.ndarray] = []
    generator = deid.backend

    def recording(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
        seen.append(np.asarray(images))
        return generator(images, labels)

    deid.backend = recording
    source = shared_datasets / "yale" / "yalefaces" / "subject01.happy"
    image, _ = load_image(source)
    deid.process([Frame(image, "subject01.happy")])
    assert len(seen) == 1 and seen[0].shape == (1, 3, 32, 32)
    fed = (seen[0][0].transpose(1, 2, 0) + 1) * 127.5  # RGB, what G was given
    crop_path = next(prepared.glob("crops/**/*subject01.happy*"))
    made_by_prepare = load_image(crop_path)[0][:, :, ::-1].astype(np.float64)  # BGR → RGB
    same = np.abs(fed - made_by_prepare).mean()
    assert same < 0.5, f"deidentify framed the face differently from prepare (mean |Δ| = {same:.2f})"
    # the default before checkpoints carried their framing, margin 0, frames it visibly differently
    seen.clear()
    unframed = Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(similarity=False, channels_last=False))
    unframed.options.margin = 0.0
    unframed.backend = recording
    unframed.process([Frame(image, "subject01.happy")])
    off = np.abs((seen[0][0].transpose(1, 2, 0) + 1) * 127.5 - made_by_prepare).mean()
    assert off > 5 * max(same, 1.0)


def test_a_conflicting_margin_is_an_error_naming_both_values(
    margin_run: tuple[Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    _, ckpt = margin_run
    with pytest.raises(DeidentifyError, match=r"--margin 0\.0 conflicts .*margin 0\.2"):
        Deidentifier.from_checkpoint(ckpt, DeidentifyOptions(margin=0.0, similarity=False))
    photo = tmp_path / "in.png"
    photo.write_bytes(b"")
    code = kssgan_main(["deidentify", "--ckpt", str(ckpt), "--input", str(photo), "--output", str(tmp_path / "o")])
    assert code == 0 or "margin" not in capsys.readouterr().err  # no flag: no conflict
    code = kssgan_main(
        ["deidentify", "--ckpt", str(ckpt), "--input", str(photo), "--output", str(tmp_path / "o2"), "--margin", "0"]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "0.0" in err and "0.2" in err
    assert not (tmp_path / "o2").exists()  # refused before anything was written
