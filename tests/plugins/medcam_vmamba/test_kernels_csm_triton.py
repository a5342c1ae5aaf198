"""medcam_vmamba.kernels.csm_triton under the Triton interpreter, against the PyTorch reference.

The checks run in a fresh process (vmamba_kernel_interp.py, through the ``kernel_check``
fixture) so that TRITON_INTERPRET=1 is set before triton is imported.
"""
from __future__ import annotations

import pytest

pytest.importorskip("triton")
pytest.importorskip("numpy")  # the Triton interpreter needs numpy


@pytest.mark.slow
def test_every_cross_scan_variant_matches_torch_under_the_interpreter(kernel_check):
    """32 variants (scans 0-3, both layouts in and out, one_by_one) on 33x35 with 32x32 tiles:
    scans exactly equal, merges and both backwards allclose; plus the public dispatch."""
    assert "csm ok: 32 variants" in kernel_check("csm")


@pytest.mark.slow
def test_compiles_for_a_cuda_target_without_a_gpu(kernel_check):
    """Ahead-of-time compilation of the cross-scan kernel to an sm_80 cubin: checks the typing and
    lowering of the compiled (non-interpreted) kernel, which the interpreter does not."""
    assert "compile-csm ok" in kernel_check("compile-csm", interpret=False)
