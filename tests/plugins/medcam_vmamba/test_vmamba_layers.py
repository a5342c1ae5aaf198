"""medcam_vmamba.layers: stems, downsampling, MLP and level outputs."""
from __future__ import annotations

import pytest
import torch

from medcam_vmamba.layers import LevelOutput, Mlp, PatchMerging, make_downsample, make_patch_embed


def test_patch_merging_cell_order() -> None:
    """Each 2x2 cell is concatenated as [x(2i,2j), x(2i+1,2j), x(2i,2j+1), x(2i+1,2j+1)] (Swin / VMamba order)."""
    x = torch.tensor([[10.0 * h + w for w in range(4)] for h in range(4)]).view(1, 4, 4, 1)
    merge = PatchMerging(1, 2)
    seen = {}
    merge.norm.register_forward_hook(lambda m, inp, out: seen.setdefault("cat", inp[0]))
    out = merge(x)
    assert out.shape == (1, 2, 2, 2)
    assert seen["cat"][0, 0, 1].tolist() == [2.0, 12.0, 3.0, 13.0]  # cell (i=0, j=1)
    assert seen["cat"][0, 1, 0].tolist() == [20.0, 30.0, 21.0, 31.0]  # cell (i=1, j=0)


def test_patch_merging_pads_odd_sizes() -> None:
    x = torch.ones(1, 3, 5, 2)
    merge = PatchMerging(2, 4)
    seen = {}
    merge.norm.register_forward_hook(lambda m, inp, out: seen.setdefault("cat", inp[0]))
    assert merge(x).shape == (1, 2, 3, 4)
    assert seen["cat"][0, 1, 2].tolist() == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]  # zero padding bottom/right


@pytest.mark.parametrize("version, keys", [
    ("v1", {"0.weight", "0.bias", "2.weight", "2.bias"}),
    ("v2", {"0.weight", "0.bias", "2.weight", "2.bias", "5.weight", "5.bias", "7.weight", "7.bias"}),
])
@pytest.mark.parametrize("in_chans", [1, 3])
def test_patch_embed_layout(version: str, keys: set, in_chans: int) -> None:
    stem = make_patch_embed(version, in_chans, 16)
    assert set(stem.state_dict()) == keys
    out = stem(torch.randn(2, in_chans, 64, 96))
    assert out.shape == (2, 16, 24, 16)  # channel-last tokens at stride 4
    # the last LayerNorm normalizes every token over its channels
    assert torch.allclose(out.mean(-1), torch.zeros(2, 16, 24), atol=1e-5)


@pytest.mark.parametrize("version", ["v2", "v3"])
def test_conv_downsample_layout(version: str) -> None:
    down = make_downsample(version, 8, 16)
    assert set(down.state_dict()) == {"1.weight", "1.bias", "3.weight", "3.bias"}
    assert down[1].kernel_size == ((2, 2) if version == "v2" else (3, 3))
    assert down(torch.randn(2, 6, 4, 8)).shape == (2, 3, 2, 16)


def test_unknown_versions() -> None:
    with pytest.raises(ValueError, match="v9"):
        make_downsample("v9", 8, 16)
    with pytest.raises(ValueError, match="v9"):
        make_patch_embed("v9", 3, 16)


def test_level_output() -> None:
    x = torch.randn(2, 3, 5, 8)
    plain = LevelOutput(8, norm=False)
    assert list(plain.parameters()) == []
    out = plain(x)
    assert out.shape == (2, 8, 3, 5) and out.is_contiguous()
    assert torch.equal(out, x.permute(0, 3, 1, 2))
    normed = LevelOutput(8)
    with torch.no_grad():
        normed.weight.uniform_(0.5, 2.0)
        normed.bias.uniform_(-1.0, 1.0)
    expected = (x - x.mean(-1, keepdim=True)) / torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + 1e-5)
    expected = expected * normed.weight + normed.bias
    assert torch.allclose(normed(x), expected.permute(0, 3, 1, 2), atol=1e-5)
    assert set(normed.state_dict()) == {"weight", "bias"}


def test_mlp() -> None:
    mlp = Mlp(8, 32)
    assert mlp(torch.randn(2, 3, 4, 8)).shape == (2, 3, 4, 8)
    assert set(mlp.state_dict()) == {"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"}
