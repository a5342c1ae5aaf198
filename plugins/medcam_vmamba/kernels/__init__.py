"""VMamba's kernels: cross-scan / cross-merge and the selective scan, on CPU and CUDA.

``cross_scan`` / ``cross_merge`` follow VMamba's layouts (Liu et al., NeurIPS
2024); ``selective_scan`` follows mamba-ssm's ``selective_scan_fn`` (Gu and Dao,
2023). Each dispatches by device: Triton kernels (or mamba-ssm) for CUDA
tensors when the optional dependency imports, a fast PyTorch path otherwise.
Triton is never imported for CPU tensors, so this package works without it.
"""
from .backend import triton_available
from .csm import cross_merge, cross_scan
from .ssm import mamba_available, selective_scan

__all__ = ["cross_scan", "cross_merge", "selective_scan", "triton_available", "mamba_available"]
