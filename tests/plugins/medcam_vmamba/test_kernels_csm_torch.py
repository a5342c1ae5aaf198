"""medcam_vmamba.kernels.csm_torch: the routes, the layouts, adjointness and gradcheck."""
from __future__ import annotations

import itertools

import pytest
import torch

from medcam_vmamba.kernels.csm_torch import torch_cross_merge, torch_cross_scan

ALL = list(itertools.product(range(4), [True, False], [True, False], [False, True]))


def _routes_by_formula(h: int, w: int, scans: int) -> list[list[int]]:
    """For each route k, the row-major source index of every sequence position (independent of the code)."""
    length = h * w
    row = list(range(length))
    col = [(q % h) * w + q // h for q in range(length)]  # y1[q] = x[h = q % H, w = q // H]
    if scans == 0:
        return [row, col, row[::-1], col[::-1]]
    if scans == 1:
        return [row] * 4
    if scans == 2:
        return [row, row, row[::-1], row[::-1]]
    # rot90 by k counter-clockwise quarter turns: a (W, H) grid, out[i, j] = x[j, W-1-i] (k = 1)
    # and out[i, j] = x[H-1-j, i] (k = 3); flat position p = i * H + j
    rot1 = [(p % h) * w + (w - 1 - p // h) for p in range(length)]
    rot3 = [(h - 1 - p % h) * w + p // h for p in range(length)]
    return [row, rot1, row[::-1], rot3]


def _map(b: int, c: int, h: int, w: int, cf: bool, one_by_one: bool, dtype=torch.float32) -> torch.Tensor:
    if one_by_one:
        return torch.randn((b, 4, c, h, w) if cf else (b, h, w, 4, c), dtype=dtype)
    return torch.randn((b, c, h, w) if cf else (b, h, w, c), dtype=dtype)


def test_example_from_vmamba_on_2x3_grid():
    x = torch.arange(6.0).view(1, 1, 2, 3)
    y = torch_cross_scan(x)[0, :, 0]
    assert y.tolist() == [[0, 1, 2, 3, 4, 5], [0, 3, 1, 4, 2, 5], [5, 4, 3, 2, 1, 0], [5, 2, 4, 1, 3, 0]]
    y3 = torch_cross_scan(x, scans=3)[0, :, 0]
    assert y3[1].tolist() == [2, 5, 1, 4, 0, 3] and y3[3].tolist() == [3, 0, 4, 1, 5, 2]


@pytest.mark.parametrize("scans", range(4))
@pytest.mark.parametrize("h,w", [(2, 3), (3, 2), (4, 5), (1, 7)])
def test_routes_match_index_formulas(scans, h, w):
    x = torch.randn(2, 3, h, w)
    y = torch_cross_scan(x, scans=scans)
    flat = x.flatten(2)
    for k, idx in enumerate(_routes_by_formula(h, w, scans)):
        assert torch.equal(y[:, k], flat[:, :, idx]), f"route {k}"


@pytest.mark.parametrize("scans,in_cf,out_cf,one_by_one", ALL)
def test_layouts_agree_with_channel_first(scans, in_cf, out_cf, one_by_one):
    b, c, h, w = 2, 3, 4, 5
    x = _map(b, c, h, w, in_cf, one_by_one)
    y = torch_cross_scan(x, in_cf, out_cf, one_by_one, scans)
    assert y.shape == ((b, 4, c, h * w) if out_cf else (b, h * w, 4, c))
    if one_by_one:
        x_cf = x if in_cf else x.permute(0, 3, 4, 1, 2)
        ref = torch.stack([torch_cross_scan(x_cf[:, k], scans=scans)[:, k] for k in range(4)], 1)
    else:
        ref = torch_cross_scan(x if in_cf else x.permute(0, 3, 1, 2), scans=scans)
    assert torch.equal(y if out_cf else y.permute(0, 2, 3, 1), ref)


@pytest.mark.parametrize("scans,in_cf,out_cf,one_by_one", ALL)
def test_merge_is_the_adjoint_of_scan(scans, in_cf, out_cf, one_by_one):
    b, c, h, w = 2, 3, 4, 5
    x = _map(b, c, h, w, in_cf, one_by_one, torch.float64)
    ys = torch.randn((b, 4, c, h, w) if out_cf else (b, h, w, 4, c), dtype=torch.float64)
    scanned = torch_cross_scan(x, in_cf, out_cf, one_by_one, scans)
    merged = torch_cross_merge(ys, in_cf, out_cf, one_by_one, scans)
    if one_by_one:
        assert merged.shape == ((b, 4, c, h * w) if in_cf else (b, h * w, 4, c))
    else:
        assert merged.shape == ((b, c, h * w) if in_cf else (b, h * w, c))
    lhs = (scanned.reshape(-1) * ys.reshape(-1)).sum()  # <scan x, y>
    rhs = (x.reshape(-1) * merged.reshape(-1)).sum()  # <x, merge y>
    assert torch.allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_merge_of_scan_counts_each_pixel_four_times():
    x = torch.randn(1, 2, 5, 3)
    for scans in range(4):
        y = torch_cross_scan(x, scans=scans)
        back = torch_cross_merge(y.view(1, 4, 2, 5, 3), scans=scans)
        assert torch.allclose(back.view_as(x), 4 * x)


@pytest.mark.parametrize("scans,in_cf,out_cf,one_by_one",
                         [(0, True, True, False), (1, False, True, False), (2, True, False, False),
                          (3, False, False, False), (0, False, True, True), (3, True, False, True)])
def test_gradcheck_scan_and_merge(scans, in_cf, out_cf, one_by_one):
    b, c, h, w = 1, 2, 3, 2
    x = _map(b, c, h, w, in_cf, one_by_one, torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: torch_cross_scan(t, in_cf, out_cf, one_by_one, scans), (x,))
    ys = torch.randn((b, 4, c, h, w) if out_cf else (b, h, w, 4, c), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: torch_cross_merge(t, in_cf, out_cf, one_by_one, scans), (ys,))
