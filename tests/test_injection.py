"""Networks injected from config (``class_path`` + ``init_args``): built with what the data knows,
trained, saved in the hyper-parameters and rebuilt by ``load_kssgan``; bad specs are one clear error."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from kssgan.data.datamodule import FaceDataModule
from kssgan.models import Generator
from kssgan.models.factory import build_module
from kssgan.system import load_kssgan
from tests.conftest import quiet_trainer, tiny_model


class PlainGenerator(nn.Module):
    """A user's generator: no residual blocks at all, one hidden conv of ``width`` channels."""

    def __init__(self, label_dim: int, width: int = 8) -> None:
        super().__init__()
        self.label_dim = label_dim
        self.net = nn.Sequential(nn.Conv2d(3 + label_dim, width, 3, 1, 1), nn.ReLU(), nn.Conv2d(width, 3, 3, 1, 1))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        tiled = c.view(c.size(0), -1, 1, 1).expand(-1, -1, x.size(2), x.size(3)).to(x.dtype)
        return torch.tanh(self.net(torch.cat([x, tiled], dim=1)))


SPEC = {"class_path": f"{__name__}.PlainGenerator", "init_args": {"width": 6}}


def test_an_injected_generator_gets_the_data_dims_trains_and_reloads(demo_dir: Path, tmp_path: Path) -> None:
    dm = FaceDataModule(prepared_dir=str(demo_dir), image_size=32, batch_size=4)
    model = tiny_model(dm, generator=SPEC, n_critic=1)
    assert isinstance(model.generator, PlainGenerator)
    assert model.generator.label_dim == model.spec.dim  # image mode: the whole label vector
    assert model.generator.net[0].out_channels == 6  # init_args reached the class
    before = [p.detach().clone() for p in model.generator.parameters()]
    trainer = quiet_trainer(tmp_path, max_steps=4, limit_val_batches=1)
    trainer.fit(model, dm)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.generator.parameters(), strict=True))
    ckpt = tmp_path / "m.ckpt"
    trainer.save_checkpoint(ckpt)
    loaded = load_kssgan(str(ckpt))
    assert isinstance(loaded.generator, PlainGenerator)
    for a, b in zip(model.generator.parameters(), loaded.generator.parameters(), strict=True):
        assert torch.equal(a.cpu(), b)


def test_no_spec_builds_kssgans_own_network_from_the_scalars() -> None:
    g = build_module(None, Generator, {"label_dim": 5, "image_size": 32}, {"conv_dim": 8, "repeat_num": 1})
    assert isinstance(g, Generator)
    assert g(torch.zeros(2, 3, 32, 32), torch.zeros(2, 5)).shape == (2, 3, 32, 32)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"init_args": {}}, "needs class_path"),
        ({"class_path": "no_such_package.Net"}, "cannot import class_path"),
        ({"class_path": "collections.OrderedDict"}, "not a torch.nn.Module"),
    ],
)
def test_a_bad_spec_is_one_clear_error(spec: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_module(spec, Generator, {"label_dim": 5}, {})
