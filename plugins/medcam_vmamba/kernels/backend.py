"""Choosing a kernel backend: ``"auto"``, ``"torch"``, ``"triton"`` or ``"mamba"``.

Dispatch is strictly by device: CPU tensors never reach ``torch.cuda`` nor
import triton. Triton is optional: the Triton modules are imported only when a
Triton path is chosen, so medcam works without triton installed. On CPU, Triton
runs only in its interpreter, which needs ``TRITON_INTERPRET=1`` in the
environment before triton is first imported (tests use that).
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import os
from typing import ContextManager

import torch
from torch import Tensor

from medcam.errors import PluginError, SpecError
from medcam.registry import did_you_mean

__all__ = ["check_backend", "device_guard", "triton_available", "triton_interpreting", "use_triton"]


def check_backend(backend: str, allowed: tuple[str, ...]) -> str:
    """Return ``backend`` if it is one of ``allowed``, else raise a clear error."""
    if backend not in allowed:
        raise SpecError(f"unknown kernel backend {backend!r}{did_you_mean(str(backend), allowed)} "
                        f"(choose from {', '.join(allowed)})")
    return backend


@functools.lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when ``import triton`` works (the import is attempted once)."""
    try:
        importlib.import_module("triton")
    except Exception:  # ImportError, or a broken install raising something else
        return False
    return True


def triton_interpreting() -> bool:
    """True when the Triton interpreter (CPU execution of Triton kernels) is switched on."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def use_triton(t: Tensor, backend: str) -> bool:
    """Whether the Triton path serves tensor ``t`` under ``backend`` (validated by the caller).

    ``"auto"`` picks Triton for CUDA tensors when triton imports; ``"triton"``
    forces it and raises if it cannot run (no triton, or a CPU tensor without
    the interpreter).
    """
    if backend == "torch" or backend == "mamba":
        return False
    if backend == "auto":
        return t.device.type == "cuda" and triton_available()
    if not triton_available():
        raise PluginError("backend='triton' needs the optional dependency triton "
                          "(pip install 'medcam[cuda]'); use backend='auto' or 'torch'")
    if t.device.type != "cuda" and not triton_interpreting():
        raise SpecError(f"backend='triton' on a {t.device.type} tensor needs the Triton interpreter: "
                        "set TRITON_INTERPRET=1 before triton is imported, or use backend='torch'")
    return True


def device_guard(t: Tensor) -> ContextManager:
    """Make ``t``'s GPU the current one for a kernel launch (Triton launches on the current
    device; VMamba #231/#247 "context is destroyed" on cuda:1). A no-op for CPU tensors,
    which never enter ``torch.cuda``."""
    if t.device.type == "cuda":
        return torch.cuda.device(t.device)
    return contextlib.nullcontext()
