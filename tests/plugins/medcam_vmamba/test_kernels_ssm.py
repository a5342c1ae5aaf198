"""medcam_vmamba.kernels.ssm: the public selective_scan, its checks and its dispatch."""
from __future__ import annotations

import sys

import pytest
import torch

from medcam.errors import PluginError, ShapeError, SpecError
import medcam_vmamba.kernels.ssm as selective_scan_module
from medcam_vmamba.kernels import selective_scan
from medcam_vmamba.kernels.ssm_torch import torch_selective_scan


def _inputs(bsz=2, kd=6, groups=3, n=2, length=9):
    u = torch.randn(bsz, kd, length)
    return u, torch.randn(bsz, kd, length), -torch.rand(kd, n), torch.randn(bsz, groups, n, length), \
        torch.randn(bsz, groups, n, length)


def test_cpu_auto_is_the_chunked_torch_path():
    u, dt, A, B, C = _inputs()
    D, bias = torch.randn(6), torch.randn(6)
    y, last = selective_scan(u, dt, A, B, C, D, bias, True, True)
    y2, last2 = torch_selective_scan(u, dt, A, B, C, D, bias, True, True)
    assert torch.equal(y, y2) and torch.equal(last, last2)
    assert y.shape == (2, 6, 9) and last.shape == (2, 6, 2)


def test_b_and_c_in_the_other_mamba_layouts():
    u, dt, A, B, C = _inputs(groups=1)
    ref = selective_scan(u, dt, A, B, C)
    assert torch.equal(selective_scan(u, dt, A, B[:, 0], C[:, 0]), ref)  # (B, N, L)
    fixed_b, fixed_c = torch.randn(6, 2), torch.randn(6, 2)  # (KD, N): one B per channel, constant in time
    expanded = selective_scan(u, dt, A, fixed_b[None, :, :, None].expand(2, 6, 2, 9),
                              fixed_c[None, :, :, None].expand(2, 6, 2, 9))
    assert torch.allclose(selective_scan(u, dt, A, fixed_b, fixed_c), expanded)


def test_groups_share_b_and_c():
    u, dt, A, B, C = _inputs(kd=4, groups=2)
    y = selective_scan(u, dt, A, B, C)
    per_channel = selective_scan(u, dt, A, B.repeat_interleave(2, 1), C.repeat_interleave(2, 1))
    assert torch.allclose(y, per_channel, atol=1e-6)


@pytest.mark.parametrize("change,match", [
    (lambda a: a.__setitem__(0, torch.randn(2, 6)), r"u must have shape \(B, KD, L\)"),
    (lambda a: a.__setitem__(1, torch.randn(2, 6, 8)), "delta must have the shape of u"),
    (lambda a: a.__setitem__(2, torch.randn(5, 2)), r"A must have shape \(KD, N\)"),
    (lambda a: a.__setitem__(3, torch.randn(2, 4, 2, 9)), "does not divide the 6 channels"),
    (lambda a: a.__setitem__(4, torch.randn(2, 3, 3, 9)), r"C must have shape \(B, G, N, L\)"),
    (lambda a: a.__setitem__(2, -torch.rand(6, 2, dtype=torch.cfloat)), "complex A"),
    (lambda a: a.__setitem__(0, torch.ones(2, 6, 9, dtype=torch.long)), "floating point"),
])
def test_shape_errors(change, match):
    args = list(_inputs())
    change(args)
    with pytest.raises(ShapeError, match=match):
        selective_scan(*args)


def test_d_bias_and_chunk_checks():
    args = _inputs()
    with pytest.raises(ShapeError, match=r"D must have shape \(KD,\)"):
        selective_scan(*args, D=torch.ones(5))
    with pytest.raises(ShapeError, match="delta_bias"):
        selective_scan(*args, delta_bias=torch.ones(6, 1))
    with pytest.raises(SpecError, match="chunk_size"):
        selective_scan(*args, chunk_size=0)
    with pytest.raises(SpecError, match="did you mean 'mamba'"):
        selective_scan(*args, backend="mambaa")


def test_mamba_backend_refuses_cpu_before_importing_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "mamba_ssm", None)  # an import attempt would raise
    with pytest.raises(SpecError, match="CUDA tensors only"):
        selective_scan(*_inputs(), backend="mamba")


def test_mamba_missing_is_a_plugin_error(monkeypatch):
    """On a CUDA tensor without mamba-ssm; the device check is bypassed by a stand-in tensor type."""
    monkeypatch.setattr(selective_scan_module, "_mamba_fn", lambda: None)
    u, dt, A, B, C = _inputs()
    fake_cuda = type("FakeDevice", (), {"type": "cuda"})()
    with pytest.raises(PluginError, match="mamba-ssm"):
        selective_scan_module._run_mamba(_Dev(u, fake_cuda), dt, A, B, C, None, None, False, False)


class _Dev:
    """A tensor stand-in reporting another device (only ``.device`` is read before the error)."""

    def __init__(self, t, device):
        self._t, self.device = t, device


def test_gradcheck_through_the_public_function():
    g = torch.Generator().manual_seed(1)
    u, dt = (torch.randn(1, 4, 6, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    A = (-torch.rand(4, 3, generator=g, dtype=torch.float64) - 0.1).requires_grad_(True)
    B, C = (torch.randn(1, 2, 3, 6, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    D, bias = (torch.randn(4, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(2))
    assert torch.autograd.gradcheck(
        lambda *t: selective_scan(*t, delta_softplus=True, backend="torch", chunk_size=4), (u, dt, A, B, C, D, bias))
