"""medcam_vmamba.vssm: the VMamba backbone contract on tiny models, and the full-size counts."""
from __future__ import annotations

import pytest
import torch

from medcam.errors import ShapeError, SpecError
from medcam.features import FeatureInfo
from medcam.registry import backbones
from medcam_vmamba.configs import CONFIGS, make_config
from medcam_vmamba.vssm import VMamba

TINY = dict(depths=[1, 1, 1, 1], dims=16, d_state=2, ssm_ratio=2.0, mlp_ratio=2.0, gate=True, conv_bias=True,
            downsample="v3", patch_embed="v2", drop_path_rate=0.1)
TINY_VANILLA = dict(TINY, mlp_ratio=0.0, downsample="v1", patch_embed="v1", d_state=4)


def tiny(in_chans: int = 3, **kwargs) -> VMamba:
    params = dict(TINY)
    params.update(kwargs.pop("config", {}))
    return VMamba(make_config(**params), in_chans=in_chans, **kwargs)


@pytest.mark.parametrize("in_chans", [1, 3])
@pytest.mark.parametrize("size", [(64, 64), (96, 64)])
@pytest.mark.parametrize("variant", [TINY, TINY_VANILLA], ids=["v2", "vanilla"])
def test_forward_backward(in_chans: int, size: tuple[int, int], variant: dict) -> None:
    model = VMamba(make_config(**variant), in_chans=in_chans)
    x = torch.randn(2, in_chans, *size, requires_grad=True)
    feats = model(x)
    h, w = size
    assert [tuple(f.shape) for f in feats] == [(2, 16 * 2**i, h // 4 // 2**i, w // 4 // 2**i) for i in range(4)]
    sum(f.square().mean() for f in feats).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_feature_info_and_hooks() -> None:
    model = tiny().eval()
    info = model.feature_info
    assert isinstance(info, FeatureInfo)
    assert info.channels() == [16, 32, 64, 128] and info.strides() == [4, 8, 16, 32]
    assert info.modules() == ["outnorm0", "outnorm1", "outnorm2", "outnorm3"] and info.cam_level == 3
    seen = {}
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(lambda m, i, o, name=name: seen.__setitem__(name, o))
               for name in info.modules()]
    feats = model(torch.randn(1, 3, 64, 96))
    for h in handles:
        h.remove()
    for name, f in zip(info.modules(), feats):
        assert torch.equal(seen[name], f)  # hooks see the (B, C, H, W) level maps


def test_levels_are_normalized_stage_outputs() -> None:
    model = tiny().eval()
    raw = tiny(out_norm=False).eval()
    raw.load_state_dict(model.state_dict(), strict=False)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        normed, plain = model(x), raw(x)
    for a, b in zip(normed, plain):
        expected = torch.nn.functional.layer_norm(b.permute(0, 2, 3, 1), (b.shape[1],)).permute(0, 3, 1, 2)
        torch.testing.assert_close(a, expected, atol=1e-5, rtol=1e-5)
    assert all(not name.startswith("outnorm") for name, _ in raw.named_parameters())


def test_out_indices() -> None:
    model = tiny(out_indices=[1, -1]).eval()
    assert model.out_indices == (1, 3)
    assert model.feature_info.channels() == [32, 128] and model.feature_info.strides() == [8, 32]
    assert {n.split(".")[0] for n, _ in model.named_parameters() if n.startswith("outnorm")} == {"outnorm1", "outnorm3"}
    assert [tuple(f.shape[1:]) for f in model(torch.randn(1, 3, 64, 64))] == [(32, 8, 8), (128, 2, 2)]
    early = tiny(out_indices=[0])
    assert len(early(torch.randn(1, 3, 32, 32))) == 1
    with pytest.raises(SpecError, match="out of range"):
        tiny(out_indices=[4])
    with pytest.raises(SpecError, match="twice"):
        tiny(out_indices=[3, -1])


def test_kernel_backend_reaches_every_block() -> None:
    model = tiny(kernel_backend="torch")
    assert {m.op.backend for layer in model.layers for m in layer.blocks} == {"torch"}
    with pytest.raises(SpecError, match="kernel_backend"):
        tiny(kernel_backend="cuda")


def test_input_validation() -> None:
    model = tiny(in_chans=1)
    with pytest.raises(ShapeError, match="in_chans=1"):
        model(torch.randn(1, 3, 64, 64))
    with pytest.raises(ShapeError, match="divisible by 32"):
        model(torch.randn(1, 1, 64, 80))
    with pytest.raises(SpecError, match="in_chans"):
        tiny(in_chans=0)
    with pytest.raises(SpecError, match="drop_path_rate"):
        tiny(drop_path_rate=1.5)


def test_forward_from_reproduces_later_levels_without_out_norm() -> None:
    model = tiny(out_norm=False).eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        feats = model(x)
        for level in range(4):
            later = model.forward_from(feats[level], level)
            assert len(later) == 3 - level
            for a, b in zip(later, feats[level + 1:]):
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert model.forward_from(feats[-1], -1) == []


def test_forward_from_masked_map_with_out_norm() -> None:
    model = tiny(out_indices=[2, 3]).eval()
    x = torch.randn(2, 3, 64, 64)
    f2, f3 = model(x)
    mask = torch.rand(2, 1, *f2.shape[2:], requires_grad=True)
    (g3,) = model.forward_from(f2.detach() * mask, 0)
    assert g3.shape == f3.shape
    g3.sum().backward()
    assert mask.grad is not None and mask.grad.abs().sum() > 0  # the mask is trained through the later stage
    with pytest.raises(ShapeError, match=r"\(B, 64, h, w\)"):
        model.forward_from(f3, 0)
    with pytest.raises(ShapeError, match="level must be an int"):
        model.forward_from(f2, 2)


def test_batch_items_are_independent() -> None:
    model = tiny().eval()
    x = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        together = model(x)[-1]
        alone = torch.cat([model(x[i:i + 1])[-1] for i in range(3)])
    torch.testing.assert_close(together, alone, rtol=1e-5, atol=1e-5)


def test_grad_checkpointing_and_drop_path() -> None:
    torch.manual_seed(0)
    model = tiny(config={"depths": [1, 1, 2, 1]}, drop_path_rate=0.3)
    rates = [b.drop_path.p for layer in model.layers for b in layer.blocks]
    assert rates[0] == 0.0 and abs(rates[-1] - 0.3) < 1e-9 and rates == sorted(rates)
    model.eval()
    x = torch.randn(2, 3, 64, 64, requires_grad=True)
    ref = model(x)[-1]
    ref.sum().backward()
    grad_ref = x.grad.clone()
    x.grad = None
    model.set_grad_checkpointing(True)
    out = model(x)[-1]
    out.sum().backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(x.grad, grad_ref, rtol=1e-5, atol=1e-6)
    model.train()
    with torch.no_grad():
        assert not torch.allclose(model(x)[-1], model(x)[-1])  # stochastic depth is active in training
    assert {n.rsplit(".", 1)[1] for n in model.no_weight_decay()} == {"A_logs", "Ds"}


def test_no_cuda_calls_on_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args, **kwargs):
        raise AssertionError("torch.cuda was touched for CPU tensors")

    for name in ("is_available", "current_device", "device", "synchronize", "get_device_capability",
                 "device_count", "current_stream"):
        monkeypatch.setattr(torch.cuda, name, forbidden)
    model = tiny()
    sum(level.sum() for level in model(torch.randn(1, 3, 64, 64))).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_full_size_parameter_counts(name: str) -> None:
    """Every registered configuration, built through the registry (on the meta device: no memory)."""
    with torch.device("meta"):
        model = backbones.get(name)(out_norm=False)
    cfg = CONFIGS[name]
    assert sum(p.numel() for p in model.parameters()) == cfg.num_params(None)
    head = 2 * cfg.channels[3] + 1000 * cfg.channels[3] + 1000
    count = round((cfg.num_params(None) + head) / 1e6, 2)
    expected = {"vmamba_tiny_s1l8": 30.25, "vmamba_small_s1l20": 49.01, "vmamba_base_s1l20": 86.61,
                "vmamba_tiny_s2l5": 30.71, "vmamba_small_s2l15": 50.15, "vmamba_base_s2l15": 88.56,
                "vanilla_vmamba_tiny": 22.89, "vanilla_vmamba_small": 44.42, "vanilla_vmamba_base": 76.25,
                "vmamba_tiny_sr": 32.48}
    assert count == expected[name]


@pytest.mark.slow
def test_vmamba_tiny_forward_64() -> None:
    model = backbones.get("vmamba_tiny")().eval()
    with torch.no_grad():
        feats = model(torch.randn(1, 3, 64, 64))
    assert [tuple(f.shape) for f in feats] == [(1, 96, 16, 16), (1, 192, 8, 8), (1, 384, 4, 4), (1, 768, 2, 2)]
    assert all(torch.isfinite(f).all() for f in feats)
