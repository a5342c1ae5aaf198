"""SS2D: VMamba's 2D selective-scan token mixer.

Liu et al., "VMamba: Visual State Space Model", NeurIPS 2024, Sec. 3 (the
"SS2D" module). For tokens ``x`` ``(B, H, W, C)``:

1. ``u = SiLU(DWConv3x3(W_in x))`` with ``d_inner = int(ssm_ratio * C)`` channels
   (and, in the gated variants, a second half ``z`` of the projection);
2. cross-scan ``u`` into K = 4 sequences of length L = H W (row-major,
   column-major and both reversed), ``(B, 4, d_inner, L)``;
3. per direction k, input-dependent SSM parameters from one projection
   ``[dt_k, B_k, C_k] = W_x,k u_k`` (ranks R, N, N) and ``delta_k = W_dt,k dt_k``;
4. the selective scan of Mamba (Gu and Dao, 2023) per channel,
   ``h_l = exp(delta_l A) h_{l-1} + delta_l B_l u_l``, ``y_l = C_l . h_l + D u_l``,
   with ``delta = softplus(delta + b_dt)`` and ``A = -exp(A_log)`` (S4D-real init);
5. cross-merge the 4 outputs back onto the grid (their sum), LayerNorm,
   ``y * SiLU(z)`` when gated, and the output projection.

The scan itself lives in :mod:`medcam_vmamba.kernels` (CPU: chunked PyTorch;
CUDA: mamba-ssm or Triton). Parameter names and shapes are the official ones
(``x_proj_weight`` ``(4, R + 2N, d_inner)``, ``dt_projs_weight`` ``(4, d_inner, R)``,
``dt_projs_bias`` ``(4, d_inner)``, ``A_logs`` ``(4 d_inner, N)``, ``Ds`` ``(4 d_inner,)``).
"""
from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from medcam.errors import SpecError
from medcam.registry import did_you_mean

from .kernels import cross_merge, cross_scan, selective_scan

__all__ = ["SS2D", "KERNEL_BACKENDS"]

K_DIRECTIONS = 4
KERNEL_BACKENDS = ("auto", "torch", "triton", "mamba")


class SS2D(nn.Module):
    """The SS2D mixer on channel-last tokens: ``(B, H, W, d_model)`` -> ``(B, H, W, d_model)``.

    Args:
        d_model: channels C of the tokens.
        d_state: SSM state size N.
        ssm_ratio: ``d_inner = int(ssm_ratio * d_model)``.
        dt_rank: rank R of the step-size projection (``None``: ``ceil(d_model / 16)``).
        d_conv: depth-wise convolution size (1: no convolution).
        conv_bias: bias of the depth-wise convolution.
        gate: multiply by ``SiLU(z)`` before the output projection (official
            ``v0``/``v2``); ``False`` is the official ``*_noz``.
        dropout: dropout after the output projection.
        dt_min, dt_max, dt_init_floor: range of the initial step sizes (Mamba's init).
        backend: kernel backend of :mod:`medcam_vmamba.kernels`: ``"auto"`` (by device),
            ``"torch"``, ``"triton"`` or ``"mamba"`` (selective scan by mamba-ssm; the
            cross-scan then runs as with ``"auto"``). A forced backend that cannot run
            raises instead of silently falling back.
    """

    def __init__(self, d_model: int, d_state: int = 16, ssm_ratio: float = 2.0, dt_rank: int | None = None,
                 d_conv: int = 3, conv_bias: bool = True, gate: bool = True, dropout: float = 0.0,
                 dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4, backend: str = "auto"):
        super().__init__()
        if backend not in KERNEL_BACKENDS:
            raise SpecError(f"kernel_backend: {backend!r} is not one of {', '.join(KERNEL_BACKENDS)}"
                            f"{did_you_mean(str(backend), KERNEL_BACKENDS)}")
        self.backend = backend
        self.d_model, self.d_state = d_model, d_state
        self.d_inner = int(ssm_ratio * d_model)
        self.dt_rank = dt_rank if dt_rank is not None else math.ceil(d_model / 16)
        self.gate = gate
        k, d, r, n = K_DIRECTIONS, self.d_inner, self.dt_rank, d_state

        self.in_proj = nn.Linear(d_model, d * (2 if gate else 1), bias=False)
        self.act = nn.SiLU()
        self.conv2d = (nn.Conv2d(d, d, kernel_size=d_conv, padding=(d_conv - 1) // 2, groups=d, bias=conv_bias)
                       if d_conv > 1 else None)
        self.x_proj_weight = nn.Parameter(torch.empty(k, r + 2 * n, d))
        self.dt_projs_weight = nn.Parameter(torch.empty(k, d, r))
        self.dt_projs_bias = nn.Parameter(torch.empty(k, d))
        self.A_logs = nn.Parameter(torch.empty(k * d, n))
        self.Ds = nn.Parameter(torch.empty(k * d))
        self.A_logs._no_weight_decay = True  # type: ignore[attr-defined]
        self.Ds._no_weight_decay = True  # type: ignore[attr-defined]
        self.out_norm = nn.LayerNorm(d)
        self.out_proj = nn.Linear(d, d_model, bias=False)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.reset_ssm_parameters(dt_min, dt_max, dt_init_floor)

    @torch.no_grad()
    def reset_ssm_parameters(self, dt_min: float = 1e-3, dt_max: float = 0.1, dt_init_floor: float = 1e-4) -> None:
        """Mamba's initialization (Gu and Dao, 2023, Sec. 3.6 and App. E).

        ``W_x`` ~ U(+-1/sqrt(d_inner)) (a Linear's default); ``W_dt`` ~ U(+-R^-1/2);
        ``b_dt = softplus^-1(dt)`` with ``log dt ~ U[log dt_min, log dt_max]``
        (``dt >= dt_init_floor``), so initial steps lie in [dt_min, dt_max];
        ``A_log[:, n] = log(n + 1)`` (S4D-real: ``A = -(n + 1)``); ``D = 1``.
        """
        bound = 1.0 / math.sqrt(self.d_inner)
        self.x_proj_weight.uniform_(-bound, bound)
        self.dt_projs_weight.uniform_(-self.dt_rank**-0.5, self.dt_rank**-0.5)
        log_dt = torch.rand(self.dt_projs_bias.shape) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)
        dt = log_dt.exp().clamp(min=dt_init_floor)
        self.dt_projs_bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse of softplus
        a = torch.arange(1, self.d_state + 1, dtype=torch.float32)
        self.A_logs.copy_(a.log().expand_as(self.A_logs))
        self.Ds.fill_(1.0)

    def forward(self, x: Tensor) -> Tensor:
        """Tokens ``(B, H, W, d_model)`` -> ``(B, H, W, d_model)``."""
        x = self.in_proj(x)
        z = None
        if self.gate:
            x, z = x.chunk(2, dim=-1)
            z = self.act(z)
        u = x.permute(0, 3, 1, 2)
        if self.conv2d is not None:
            u = self.conv2d(u)
        y = self.scan(self.act(u))
        if z is not None:
            y = y * z
        return self.dropout(self.out_proj(y))

    def scan(self, u: Tensor) -> Tensor:
        """Cross-scan, selective scan, cross-merge, out-norm: ``(B, d_inner, H, W)`` -> ``(B, H, W, d_inner)``.

        The scan runs in at least float32 whatever the input dtype (VMamba's
        ``force_fp32``; half-precision scans overflow), and the result is cast back.
        """
        bsz, d, h, w = u.shape
        k, n, r, length = K_DIRECTIONS, self.d_state, self.dt_rank, h * w
        csm = "auto" if self.backend == "mamba" else self.backend
        xs = cross_scan(u.contiguous(), in_channel_first=True, out_channel_first=True, backend=csm)  # (B, K, D, L)
        x_dbl = torch.einsum("bkdl,kcd->bkcl", xs, self.x_proj_weight.to(xs.dtype))
        dts, bs, cs = torch.split(x_dbl, [r, n, n], dim=2)
        dts = torch.einsum("bkrl,kdr->bkdl", dts, self.dt_projs_weight.to(xs.dtype))
        f = torch.promote_types(xs.dtype, torch.float32)  # at least float32
        ys = selective_scan(
            xs.reshape(bsz, k * d, length).to(f),
            dts.reshape(bsz, k * d, length).to(f),
            -torch.exp(self.A_logs.to(f)),
            bs.to(f).contiguous(),
            cs.to(f).contiguous(),
            self.Ds.to(f),
            delta_bias=self.dt_projs_bias.reshape(-1).to(f),
            delta_softplus=True,
            backend=self.backend,
        )
        y = cross_merge(ys.view(bsz, k, d, h, w), in_channel_first=False, out_channel_first=True, backend=csm)
        y = self.out_norm(y.view(bsz, h, w, d).to(self.out_norm.weight.dtype))
        return y.to(u.dtype)

    def extra_repr(self) -> str:
        return (f"d_model={self.d_model}, d_inner={self.d_inner}, d_state={self.d_state}, "
                f"dt_rank={self.dt_rank}, gate={self.gate}, backend={self.backend!r}")
