"""Checks of medcam's Triton kernels on CPU, run by the tests in a fresh interpreter.

``python vmamba_kernel_interp.py csm|ssm`` runs the kernels in the Triton
interpreter against the PyTorch reference. TRITON_INTERPRET=1 must be set before
triton is first imported (the @triton.jit decorator reads it), hence a separate
process: in the pytest process another test may have imported triton already.

``python vmamba_kernel_interp.py compile-csm|compile-ssm`` compiles the kernels
ahead of time for a CUDA target (sm_80, through ptxas to a cubin; no GPU needed),
which catches what the interpreter does not check: typing and lowering of the
compiled kernel.

Exits non-zero with a message on the first mismatch; prints a summary.
"""
from __future__ import annotations

import os
import sys

MODE = sys.argv[1] if len(sys.argv) > 1 else ""
if MODE in ("csm", "ssm"):
    os.environ["TRITON_INTERPRET"] = "1"  # before anything imports triton
else:
    os.environ.pop("TRITON_INTERPRET", None)

import itertools  # noqa: E402

import torch  # noqa: E402

from medcam_vmamba.kernels import cross_merge, cross_scan, selective_scan  # noqa: E402
from medcam_vmamba.kernels.csm_torch import torch_cross_merge, torch_cross_scan  # noqa: E402
from medcam_vmamba.kernels.csm_triton import triton_cross_merge, triton_cross_scan  # noqa: E402
from medcam_vmamba.kernels.ssm_torch import torch_selective_scan  # noqa: E402
from medcam_vmamba.kernels.ssm_triton import triton_selective_scan  # noqa: E402

# 33 x 35 pixels with 32 x 32 tiles: 2 x 2 tiles, the edge ones masked; 3 channels in a 4-wide block.
B, C, H, W = 1, 3, 33, 35
BLOCKS = (4, 32, 32)


def _map(cf: bool, one_by_one: bool) -> torch.Tensor:
    if one_by_one:
        shape = (B, 4, C, H, W) if cf else (B, H, W, 4, C)
    else:
        shape = (B, C, H, W) if cf else (B, H, W, C)
    return torch.randn(shape, requires_grad=True)


def _fail(what: str, got: torch.Tensor, ref: torch.Tensor) -> None:
    diff = (got.double() - ref.double()).abs().max().item() if got.shape == ref.shape else "shape"
    sys.exit(f"MISMATCH {what}: max abs diff {diff} (shapes {tuple(got.shape)} vs {tuple(ref.shape)})")


def check_csm() -> None:
    n = 0
    for scans, in_cf, out_cf, one_by_one in itertools.product(range(4), [True, False], [True, False], [False, True]):
        tag = f"scans={scans} in_cf={in_cf} out_cf={out_cf} one_by_one={one_by_one}"
        x = _map(in_cf, one_by_one)
        y = triton_cross_scan(x, in_cf, out_cf, one_by_one, scans, BLOCKS)
        y_ref = torch_cross_scan(x, in_cf, out_cf, one_by_one, scans)
        if y.shape != y_ref.shape or not torch.equal(y, y_ref):  # a scan is a copy: exactly equal
            _fail(f"scan {tag}", y, y_ref)
        g = torch.randn_like(y)
        (gx,), (gx_ref,) = torch.autograd.grad(y, x, g), torch.autograd.grad(y_ref, x, g)
        if not torch.allclose(gx, gx_ref, rtol=1e-5, atol=1e-5):
            _fail(f"scan backward {tag}", gx, gx_ref)
        ys = torch.randn((B, 4, C, H, W) if out_cf else (B, H, W, 4, C), requires_grad=True)
        m = triton_cross_merge(ys, in_cf, out_cf, one_by_one, scans, BLOCKS)
        m_ref = torch_cross_merge(ys, in_cf, out_cf, one_by_one, scans)
        if m.shape != m_ref.shape or not torch.allclose(m, m_ref, rtol=1e-5, atol=1e-5):
            _fail(f"merge {tag}", m, m_ref)
        g = torch.randn_like(m)
        (gy,), (gy_ref,) = torch.autograd.grad(m, ys, g), torch.autograd.grad(m_ref, ys, g)
        if not torch.allclose(gy, gy_ref, rtol=1e-5, atol=1e-5):
            _fail(f"merge backward {tag}", gy, gy_ref)
        n += 1
    # the public functions route to Triton when asked (default tiles), float64 merge sums in float64
    x = torch.randn(2, 5, 6, 7, dtype=torch.float64)
    if not torch.equal(cross_scan(x, backend="triton"), torch_cross_scan(x)):
        _fail("public cross_scan", cross_scan(x, backend="triton"), torch_cross_scan(x))
    ys = torch.randn(2, 6, 7, 4, 5, dtype=torch.float64)
    got, ref = cross_merge(ys, False, False, backend="triton"), torch_cross_merge(ys, False, False)
    if not torch.allclose(got, ref, rtol=1e-12, atol=1e-12):
        _fail("public cross_merge float64", got, ref)
    print(f"csm ok: {n} variants on {B}x{C}x{H}x{W} with tiles {BLOCKS}")


def _ssm_inputs(dtype: torch.dtype) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    bsz, kd, groups, n, length = 2, 6, 2, 3, 11
    ts = [torch.randn(bsz, kd, length, generator=g), torch.randn(bsz, kd, length, generator=g),
          -torch.rand(kd, n, generator=g) * 2 - 0.1, torch.randn(bsz, groups, n, length, generator=g),
          torch.randn(bsz, groups, n, length, generator=g), torch.randn(kd, generator=g),
          torch.randn(kd, generator=g)]
    return [t.to(dtype).requires_grad_(True) for t in ts]


def check_ssm() -> None:
    # 3 channels per group in blocks of 2 (masked), 3 states in a block of 4, L = 11 in chunks of 4
    for dtype, tol in ((torch.float64, 1e-10), (torch.float32, 1e-4)):
        inputs = _ssm_inputs(dtype)
        y, last = triton_selective_scan(*inputs, delta_softplus=True, return_last_state=True,
                                        chunk_size=4, block_d=2)
        y_ref, last_ref = torch_selective_scan(*inputs, delta_softplus=True, return_last_state=True)
        if not torch.allclose(y, y_ref, rtol=tol, atol=tol):
            _fail(f"ssm forward {dtype}", y, y_ref)
        if not torch.allclose(last, last_ref, rtol=tol, atol=tol):
            _fail(f"ssm last state {dtype}", last, last_ref)
        weight = torch.randn_like(y)
        grads = torch.autograd.grad((y * weight).sum(), inputs)
        grads_ref = torch.autograd.grad((y_ref * weight).sum(), inputs)
        for name, got, ref in zip(["u", "delta", "A", "B", "C", "D", "delta_bias"], grads, grads_ref):
            if not torch.allclose(got, ref, rtol=tol, atol=tol):
                _fail(f"ssm d{name} {dtype}", got, ref)
    # half inputs give float32 (VMamba's oflex), through the public dispatcher with default blocks
    u, dt, A, Bm, Cm, D, bias = (t.detach() for t in _ssm_inputs(torch.float16))
    y = selective_scan(u, dt, A, Bm, Cm, D, bias, True, backend="triton", chunk_size=5)
    y_ref = torch_selective_scan(u, dt, A, Bm, Cm, D, bias, True)
    if y.dtype != torch.float32 or not torch.allclose(y, y_ref, rtol=1e-4, atol=1e-4):
        _fail("ssm half input", y, y_ref)
    print("ssm ok: forward, last state and 7 gradients in float64 and float32; half -> float32")


def _compile(fn, signature: dict[str, str], constexprs: dict) -> dict:
    import triton

    try:
        from triton.backends.compiler import GPUTarget
        from triton.compiler import ASTSource
    except ImportError as err:  # another triton release: the test skips
        print(f"SKIP: this triton has no ahead-of-time compile API ({err})")
        sys.exit(0)
    kernel = triton.compile(ASTSource(fn=fn, signature=signature, constexprs=constexprs),
                            target=GPUTarget("cuda", 80, 32))
    if not kernel.asm.get("cubin"):
        sys.exit(f"no cubin for {fn.__name__} {constexprs}")
    return kernel.asm


def compile_csm() -> None:
    import triton.language as tl

    from medcam_vmamba.kernels.csm_triton import _csm_kernel

    flags = ("MERGE", "X_CF", "Y_CF", "ONE_BY_ONE", "SCANS", "ACC", "BLOCK_C", "BLOCK_H", "BLOCK_W")
    variants = [(False, True, True, False, 0, tl.float32), (True, False, True, True, 3, tl.float32),
                (True, True, False, False, 2, tl.float64), (False, False, False, True, 1, tl.float16)]
    for merge, x_cf, y_cf, one_by_one, scans, acc in variants:
        ptr = {tl.float64: "*fp64", tl.float16: "*fp16"}.get(acc, "*fp32")
        sig = {"x_ptr": ptr, "y_ptr": ptr, "C": "i32", "H": "i32", "W": "i32", **{f: "constexpr" for f in flags}}
        values = (merge, x_cf, y_cf, one_by_one, scans, tl.float32 if acc == tl.float16 else acc, 2, 16, 32)
        _compile(_csm_kernel, sig, dict(zip(flags, values)))
    print(f"compile-csm ok: {len(variants)} variants to sm_80 cubins")


def compile_ssm() -> None:
    import triton.language as tl

    from medcam_vmamba.kernels.ssm_triton import _ssm_bwd_kernel, _ssm_fwd_kernel

    consts = {"ACC": tl.float32, "BLOCK_D": 64, "BLOCK_N": 16}
    fwd = dict.fromkeys(("u_ptr", "dt_ptr", "a_ptr", "b_ptr", "c_ptr", "y_ptr", "ckpt_ptr"), "*fp32")
    fwd.update(dict.fromkeys(("KD", "L", "G", "N", "DG", "n_chunks", "chunk"), "i32"))
    _compile(_ssm_fwd_kernel, {**fwd, **dict.fromkeys(consts, "constexpr")}, consts)
    bwd = dict.fromkeys(("u_ptr", "dt_ptr", "a_ptr", "b_ptr", "c_ptr", "gy_ptr", "ckpt_ptr", "scratch_ptr",
                         "gu_ptr", "gdt_ptr", "ga_ptr", "gb_ptr", "gc_ptr"), "*fp32")
    bwd["u_ptr"] = "*fp16"  # half inputs are read and widened in the kernel
    bwd.update(dict.fromkeys(("KD", "L", "G", "N", "DG", "n_chunks", "chunk", "n_dblocks"), "i32"))
    _compile(_ssm_bwd_kernel, {**bwd, **dict.fromkeys(consts, "constexpr")}, consts)
    print("compile-ssm ok: forward and backward to sm_80 cubins")


if __name__ == "__main__":
    {"csm": check_csm, "ssm": check_ssm, "compile-csm": compile_csm, "compile-ssm": compile_ssm}[MODE]()
