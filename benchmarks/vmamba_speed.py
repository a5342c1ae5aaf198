"""CPU speed of medcam's VMamba kernels and models, against baselines measured in the same run.

Part 1, the selective scan on the VMamba-T stage-1 shape (batch 1, K x D = 4 x 192
= 768 channels in G = 4 direction groups, L = 56 * 56 = 3136, d_state 1 and 16),
forward + backward of:

* ``medcam``: ``medcam_vmamba.kernels.selective_scan`` (chunked scan, O(L) backward);
* ``step-index``: the recurrence as VMamba's pure-PyTorch fallback writes it, a
  Python loop that indexes the full (B, KD, L, N) tensors at every step
  (``dA[:, :, i]``); autograd then builds a full-size gradient per step, so its
  backward is O(L^2). By default its backward is timed on L/16 and L/8 steps
  only and extrapolated to L along the line through both (each step costs the
  same, as every step touches full-size tensors); its forward is timed over all
  L steps. ``--full-step-loop`` runs the backward over all L steps instead;
* ``unbind``: the same loop over ``unbind``-ed slices (O(L) backward, L Python steps).

Part 2, whole classifiers (1000 classes, random weights, 224 px, batch 8): images/s
of inference (eval, no_grad) and of training steps (forward + backward) for
medcam's ``vmamba_tiny`` (the ``vmamba_tiny_s1l8_in1k`` preset: VMamba-T[s1l8])
and timm's ``resnet50`` and ``convnext_tiny``.

    OMP_NUM_THREADS=2 python benchmarks/vmamba_speed.py --threads 2

prints both tables and the ratios (the numbers in docs/vmamba_kernels.md), and a
last line with issue 19's goals (:data:`GOALS`): met or not.
Nothing is downloaded (``pretrained=False``).
"""
from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from medcam_vmamba.kernels import selective_scan

BATCH, GROUPS, D_INNER, SIDE = 1, 4, 192, 56
#: issue 19: scan (d_state 1) step-index / medcam and unbind / medcam, and vmamba_tiny / resnet50 images/s
GOALS = {"step-index": 150.0, "unbind": 5.0, "inference": 0.7, "training": 0.7}


def _inputs(d_state: int, seed: int = 0) -> list[Tensor]:
    """VMamba-like inputs: dt bias = softplus^-1(dt), dt in [1e-3, 1e-1]; A = -(1..N) (S4D-real)."""
    g = torch.Generator().manual_seed(seed)
    kd, length = GROUPS * D_INNER, SIDE * SIDE
    u = torch.randn(BATCH, kd, length, generator=g)
    delta = torch.randn(BATCH, kd, length, generator=g) * 0.1
    A = -torch.arange(1, d_state + 1, dtype=torch.float32).repeat(kd, 1)
    B = torch.randn(BATCH, GROUPS, d_state, length, generator=g)
    C = torch.randn(BATCH, GROUPS, d_state, length, generator=g)
    D = torch.ones(kd)
    dt = torch.exp(torch.rand(kd, generator=g) * (math.log(0.1) - math.log(1e-3)) + math.log(1e-3))
    bias = dt + torch.log(-torch.expm1(-dt))
    return [t.requires_grad_(True) for t in (u, delta, A, B, C, D, bias)]


def _discretize(u: Tensor, delta: Tensor, A: Tensor, B: Tensor, C: Tensor, bias: Tensor):
    """dA, dB*u as full (B, KD, L, N) tensors and C per channel, as the reference fallbacks build them."""
    dt = F.softplus(delta + bias[:, None])
    per = u.shape[1] // B.shape[1]
    b_full = B.repeat_interleave(per, dim=1)  # (B, KD, N, L)
    c_full = C.repeat_interleave(per, dim=1)
    d_a = torch.exp(dt[..., None] * A[:, None, :])  # (B, KD, L, N)
    d_bu = (dt * u)[..., None] * b_full.transpose(2, 3)
    return d_a, d_bu, c_full


def step_index_scan(u, delta, A, B, C, D, bias, steps: int | None = None) -> Tensor:
    """Baseline (a): per-step indexing of the full tensors, y for the first ``steps`` positions."""
    d_a, d_bu, c_full = _discretize(u, delta, A, B, C, bias)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for i in range(u.shape[2] if steps is None else steps):
        h = d_a[:, :, i] * h + d_bu[:, :, i]
        ys.append((h * c_full[:, :, :, i]).sum(-1))
    y = torch.stack(ys, dim=-1)
    return y + u[:, :, : y.shape[-1]] * D[:, None]


def unbind_scan(u, delta, A, B, C, D, bias) -> Tensor:
    """Baseline (b): the same loop over unbound per-step slices."""
    d_a, d_bu, c_full = _discretize(u, delta, A, B, C, bias)
    h = u.new_zeros(u.shape[0], u.shape[1], A.shape[1])
    ys = []
    for a_i, bu_i, c_i in zip(d_a.unbind(2), d_bu.unbind(2), c_full.unbind(3)):
        h = a_i * h + bu_i
        ys.append((h * c_i).sum(-1))
    return torch.stack(ys, dim=-1) + u * D[:, None]


def medcam_scan(u, delta, A, B, C, D, bias) -> Tensor:
    return selective_scan(u, delta, A, B, C, D, bias, delta_softplus=True, backend="torch")


def _time_fwd_bwd(fn: Callable[[], Tensor], repeats: int) -> tuple[float, float, Tensor]:
    """Median forward and backward seconds over ``repeats`` runs (after one warm-up run)."""
    fwd, bwd = [], []
    y = None
    for i in range(repeats + 1):
        t0 = time.perf_counter()
        y = fn()
        t1 = time.perf_counter()
        y.sum().backward()
        t2 = time.perf_counter()
        if i:
            fwd.append(t1 - t0)
            bwd.append(t2 - t1)
    return statistics.median(fwd), statistics.median(bwd), y.detach()


def bench_scan(d_state: int, repeats: int, full_step_loop: bool) -> dict[str, tuple[float, float, str]]:
    inputs = _inputs(d_state)
    length = SIDE * SIDE
    out: dict[str, tuple[float, float, str]] = {}
    f, b, y_ref = _time_fwd_bwd(lambda: medcam_scan(*inputs), repeats)
    out["medcam (chunked)"] = (f, b, "")
    f, b, y = _time_fwd_bwd(lambda: unbind_scan(*inputs), max(1, repeats // 2))
    out["(b) unbind loop"] = (f, b, f"max |diff| {(y - y_ref).abs().max().item():.1e}")
    if full_step_loop:
        t0 = time.perf_counter()
        y = step_index_scan(*inputs)
        t1 = time.perf_counter()
        y.sum().backward()
        diff = (y.detach() - y_ref).abs().max().item()
        out["(a) step-index loop"] = (t1 - t0, time.perf_counter() - t1, f"all {length} steps (one run), "
                                      f"max |diff| {diff:.1e}")
    else:
        t0 = time.perf_counter()
        y = step_index_scan(*inputs)  # the forward is cheap: timed over all L steps
        fwd = time.perf_counter() - t0
        diff = (y.detach() - y_ref).abs().max().item()
        del y
        counts = (length // 16, length // 8)
        bwd = []
        for steps in counts:  # the backward is O(steps * L): timed on fewer steps, then extrapolated
            y = step_index_scan(*inputs, steps=steps)
            t0 = time.perf_counter()
            y.sum().backward()
            bwd.append(time.perf_counter() - t0)
        s1, s2 = counts
        slope = (bwd[1] - bwd[0]) / (s2 - s1)
        out["(a) step-index loop"] = (fwd, bwd[0] + slope * (length - s1),
                                      f"backward extrapolated from {s1} and {s2} steps "
                                      f"({bwd[0]:.1f} s, {bwd[1]:.1f} s), max |diff| {diff:.1e}")
    return out


def _models(size: int):
    import timm

    import medcam

    yield "vmamba_tiny (medcam)", lambda: medcam.build_model("vmamba_tiny_s1l8_in1k")
    yield "resnet50 (timm)", lambda: timm.create_model("resnet50", pretrained=False, num_classes=1000)
    yield "convnext_tiny (timm)", lambda: timm.create_model("convnext_tiny", pretrained=False, num_classes=1000)


def _logits(model: torch.nn.Module, x: Tensor) -> Tensor:
    out = model(x)
    return out.logits if hasattr(out, "logits") else out


def bench_models(batch: int, size: int, repeats: int) -> list[tuple[str, float, float, int]]:
    rows = []
    x = torch.rand(batch, 3, size, size)
    for name, make in _models(size):
        torch.manual_seed(0)
        model = make()
        params = sum(p.numel() for p in model.parameters())
        model.eval()
        infer = []
        with torch.no_grad():
            for i in range(repeats + 1):
                t0 = time.perf_counter()
                _logits(model, x)
                if i:
                    infer.append(time.perf_counter() - t0)
        model.train()
        train = []
        for i in range(repeats + 1):
            t0 = time.perf_counter()
            _logits(model, x).float().logsumexp(1).mean().backward()
            model.zero_grad(set_to_none=True)
            if i:
                train.append(time.perf_counter() - t0)
        rows.append((name, batch / statistics.median(infer), batch / statistics.median(train), params))
        print(f"  measured {name}", file=sys.stderr, flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per measurement (median; default 3)")
    p.add_argument("--full-step-loop", action="store_true", help="run baseline (a) for all L steps")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--skip-models", action="store_true", help="only the scan benchmark")
    args = p.parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # rows appear as they are measured
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, CPU")
    print(f"\nSelective scan, forward + backward, B={BATCH}, KD={GROUPS}x{D_INNER}, G={GROUPS}, "
          f"L={SIDE}x{SIDE}, softplus + bias + D; median of {args.repeats} (baselines: fewer)")
    print(f"{'d_state':>7}  {'method':<22}{'forward s':>11}{'backward s':>12}{'total s':>10}{'x medcam':>10}  note")
    reached: dict[str, float] = {}
    for d_state in (1, 16):
        res = bench_scan(d_state, args.repeats, args.full_step_loop)
        base = sum(res["medcam (chunked)"][:2])
        for name, (f, b, note) in res.items():
            print(f"{d_state:>7}  {name:<22}{f:>11.3f}{b:>12.3f}{f + b:>10.3f}{(f + b) / base:>10.1f}  {note}")
        a, u = sum(res["(a) step-index loop"][:2]), sum(res["(b) unbind loop"][:2])
        print(f"{'':>7}  ratios (forward+backward): step-index / medcam = {a / base:.1f}, "
              f"unbind / medcam = {u / base:.1f}")
        if d_state == 1:
            reached = {"step-index": a / base, "unbind": u / base}
    verdicts = [_verdict(k, v) for k, v in reached.items()]
    if args.skip_models:
        print("goals: " + "; ".join(verdicts))
        return
    try:
        import medcam

        medcam.build_backbone("vmamba_tiny")
    except Exception as err:  # the model plugin is missing or broken: report, keep the scan numbers
        print(f"\nwhole-model benchmark skipped: medcam.build_backbone('vmamba_tiny') failed: {err}")
        return
    print(f"\nWhole classifiers, 1000 classes, random weights, batch {args.batch}, {args.size} px, "
          f"median of {args.repeats}")
    print(f"{'model':<24}{'params M':>9}{'infer img/s':>13}{'train img/s':>13}")
    rows = bench_models(args.batch, args.size, args.repeats)
    for name, inf, tr, params in rows:
        print(f"{name:<24}{params / 1e6:>9.2f}{inf:>13.2f}{tr:>13.2f}")
    vm = rows[0]
    for name, inf, tr, _ in rows[1:]:
        print(f"vmamba_tiny / {name}: inference {vm[1] / inf:.2f}x, training {vm[2] / tr:.2f}x")
        if name == "resnet50":
            verdicts += [_verdict("inference", vm[1] / inf), _verdict("training", vm[2] / tr)]
    print("goals: " + "; ".join(verdicts))


def _verdict(name: str, ratio: float) -> str:
    """One goal of :data:`GOALS` against the measured ratio."""
    goal = GOALS[name]
    return f"{name} {ratio:.2f}x (goal >= {goal:g}x: {'met' if ratio >= goal else 'NOT met'})"


if __name__ == "__main__":
    main()
