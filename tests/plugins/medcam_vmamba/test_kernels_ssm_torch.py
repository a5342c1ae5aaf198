"""medcam_vmamba.kernels.ssm_torch: the chunked CPU selective scan against a plain sequential loop."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medcam_vmamba.kernels.ssm_torch import default_chunk, softplus_, torch_selective_scan

F64 = torch.float64


def sequential_scan(u, delta, A, B, C, D=None, delta_bias=None, delta_softplus=False):
    """The recurrence written out step by step (Gu and Dao 2023): the independent reference."""
    dt = delta if delta_bias is None else delta + delta_bias[:, None]
    dt = F.softplus(dt) if delta_softplus else dt
    bsz, kd, length = u.shape
    per_group = kd // B.shape[1]
    h = u.new_zeros(bsz, kd, A.shape[1])
    ys = []
    for l in range(length):
        b_l = B[:, :, :, l].repeat_interleave(per_group, dim=1)  # (B, KD, N)
        c_l = C[:, :, :, l].repeat_interleave(per_group, dim=1)
        h = torch.exp(dt[:, :, l, None] * A) * h + (dt[:, :, l] * u[:, :, l])[:, :, None] * b_l
        ys.append((h * c_l).sum(-1))
    y = torch.stack(ys, dim=-1)
    if D is not None:
        y = y + D[:, None] * u
    return y, h


def make_inputs(bsz=2, kd=6, groups=3, n=4, length=23, dtype=F64, seed=0):
    g = torch.Generator().manual_seed(seed)
    u = torch.randn(bsz, kd, length, generator=g, dtype=dtype)
    delta = torch.randn(bsz, kd, length, generator=g, dtype=dtype)
    A = -torch.rand(kd, n, generator=g, dtype=dtype) * 2 - 0.1
    B = torch.randn(bsz, groups, n, length, generator=g, dtype=dtype)
    C = torch.randn(bsz, groups, n, length, generator=g, dtype=dtype)
    D = torch.randn(kd, generator=g, dtype=dtype)
    bias = torch.randn(kd, generator=g, dtype=dtype)
    return [t.requires_grad_(True) for t in (u, delta, A, B, C, D, bias)]


@pytest.mark.parametrize("chunk", [1, 4, 5, 7, 23, 64, None])
def test_forward_and_all_gradients_equal_the_sequential_loop(chunk):
    inputs = make_inputs(length=23)  # chunks of 4, 5, 7 leave a partial last chunk
    y, last = torch_selective_scan(*inputs, delta_softplus=True, return_last_state=True, chunk_size=chunk)
    y_ref, last_ref = sequential_scan(*inputs, delta_softplus=True)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-10)
    torch.testing.assert_close(last, last_ref.detach(), rtol=0, atol=1e-10)
    weight = torch.randn_like(y)
    grads = torch.autograd.grad((y * weight).sum(), inputs)
    grads_ref = torch.autograd.grad((y_ref * weight).sum(), inputs)
    for name, got, ref in zip(["u", "delta", "A", "B", "C", "D", "delta_bias"], grads, grads_ref):
        torch.testing.assert_close(got, ref, rtol=0, atol=1e-10, msg=lambda m, name=name: f"d{name}: {m}")


def test_without_bias_softplus_or_d_and_with_one_group_and_state():
    u, delta, A, B, C, _, _ = make_inputs(bsz=1, kd=4, groups=1, n=1, length=10)
    delta = delta.detach().abs().requires_grad_(True)
    y = torch_selective_scan(u, delta, A, B, C, chunk_size=3)
    y_ref, _ = sequential_scan(u, delta, A, B, C)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-10)
    g, g_ref = (torch.autograd.grad(t.sum(), (delta, A, B)) for t in (y, y_ref))
    for a, b in zip(g, g_ref):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-10)


def test_gradcheck_float64():
    inputs = make_inputs(bsz=1, kd=4, groups=2, n=2, length=7)
    assert torch.autograd.gradcheck(
        lambda *t: torch_selective_scan(*t, delta_softplus=True, chunk_size=3), tuple(inputs))


def test_large_decays_stay_finite():
    """delta * A summing to -12800 inside one chunk: a factorised exp(-A cumsum(delta)) would overflow."""
    u, delta, A, B, C, D, bias = (t.detach() for t in make_inputs(bsz=1, kd=2, groups=1, n=3, length=64))
    delta = torch.full_like(delta, 20.0)
    A = torch.full_like(A, -10.0)
    for dtype in (torch.float32, F64):
        args = [t.to(dtype) for t in (u, delta, A, B, C, D)]
        y = torch_selective_scan(*args, chunk_size=64)
        y_ref, _ = sequential_scan(*args)
        assert torch.isfinite(y).all()
        torch.testing.assert_close(y, y_ref)


def test_half_inputs_give_float32_like_vmamba_oflex():
    u, delta, A, B, C, D, bias = (t.detach().half() for t in make_inputs(bsz=1, kd=4, groups=2, n=2, length=9))
    y = torch_selective_scan(u, delta, A, B, C, D, bias, delta_softplus=True)
    assert y.dtype == torch.float32
    y_ref, _ = sequential_scan(*(t.float() for t in (u, delta, A, B, C, D, bias)), delta_softplus=True)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-4)
    y32 = torch_selective_scan(*(t.float() for t in (u, delta, A, B, C)))
    assert y32.dtype == torch.float32 and y32.is_contiguous()


def test_sequence_of_length_one_and_default_chunk():
    inputs = make_inputs(bsz=1, kd=2, groups=1, n=2, length=1)
    y = torch_selective_scan(*inputs)
    y_ref, _ = sequential_scan(*inputs)
    torch.testing.assert_close(y, y_ref, rtol=0, atol=1e-12)
    assert [default_chunk(n) for n in (1, 2, 49, 50, 3136)] == [1, 2, 7, 8, 56]


def test_softplus_matches_torch_within_a_few_ulps():
    z = torch.cat([torch.linspace(-100, 100, 200001), torch.tensor([20.0, 20.5, 88.0, 89.0, 1e4, -1e4])])
    for dtype, rel in ((torch.float32, 4e-7), (F64, 1e-15)):
        zz = z.to(dtype)
        got, ref = softplus_(zz), F.softplus(zz)
        assert torch.isfinite(got).all()
        assert ((got - ref).abs() <= rel * ref.abs() + torch.finfo(dtype).tiny).all()
        big = zz > 20
        assert torch.equal(got[big], zz[big])  # identity above the threshold, as F.softplus
