"""Test-only: the official VMamba state-dict layout, written out from the official model structure.

``official_shapes`` lists every tensor of the official classification model
(``MzeroMiko/VMamba`` ``classification/models/vmamba.py``: ``VSSM`` with its
``patch_embed`` / ``layers`` / ``classifier`` containers) by name and shape for a
configuration, independently of medcam's modules. The other helpers rewrite a
state dict into the older layouts that official checkpoints also come in.
"""
from __future__ import annotations

import math

import torch
from torch import Tensor


def official_shapes(cfg, num_classes: int = 1000, in_chans: int = 3) -> dict[str, tuple[int, ...]]:
    """Official key -> shape for configuration ``cfg`` (a ``VMambaConfig``)."""
    dims = [cfg.dims * 2**i for i in range(4)]
    out: dict[str, tuple[int, ...]] = {}
    c0 = dims[0]
    if cfg.patch_embed == "v1":  # Conv(4x4, s4), Permute, LayerNorm
        out.update({"patch_embed.0.weight": (c0, in_chans, 4, 4), "patch_embed.0.bias": (c0,),
                    "patch_embed.2.weight": (c0,), "patch_embed.2.bias": (c0,)})
    else:  # Conv, Permute, LN, Permute, GELU, Conv, Permute, LN
        h = c0 // 2
        out.update({"patch_embed.0.weight": (h, in_chans, 3, 3), "patch_embed.0.bias": (h,),
                    "patch_embed.2.weight": (h,), "patch_embed.2.bias": (h,),
                    "patch_embed.5.weight": (c0, h, 3, 3), "patch_embed.5.bias": (c0,),
                    "patch_embed.7.weight": (c0,), "patch_embed.7.bias": (c0,)})
    for i, depth in enumerate(cfg.depths):
        c = dims[i]
        d = int(cfg.ssm_ratio * c)
        r = math.ceil(c / 16)
        n = cfg.d_state
        for j in range(depth):
            p = f"layers.{i}.blocks.{j}."
            out[p + "norm.weight"] = out[p + "norm.bias"] = (c,)
            out[p + "op.in_proj.weight"] = (d * (2 if cfg.gate else 1), c)
            out[p + "op.conv2d.weight"] = (d, 1, 3, 3)
            if cfg.conv_bias:
                out[p + "op.conv2d.bias"] = (d,)
            out[p + "op.x_proj_weight"] = (4, r + 2 * n, d)
            out[p + "op.dt_projs_weight"] = (4, d, r)
            out[p + "op.dt_projs_bias"] = (4, d)
            out[p + "op.A_logs"] = (4 * d, n)
            out[p + "op.Ds"] = (4 * d,)
            out[p + "op.out_norm.weight"] = out[p + "op.out_norm.bias"] = (d,)
            out[p + "op.out_proj.weight"] = (c, d)
            if cfg.mlp_ratio > 0:
                hid = int(c * cfg.mlp_ratio)
                out[p + "norm2.weight"] = out[p + "norm2.bias"] = (c,)
                out.update({p + "mlp.fc1.weight": (hid, c), p + "mlp.fc1.bias": (hid,),
                            p + "mlp.fc2.weight": (c, hid), p + "mlp.fc2.bias": (c,)})
        if i < 3:
            p = f"layers.{i}.downsample."
            if cfg.downsample == "v1":  # PatchMerging2D
                out.update({p + "reduction.weight": (2 * c, 4 * c), p + "norm.weight": (4 * c,),
                            p + "norm.bias": (4 * c,)})
            else:  # Permute, Conv, Permute, LN
                k = 2 if cfg.downsample == "v2" else 3
                out.update({p + "1.weight": (2 * c, c, k, k), p + "1.bias": (2 * c,),
                            p + "3.weight": (2 * c,), p + "3.bias": (2 * c,)})
    out.update({"classifier.norm.weight": (dims[3],), "classifier.norm.bias": (dims[3],),
                "classifier.head.weight": (num_classes, dims[3]), "classifier.head.bias": (num_classes,)})
    return out


def random_official_state(cfg, num_classes: int = 1000, seed: int = 0) -> dict[str, Tensor]:
    """An official-layout state dict of random tensors (small values; LayerNorm weights near 1)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in official_shapes(cfg, num_classes).items():
        t = torch.randn(shape, generator=g) * 0.05
        if key.endswith(("norm.weight", "norm2.weight", ".2.weight", ".3.weight", ".7.weight")) and len(shape) == 1:
            t = t + 1.0
        if key.endswith("A_logs"):
            t = t.abs().log1p()
        out[key] = t
    return out


def export_official(model) -> dict[str, Tensor]:
    """A medcam classifier (VMamba backbone, ``out_norm=False``, ``vmamba_classifier`` head) in the
    official layout: the official key list, each tensor taken from the module it names."""
    cfg = model.backbone.config
    bsd = model.backbone.state_dict()
    out = {}
    for key in official_shapes(cfg, model.num_classes, model.in_chans):
        if key.startswith("classifier.norm."):
            out[key] = model.head.norm.state_dict()[key.rsplit(".", 1)[1]].clone()
        elif key.startswith("classifier.head."):
            out[key] = model.head.fc.state_dict()[key.rsplit(".", 1)[1]].clone()
        else:
            out[key] = bsd[key].clone()
    return out


def to_legacy(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The early (v0/v1 code) names official ``_load_from_state_dict`` renames, plus
    ``Linear2d`` weights stored as 1x1 convolutions ``(out, in, 1, 1)``."""
    out = {}
    for key, value in sd.items():
        new = key.replace("patch_embed.0.", "patch_embed.proj.").replace("patch_embed.2.", "patch_embed.norm.")
        parts = new.split(".")
        if new.startswith("layers.") and parts[2] == "blocks":
            if parts[4] == "norm":
                parts[4] = "ln_1"
            elif parts[4] == "op":
                parts[4] = "self_attention"
            new = ".".join(parts)
        if new.startswith("classifier."):
            new = new[len("classifier."):]
        if new.endswith(("in_proj.weight", "out_proj.weight", "fc1.weight", "fc2.weight")):
            value = value[:, :, None, None]
        out[new] = value
    return out


def to_single_file(sd: dict[str, Tensor], ssm_modules: bool = True) -> dict[str, Tensor]:
    """The layout of the single-file ``vmamba.py`` (2025): grouped ``x_proj`` / ``dt_projs``
    Linear modules (its v2 models; ``ssm_modules=False`` for the vanilla v0 models, which keep
    the stacked parameters), patch merging as ``downsample.1`` (LayerNorm) and ``downsample.2`` (Linear)."""
    out = {}
    for key, value in sd.items():
        if ssm_modules and key.endswith("op.x_proj_weight"):
            out[key.replace("x_proj_weight", "x_proj.weight")] = value.reshape(-1, value.shape[-1])
        elif ssm_modules and key.endswith("op.dt_projs_weight"):
            out[key.replace("dt_projs_weight", "dt_projs.weight")] = value.reshape(-1, value.shape[-1])
        elif ".downsample.norm." in key:
            out[key.replace(".downsample.norm.", ".downsample.1.")] = value
        elif ".downsample.reduction." in key:
            out[key.replace(".downsample.reduction.", ".downsample.2.")] = value
        else:
            out[key] = value
    return out
