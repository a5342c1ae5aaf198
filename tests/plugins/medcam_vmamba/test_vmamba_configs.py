"""medcam_vmamba.configs: the registered configurations and their parameter counts."""
from __future__ import annotations

import math

import pytest
from vmamba_official_layout import official_shapes

from medcam.errors import SpecError
from medcam_vmamba.configs import ALIASES, CONFIGS, STRIDES, get_config, make_config

# Parameter counts (millions, 1000-class head) published for the official models
# (MzeroMiko/VMamba README / assets/performance.md, measured with its vmamba.py).
PUBLISHED_M = {
    "vmamba_tiny_s1l8": 30.25, "vmamba_small_s1l20": 49.01, "vmamba_base_s1l20": 86.61,
    "vmamba_tiny_s2l5": 30.71, "vmamba_small_s2l15": 50.15, "vmamba_base_s2l15": 88.56,
    "vanilla_vmamba_tiny": 22.89, "vanilla_vmamba_small": 44.42, "vanilla_vmamba_base": 76.25,
}


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_formula_count_matches_published(name: str) -> None:
    assert round(CONFIGS[name].num_params() / 1e6, 2) == PUBLISHED_M[name]


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_formula_count_equals_official_layout(name: str) -> None:
    cfg = CONFIGS[name]
    layout = sum(math.prod(s) for s in official_shapes(cfg).values())
    assert cfg.num_params() == layout
    # backbone alone, and with four level norms
    head = 2 * cfg.channels[3] + cfg.channels[3] * 1000 + 1000
    assert cfg.num_params(None) == layout - head
    assert cfg.num_params(None, out_norm_levels=(0, 1, 2, 3)) == layout - head + 2 * sum(cfg.channels)


def test_sr_backbone_is_the_0220_tiny() -> None:
    cfg = CONFIGS["vmamba_tiny_sr"]
    assert (list(cfg.depths), cfg.dims, cfg.d_state, cfg.ssm_ratio, cfg.mlp_ratio) == ([2, 2, 4, 2], 96, 1, 2.0, 4.0)
    assert (cfg.downsample, cfg.patch_embed, cfg.gate, cfg.conv_bias, cfg.norm) == ("v3", "v2", True, False, "ln")
    assert round(cfg.num_params() / 1e6, 2) == 32.48


def test_channels_ranks_and_aliases() -> None:
    cfg = get_config("vmamba_tiny")
    assert cfg is CONFIGS[ALIASES["vmamba_tiny"]] is CONFIGS["vmamba_tiny_s1l8"]
    assert cfg.channels == [96, 192, 384, 768]
    assert [cfg.rank(i) for i in range(4)] == [6, 12, 24, 48]
    assert [cfg.d_inner(i) for i in range(4)] == [96, 192, 384, 768]
    assert CONFIGS["vanilla_vmamba_base"].channels == [128, 256, 512, 1024]
    assert STRIDES == (4, 8, 16, 32)
    assert cfg.url.endswith("%23v2cls/vssm1_tiny_0230s_ckpt_epoch_264.pth")


def test_unknown_name_suggests() -> None:
    with pytest.raises(SpecError, match="did you mean 'vmamba_small_s1l20'"):
        get_config("vmamba_smal_s1l20")


@pytest.mark.parametrize("bad, message", [
    ({"depths": [2, 2, 2]}, "depths: expected 4 positive ints"),
    ({"dims": 15}, "dims: expected an even positive int"),
    ({"downsample": "v4"}, "downsample: expected one of v1, v2, v3"),
    ({"patch_embed": "v3"}, "patch_embed: expected one of v1, v2"),
    ({"drop_path_rate": 1.0}, "drop_path_rate"),
    ({"d_conv": 4}, "d_conv"),
    ({"d_state": 0}, "d_state"),
    ({"depths": "2,2,9,2"}, "depths: expected a list"),
])
def test_make_config_validates(bad: dict, message: str) -> None:
    params = dict(depths=[1, 1, 1, 1], dims=16, d_state=2, ssm_ratio=2.0, mlp_ratio=2.0, gate=True,
                  conv_bias=True, downsample="v3", patch_embed="v2", drop_path_rate=0.0)
    params.update(bad)
    with pytest.raises(SpecError, match=message):
        make_config(**params)
