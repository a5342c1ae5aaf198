"""medcam_vmamba.kernels.backend: backend names, the interpreter switch, device dispatch."""
from __future__ import annotations

import sys

import pytest
import torch

from medcam.errors import SpecError
from medcam_vmamba.kernels.backend import check_backend, device_guard, triton_interpreting, use_triton


def test_check_backend():
    assert check_backend("torch", ("auto", "torch")) == "torch"
    with pytest.raises(SpecError, match="did you mean 'auto'"):
        check_backend("autp", ("auto", "torch"))


@pytest.mark.parametrize("value,expected", [("1", True), ("true", True), ("0", False), ("", False)])
def test_triton_interpreting_reads_the_environment(monkeypatch, value, expected):
    monkeypatch.setenv("TRITON_INTERPRET", value)
    assert triton_interpreting() is expected


def test_cpu_tensors_never_pick_triton_automatically(monkeypatch):
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    x = torch.zeros(1)
    assert use_triton(x, "auto") is False
    assert use_triton(x, "torch") is False
    assert use_triton(x, "mamba") is False


def test_auto_on_cpu_does_not_import_triton(monkeypatch):
    monkeypatch.delitem(sys.modules, "triton", raising=False)
    use_triton(torch.zeros(1), "auto")
    assert "triton" not in sys.modules


def test_device_guard_is_a_no_op_for_cpu(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("torch.cuda touched for a CPU tensor")

    monkeypatch.setattr(torch.cuda, "device", boom)
    entered = False
    with device_guard(torch.zeros(1)):
        entered = True
    assert entered
