"""medcam_vmamba.ss2d: the SS2D mixer against a step-by-step reference of VMamba's equations."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from medcam.errors import MedcamError, SpecError
from medcam_vmamba.ss2d import SS2D


def _routes(h: int, w: int) -> list[list[tuple[int, int]]]:
    """Grid positions visited by VMamba's four scans: row-major, column-major, and both reversed."""
    rows = [(i, j) for i in range(h) for j in range(w)]
    cols = [(i, j) for j in range(w) for i in range(h)]
    return [rows, cols, rows[::-1], cols[::-1]]


def reference_ss2d(m: SS2D, x: torch.Tensor) -> torch.Tensor:
    """SS2D written out with explicit loops over directions, positions and time steps (float64)."""
    x = x.double()
    p = {k: v.detach().double() for k, v in m.state_dict().items()}
    bsz, h, w, _ = x.shape
    d, n, r = m.d_inner, m.d_state, m.dt_rank
    xz = x @ p["in_proj.weight"].T
    if m.gate:
        xin, z = xz[..., :d], F.silu(xz[..., d:])
    else:
        xin, z = xz, None
    u = F.conv2d(xin.permute(0, 3, 1, 2), p["conv2d.weight"], p.get("conv2d.bias"), padding=1, groups=d)
    u = F.silu(u)  # (B, D, H, W)
    a = -torch.exp(p["A_logs"]).view(4, d, n)
    y = torch.zeros(bsz, d, h, w, dtype=torch.float64)
    for k, route in enumerate(_routes(h, w)):
        state = torch.zeros(bsz, d, n, dtype=torch.float64)
        for i, j in route:
            uk = u[:, :, i, j]  # (B, D)
            proj = uk @ p["x_proj_weight"][k].T  # (B, R + 2N): [dt | B | C]
            dt_low, b_t, c_t = proj[:, :r], proj[:, r:r + n], proj[:, r + n:]
            delta = F.softplus(dt_low @ p["dt_projs_weight"][k].T + p["dt_projs_bias"][k])  # (B, D)
            state = torch.exp(delta[..., None] * a[k]) * state + (delta * uk)[..., None] * b_t[:, None, :]
            y[:, :, i, j] += (state * c_t[:, None, :]).sum(-1) + p["Ds"].view(4, d)[k] * uk
    y = F.layer_norm(y.permute(0, 2, 3, 1), (d,), p["out_norm.weight"], p["out_norm.bias"], 1e-5)
    if z is not None:
        y = y * z
    return y @ p["out_proj.weight"].T


@pytest.mark.parametrize("gate", [True, False])
@pytest.mark.parametrize("hw", [(3, 4), (5, 2)])
def test_matches_reference(gate: bool, hw: tuple[int, int]) -> None:
    torch.manual_seed(1)
    m = SS2D(8, d_state=3, ssm_ratio=1.5, gate=gate, conv_bias=True).double()
    with torch.no_grad():  # a generic point, not just the initialization
        m.A_logs.add_(0.3 * torch.randn_like(m.A_logs))
        m.Ds.add_(0.5 * torch.randn_like(m.Ds))
        m.out_norm.weight.add_(0.2 * torch.randn_like(m.out_norm.weight))
    x = torch.randn(2, *hw, 8, dtype=torch.float64)
    out = m(x)
    assert out.shape == x.shape and out.dtype == torch.float64
    torch.testing.assert_close(out, reference_ss2d(m, x), rtol=1e-9, atol=1e-10)


def test_parameters_and_initialization() -> None:
    torch.manual_seed(0)
    m = SS2D(32, d_state=4, ssm_ratio=2.0, gate=False, conv_bias=False)
    d, r = 64, math.ceil(32 / 16)
    shapes = {k: tuple(v.shape) for k, v in m.state_dict().items()}
    assert shapes == {
        "in_proj.weight": (d, 32), "conv2d.weight": (d, 1, 3, 3), "x_proj_weight": (4, r + 8, d),
        "dt_projs_weight": (4, d, r), "dt_projs_bias": (4, d), "A_logs": (4 * d, 4), "Ds": (4 * d,),
        "out_norm.weight": (d,), "out_norm.bias": (d,), "out_proj.weight": (32, d)}
    assert torch.allclose(m.A_logs, torch.log(torch.arange(1.0, 5.0)).expand(4 * d, 4))
    assert torch.equal(m.Ds, torch.ones(4 * d))
    steps = F.softplus(m.dt_projs_bias)
    assert steps.min() >= 1e-4 * 0.999 and steps.max() <= 0.1 * 1.001
    assert m.dt_projs_weight.abs().max() <= r**-0.5
    assert m.A_logs._no_weight_decay and m.Ds._no_weight_decay
    gated = SS2D(32, d_state=4, ssm_ratio=2.0, gate=True)
    assert gated.in_proj.weight.shape == (2 * d, 32) and gated.conv2d.bias.shape == (d,)
    assert SS2D(32, d_conv=1).conv2d is None


def test_backward_and_bfloat16_autocast() -> None:
    m = SS2D(16, d_state=2)
    x = torch.randn(2, 4, 6, 16, requires_grad=True)
    m(x.transpose(1, 2).transpose(1, 2)).square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = m(x.detach())
    assert out.dtype == torch.bfloat16 and torch.isfinite(out.float()).all()


def test_kernel_backend_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)  # kernel tests may switch the interpreter on
    torch.manual_seed(0)
    auto = SS2D(8, d_state=2)
    forced = SS2D(8, d_state=2, backend="torch")
    forced.load_state_dict(auto.state_dict())
    x = torch.randn(1, 4, 4, 8)
    assert torch.equal(auto(x), forced(x))  # on CPU "auto" is the PyTorch path
    with pytest.raises(SpecError, match="did you mean 'mamba'"):
        SS2D(8, backend="mambaa")
    for backend in ("mamba", "triton"):  # forced backends that cannot serve CPU tensors say so
        with pytest.raises(MedcamError, match=backend):
            SS2D(8, d_state=2, backend=backend)(x)
