"""medcam_vmamba.kernels.csm: the public cross_scan / cross_merge, their checks and CPU dispatch."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from medcam.errors import ShapeError, SpecError
from medcam_vmamba.kernels import cross_merge, cross_scan
from medcam_vmamba.kernels.csm_torch import torch_cross_merge, torch_cross_scan


def test_cpu_calls_match_the_torch_path():
    x = torch.randn(2, 3, 4, 5)
    for scans in range(4):
        assert torch.equal(cross_scan(x, scans=scans), torch_cross_scan(x, scans=scans))
        y = torch.randn(2, 4, 3, 4, 5)
        assert torch.equal(cross_merge(y, scans=scans), torch_cross_merge(y, scans=scans))


def test_channel_last_round_trip_and_gradient():
    x = torch.randn(1, 6, 7, 3, requires_grad=True)  # (B, H, W, C)
    y = cross_scan(x, in_channel_first=False, out_channel_first=False)
    assert y.shape == (1, 42, 4, 3)
    back = cross_merge(y.view(1, 6, 7, 4, 3), in_channel_first=False, out_channel_first=False)
    assert torch.allclose(back.view_as(x), 4 * x)
    back.sum().backward()
    assert torch.allclose(x.grad, torch.full_like(x, 4.0))  # merge(scan(.)) = 4 * identity


@pytest.mark.parametrize("bad", [torch.randn(2, 3, 4), torch.randn(1, 2, 3, 4, 5)])
def test_wrong_map_shape(bad):
    with pytest.raises(ShapeError, match=r"\(B, C, H, W\)"):
        cross_scan(bad)


def test_one_by_one_needs_four_maps():
    with pytest.raises(ShapeError, match=r"\(B, 4, C, H, W\)"):
        cross_scan(torch.randn(1, 3, 2, 4, 4), one_by_one=True)
    with pytest.raises(ShapeError, match=r"\(B, H, W, 4, C\)"):
        cross_merge(torch.randn(1, 4, 4, 3, 2), out_channel_first=False)


def test_integer_input_and_bad_scans():
    with pytest.raises(ShapeError, match="floating point"):
        cross_scan(torch.ones(1, 1, 2, 2, dtype=torch.long))
    with pytest.raises(SpecError, match="scans must be"):
        cross_scan(torch.randn(1, 1, 2, 2), scans=4)
    with pytest.raises(ShapeError, match="torch.Tensor"):
        cross_merge([1, 2, 3])


def test_unknown_backend_suggests_a_name():
    with pytest.raises(SpecError, match="did you mean 'triton'"):
        cross_scan(torch.randn(1, 1, 2, 2), backend="trition")


def test_triton_on_cpu_without_interpreter_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises((SpecError, ImportError), match="TRITON_INTERPRET|triton"):
        cross_scan(torch.randn(1, 1, 2, 2), backend="triton")


def test_works_without_triton_installed():
    """A fresh interpreter where ``import triton`` fails: the package imports and runs on CPU."""
    code = (
        "import sys; sys.modules['triton'] = None\n"
        "import torch\n"
        "from medcam_vmamba.kernels import cross_scan, cross_merge, selective_scan, triton_available\n"
        "assert not triton_available()\n"
        "x = torch.randn(1, 2, 3, 4, requires_grad=True)\n"
        "y = cross_scan(x); m = cross_merge(y.view(1, 4, 2, 3, 4)); m.sum().backward()\n"
        "u = torch.randn(1, 4, 5); out = selective_scan(u, u, -torch.ones(4, 2), torch.randn(1, 2, 2, 5),"
        " torch.randn(1, 2, 2, 5))\n"
        "assert out.shape == (1, 4, 5)\n"
        "try:\n"
        "    cross_scan(x, backend='triton')\n"
        "except ImportError as e:\n"
        "    print('refused:', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "refused:" in res.stdout and "triton" in res.stdout
