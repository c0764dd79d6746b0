import pytest
import torch

from kssgan.models import Critic, Generator, SiameseNet
from kssgan.models.generator import tile_label


@pytest.mark.parametrize("size", [32, 64, 128])
def test_generator_keeps_shape_and_range(size: int) -> None:
    g = Generator(label_dim=5, conv_dim=8, repeat_num=2, image_size=size)
    x = torch.rand(2, 3, size, size) * 2 - 1
    y = g(x, torch.eye(5)[:2])
    assert y.shape == x.shape
    assert y.abs().max() <= 1.0


def test_generator_output_depends_on_label() -> None:
    torch.manual_seed(0)
    g = Generator(label_dim=4, conv_dim=8, repeat_num=1, image_size=32)
    x = torch.rand(1, 3, 32, 32)
    a, b = g(x, torch.eye(4)[[0]]), g(x, torch.eye(4)[[3]])
    assert (a - b).abs().mean() > 1e-4


def test_label_is_tiled_over_every_pixel() -> None:
    label = torch.tensor([[0.0, 1.0, 0.5]])
    tiled = tile_label(label, 4, 6)
    assert tiled.shape == (1, 3, 4, 6)
    assert torch.equal(tiled[0, :, 3, 5], label[0])
    assert torch.equal(tiled[0, 2], torch.full((4, 6), 0.5))


def test_generator_rejects_wrong_label_and_size() -> None:
    g = Generator(label_dim=3, conv_dim=8, repeat_num=1, image_size=32)
    with pytest.raises(ValueError, match=r"label must be \(B, 3\)"):
        g(torch.zeros(1, 3, 32, 32), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="multiple of 4"):
        Generator(label_dim=3, image_size=30)


def test_instance_norm_is_the_same_in_eval_mode() -> None:
    g = Generator(label_dim=2, conv_dim=8, repeat_num=1, image_size=32)
    x, c = torch.rand(2, 3, 32, 32), torch.eye(2)
    train_out = g.train()(x, c)
    assert torch.allclose(train_out, g.eval()(x, c), atol=1e-6)


@pytest.mark.parametrize(("size", "layers"), [(32, 3), (64, 4), (128, 5), (256, 6)])
def test_critic_depth_follows_image_size(size: int, layers: int) -> None:
    d = Critic(label_dim=7, image_size=size, conv_dim=8)
    src, cls = d(torch.zeros(2, 3, size, size))
    assert d.num_strided == layers
    assert src.shape == (2, 1, 4, 4)  # a 4×4 patch map at every size, never 1×1
    assert cls.shape == (2, 7)


def test_critic_rejects_sizes_that_cannot_work() -> None:
    with pytest.raises(ValueError, match="power of two"):
        Critic(label_dim=2, image_size=96)
    with pytest.raises(ValueError, match="not a multiple"):
        Critic(label_dim=2, image_size=30)


def test_siamese_features_are_unit_length() -> None:
    f = SiameseNet(embed_dim=16, conv_dim=8, depth=3)(torch.rand(4, 3, 32, 32))
    assert f.shape == (4, 16)
    assert torch.allclose(f.norm(dim=1), torch.ones(4), atol=1e-5)


# -- group conditioning: embedding (default in KSSGAN) vs the paper's one-hot -------------------
def _params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_embedding_generator_input_does_not_grow_with_groups() -> None:
    small = Generator(8 + 2, conv_dim=8, repeat_num=1, image_size=32, num_groups=8, group_embed_dim=16)
    big = Generator(3400 + 2, conv_dim=8, repeat_num=1, image_size=32, num_groups=3400, group_embed_dim=16)
    assert small.main[0].in_channels == big.main[0].in_channels == 3 + 16 + 2
    # only the table grows: 16 numbers per extra group
    assert _params(big) - _params(small) == (3400 - 8) * 16
    onehot = Generator(3400 + 2, conv_dim=8, repeat_num=1, image_size=32)
    assert onehot.main[0].in_channels == 3 + 3402
    assert _params(onehot) > 10 * _params(big)


def test_embedding_critic_head_scales_with_the_embedding_not_the_groups() -> None:
    d = Critic(3400 + 2, image_size=32, conv_dim=8, num_groups=3400, group_embed_dim=16)
    src, cls = d(torch.zeros(2, 3, 32, 32))
    assert src.shape == (2, 1, 4, 4)
    assert cls.shape == (2, 3402)  # logits keep the label layout: group block, then attributes
    assert d.cls_head.out_channels == 16 + 2
    onehot = Critic(3400 + 2, image_size=32, conv_dim=8)
    assert onehot.cls_head.weight.numel() == 32 * 3402 * 16
    assert _params(onehot) > 10 * _params(d)


def test_embedding_critic_group_logits_are_inner_products() -> None:
    torch.manual_seed(0)
    d = Critic(5 + 1, image_size=32, conv_dim=8, num_groups=5, group_embed_dim=4)
    x = torch.rand(3, 3, 32, 32)
    h = d.cls_head(d.main(x)).flatten(1)
    _, cls = d(x)
    table, bias = d.group_classifier.table.weight, d.group_classifier.bias
    assert torch.allclose(cls[:, :5], h[:, :4] @ table.t() + bias, atol=1e-6)
    assert torch.equal(cls[:, 5:], h[:, 4:])


def test_embedding_generator_picks_the_group_row() -> None:
    torch.manual_seed(0)
    g = Generator(6 + 2, conv_dim=8, repeat_num=1, image_size=32, num_groups=6, group_embed_dim=4)
    label = torch.zeros(1, 8)
    label[0, 3], label[0, 7] = 1.0, 1.0
    cond = g.group_embedding(label)
    assert torch.equal(cond[0, :4], g.group_embedding.table.weight[3].detach())
    assert torch.equal(cond[0, 4:], torch.tensor([0.0, 1.0]))
    x = torch.rand(1, 3, 32, 32)
    other = label.clone()
    other[0, 3], other[0, 1] = 0.0, 1.0
    assert (g(x, label) - g(x, other)).abs().mean() > 1e-4


def test_group_embedding_rejects_a_group_block_larger_than_the_label() -> None:
    with pytest.raises(ValueError, match="num_groups"):
        Generator(4, conv_dim=8, repeat_num=1, image_size=32, num_groups=5, group_embed_dim=4)
