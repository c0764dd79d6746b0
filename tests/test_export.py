"""`kssgan export` (generator → ONNX) and `deidentify --backend onnxruntime` against the torch back end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from kssgan.cli import main as kssgan_main
from kssgan.data.readers.image_io import load_image

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def onnx_path(deid_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("onnx") / "g.onnx"
    assert kssgan_main(["export", "--ckpt", str(deid_ckpt), "--output", str(path)]) == 0
    return path


def test_export_writes_onnx_that_matches_torch_and_carries_the_label_spec(deid_ckpt: Path, onnx_path: Path) -> None:
    from kssgan.deidentify.backends import OnnxGenerator
    from kssgan.deidentify.export import verify_export
    from kssgan.system import load_kssgan

    model = load_kssgan(str(deid_ckpt))
    assert verify_export(model.generator, onnx_path, model.spec.dim, 32, seed=3) < 1e-4
    gen = OnnxGenerator(onnx_path)
    assert gen.providers == ["CPUExecutionProvider"]
    assert gen.metadata["image_size"] == 32 and gen.metadata["label_spec"] == model.spec.to_dict()
    out = gen(np.zeros((5, 3, 32, 32), np.float32), np.eye(5, model.spec.dim, dtype=np.float32))  # dynamic batch
    assert out.shape == (5, 3, 32, 32)


def test_onnxruntime_and_torch_backends_give_the_same_photos(
    deid_ckpt: Path, onnx_path: Path, shared_datasets: Path, tmp_path: Path
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("subject03.happy", "subject05.normal"):
        shutil.copyfile(shared_datasets / "yale" / "yalefaces" / name, src / name)
    common = ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(src), "--jitter-seed", "0"]
    assert kssgan_main([*common, "--output", str(tmp_path / "torch")]) == 0
    assert (
        kssgan_main([*common, "--output", str(tmp_path / "ort"), "--backend", "onnxruntime", "--onnx", str(onnx_path)])
        == 0
    )
    for name in ("subject03.happy", "subject05.normal"):
        a, _ = load_image(tmp_path / "torch" / name)
        b, _ = load_image(tmp_path / "ort" / name)
        orig, _ = load_image(src / name)
        d = np.abs(a.astype(np.int16) - b.astype(np.int16))
        assert d.max() <= 2 and d.mean() < 0.05  # uint8 rounding only
        assert np.abs(a.astype(np.int16) - orig).max() > 20  # and both did change the face
    rep = json.loads((tmp_path / "ort" / "deidentify-report.json").read_text())
    assert rep["backend"] == "onnxruntime" and rep["summary"]["deidentified"] == 2


def test_onnx_export_of_another_model_is_refused(deid_ckpt: Path, tmp_path: Path, capsys) -> None:
    from kssgan.deidentify.export import export_generator
    from kssgan.models import Generator

    other = export_generator(Generator(9, 8, 1, 64), 9, 64, tmp_path / "other.onnx")
    (tmp_path / "in").mkdir()
    rc = kssgan_main(
        ["deidentify", "--no-progress", "--ckpt", str(deid_ckpt), "--input", str(tmp_path / "in"), "--output",
         str(tmp_path / "o"), "--backend", "onnxruntime", "--onnx", str(other)]
    )  # fmt: skip
    assert rc == 2
    assert "works at 64 px but the checkpoint at 32 px" in capsys.readouterr().err
