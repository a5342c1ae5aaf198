"""medcam_vmamba.kernels.ssm_triton (forward and backward) under the Triton interpreter.

The checks run in a fresh process (vmamba_kernel_interp.py, through the ``kernel_check``
fixture) so that TRITON_INTERPRET=1 is set before triton is imported.
"""
from __future__ import annotations

import pytest

pytest.importorskip("triton")
pytest.importorskip("numpy")  # the Triton interpreter needs numpy


@pytest.mark.slow
def test_triton_selective_scan_matches_torch_under_the_interpreter(kernel_check):
    """Masked channel and state blocks, a partial last chunk: output, last state and the gradients of
    u, delta, A, B, C, D, delta_bias agree with the chunked PyTorch scan (1e-10 in float64)."""
    assert "ssm ok" in kernel_check("ssm")


@pytest.mark.slow
def test_compiles_for_a_cuda_target_without_a_gpu(kernel_check):
    """Ahead-of-time compilation of the selective-scan kernels to an sm_80 cubin: checks the typing and
    lowering of the compiled (non-interpreted) kernel, which the interpreter does not."""
    assert "compile-ssm ok" in kernel_check("compile-ssm", interpret=False)
