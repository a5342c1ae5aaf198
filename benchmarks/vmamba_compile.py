"""Does ``torch.compile`` (inductor, fused C++ CPU kernels) speed up medcam's VMamba kernels on the CPU?

Issue 19 asks to try it for the selective scan, the cross-scan/merge and the
elementwise passes of the chunked scan. One run compiles each candidate, checks
it against the eager code (forward and backward; float32 within 1e-5 relative
to the largest value, float64 within 1e-10), and times eager and compiled
forward + backward in the same run, interleaved:

* ``cross_scan+merge``: ``torch_cross_scan`` then ``torch_cross_merge`` of a
  VMamba-T stage-1 map (B, 192, 56, 56): pure index work (flip / transpose /
  stack / sum), which inductor can fuse into one gather per direction;
* ``discretize``: the elementwise passes before the chunked scan's recurrence,
  ``dt = softplus(delta + bias)``, ``a = exp(dt A)``, ``b = dt u B`` on the
  stage-1 shape (KD = 768, L = 3136, N = 1): eager PyTorch makes one pass over
  memory per operation, the compiled kernel one pass in all;
* ``selective_scan``: the whole chunked scan (``backend="torch"``) under
  ``torch.compile``; its autograd Function, in-place updates of views and
  thread-count context make dynamo split it into several graphs.

The last line says whether any compiled candidate is faster than eager while
equal to it. Example (status in docs/benchmarks.md)::

    OMP_NUM_THREADS=1 python benchmarks/vmamba_compile.py --threads 1 --repeats 5
"""
from __future__ import annotations

import argparse
import statistics
import time
import traceback
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from medcam_vmamba.kernels import selective_scan
from medcam_vmamba.kernels.csm_torch import torch_cross_merge, torch_cross_scan

TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}
KD, GROUPS, SIDE = 768, 4, 56


def cross_scan_merge(x: Tensor) -> Tensor:
    """(B, C, H, W) -> the merge of its 4 routes, (B, C, L)."""
    b, c, h, w = x.shape
    return torch_cross_merge(torch_cross_scan(x).view(b, 4, c, h, w))


def discretize(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """The chunked scan's elementwise prelude: decays a = exp(dt A) and inputs b = dt u B, (B, KD, L, N)."""
    dt = F.softplus(delta + bias[:, None])
    per = u.shape[1] // B.shape[1]
    b_full = B.repeat_interleave(per, dim=1).transpose(2, 3)  # (B, KD, L, N)
    return torch.exp(dt[..., None] * A[:, None, :]), (dt * u)[..., None] * b_full


def scan(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, D: Tensor, bias: Tensor) -> Tensor:
    return selective_scan(u, delta, A, B, C, D, bias, delta_softplus=True, backend="torch")


def _scan_inputs(dtype: torch.dtype, seed: int = 0) -> list[Tensor]:
    g = torch.Generator().manual_seed(seed)
    length = SIDE * SIDE
    u = torch.randn(1, KD, length, generator=g, dtype=dtype)
    delta = torch.randn(1, KD, length, generator=g, dtype=dtype) * 0.1
    A = -torch.ones(KD, 1, dtype=dtype)
    B = torch.randn(1, GROUPS, 1, length, generator=g, dtype=dtype)
    C = torch.randn(1, GROUPS, 1, length, generator=g, dtype=dtype)
    D = torch.ones(KD, dtype=dtype)
    bias = torch.rand(KD, generator=g, dtype=dtype) - 4
    return [t.requires_grad_(True) for t in (u, delta, A, B, C, D, bias)]


def candidates(dtype: torch.dtype) -> dict[str, tuple[Callable[..., object], list[Tensor]]]:
    g = torch.Generator().manual_seed(1)
    scan_in = _scan_inputs(dtype)
    u, delta, A, B, _, _, bias = scan_in
    x = torch.randn(1, 192, SIDE, SIDE, generator=g, dtype=dtype).requires_grad_(True)
    return {"cross_scan+merge": (cross_scan_merge, [x]),
            "discretize": (discretize, [u, delta, A, B, bias]),
            "selective_scan": (scan, scan_in)}


def _loss(out: object) -> Tensor:
    outs = out if isinstance(out, tuple) else (out,)
    return sum((o * torch.linspace(0.5, 1.5, o.numel(), dtype=o.dtype).view(o.shape)).sum() for o in outs)


def fwd_bwd(fn: Callable[..., object], inputs: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
    """Outputs and input gradients of one forward + backward."""
    for t in inputs:
        t.grad = None
    out = fn(*inputs)
    _loss(out).backward()
    outs = list(out) if isinstance(out, tuple) else [out]
    return [o.detach() for o in outs], [t.grad.clone() for t in inputs]


def max_error(got: list[Tensor], ref: list[Tensor]) -> float:
    """Largest |got - ref| relative to the largest |ref| of each tensor."""
    return max(float((g - r).abs().max() / r.abs().max().clamp_min(1e-30)) for g, r in zip(got, ref))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=None, help="candidate names (default: all)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    rows = []
    for name, (fn, inputs) in candidates(torch.float32).items():
        if args.only and name not in args.only:
            continue
        row: dict[str, object] = {"name": name}
        compiled = torch.compile(fn)
        try:
            t0 = time.perf_counter()
            got = fwd_bwd(compiled, inputs)
            row["compile_s"] = time.perf_counter() - t0
        except Exception as err:  # noqa: BLE001 - a failed compile is a result to report
            row["error"] = f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"
            traceback.print_exc()
            rows.append(row)
            continue
        ref = fwd_bwd(fn, inputs)
        row["err32"] = max(max_error(got[0], ref[0]), max_error(got[1], ref[1]))
        fn64, inputs64 = candidates(torch.float64)[name]
        compiled64 = torch.compile(fn64)
        got64, ref64 = fwd_bwd(compiled64, inputs64), fwd_bwd(fn64, inputs64)
        row["err64"] = max(max_error(got64[0], ref64[0]), max_error(got64[1], ref64[1]))
        times: dict[str, list[float]] = {"eager": [], "compiled": []}
        for _ in range(args.repeats):
            for key, f in (("eager", fn), ("compiled", compiled)):
                t0 = time.perf_counter()
                fwd_bwd(f, inputs)
                times[key].append(time.perf_counter() - t0)
        row["eager_s"] = statistics.median(times["eager"])
        row["compiled_s"] = statistics.median(times["compiled"])
        rows.append(row)
        print(f"  measured {name}", flush=True)

    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU, forward + backward, median of {args.repeats}")
    print("| candidate | compile s | eager s | compiled s | eager / compiled | max rel. error fp32 | fp64 | equal |")
    print("|---|---|---|---|---|---|---|---|")
    faster = []
    for r in rows:
        if "error" in r:
            print(f"| {r['name']} | failed: {r['error']} | | | | | | |")
            continue
        equal = r["err32"] <= TOLERANCE[torch.float32] and r["err64"] <= TOLERANCE[torch.float64]
        ratio = r["eager_s"] / r["compiled_s"]
        if equal and ratio > 1:
            faster.append(f"{r['name']} {ratio:.2f}x")
        print(f"| {r['name']} | {r['compile_s']:.1f} | {r['eager_s']:.4f} | {r['compiled_s']:.4f} | {ratio:.2f} | "
              f"{r['err32']:.1e} | {r['err64']:.1e} | {'yes' if equal else 'NO'} |")
    print("compiled and equal, faster than eager: " + (", ".join(faster) if faster else "none"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
