"""Shared fixtures of the VMamba plugin tests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

import pytest

KERNEL_SCRIPT = Path(__file__).with_name("vmamba_kernel_interp.py")


@pytest.fixture
def kernel_check() -> Callable[..., str]:
    """``kernel_check(check, interpret=True) -> stdout``: run one check of vmamba_kernel_interp.py in a
    fresh process (so TRITON_INTERPRET is set, or unset, before triton is imported); fails on a non-zero
    exit and skips when the script reports ``SKIP:`` (e.g. no CUDA compiler backend)."""

    def run(check: str, interpret: bool = True) -> str:
        env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
        if interpret:
            env.update(TRITON_INTERPRET="1", OMP_NUM_THREADS="1")
        res = subprocess.run([sys.executable, str(KERNEL_SCRIPT), check], capture_output=True, text=True,
                             env=env, timeout=900)
        if not interpret and "SKIP:" in res.stdout:
            pytest.skip(res.stdout.split("SKIP:", 1)[1].strip())
        assert res.returncode == 0, res.stdout + res.stderr
        return res.stdout

    return run
