"""Load official VMamba checkpoints into medcam models, safely and with clear errors.

Accepted as published (``MzeroMiko/VMamba`` releases), with no code from the
checkpoint ever executed. The core reads and unwraps the file and checks the fit
(:func:`medcam.state_dict.load_weights`: a ``{"model": state_dict, ...}`` training
checkpoint whose pickled yacs config is read as an inert dict, ``{"state_dict": ...}``,
a bare state dict, a ``module.`` prefix); this module's converter, :class:`OfficialKeys`, takes:

* the ``backbone.`` part of the detection/segmentation checkpoints;
* the classification layout (``patch_embed.*``, ``layers.*``, ``classifier.norm``,
  ``classifier.head``), the dense ``Backbone_VSSM`` layout (``outnorm{i}``) and the
  legacy names that VMamba's own ``_load_from_state_dict`` renames:
  ``patch_embed.proj``/``patch_embed.norm``, ``ln_1``, ``self_attention``, top-level
  ``norm``/``head``; the single-file ``vmamba.py`` (2025) layout (``x_proj.weight``,
  ``dt_projs.weight``, ``downsample.1/.2``); 1x1-convolution weights
  ``(out, in, 1, 1)`` of ``Linear2d`` for Linear ``(out, in)``.

Where the weights go in a medcam model (see :mod:`medcam_vmamba.vssm` for where
levels are taken): backbone keys -> ``backbone.*``; ``classifier.head`` -> the
head's ``fc``; ``classifier.norm`` -> the head's ``norm`` (the ``vmamba_classifier``
head) or, when the head has none, the backbone's last ``outnorm`` (a ``linear``
head on an ``out_norm=True`` backbone: the same function, and its CAM is exact).
Either way a 1000-class model gives the official logits.
"""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from medcam.errors import CheckpointError
from medcam.state_dict import WeightsReport, load_weights

from .configs import ALIASES, CONFIGS, VMambaConfig, get_config

__all__ = ["OfficialKeys", "to_official_layout", "load_official_checkpoint", "download_official", "guess_config"]

_LINEAR_SUFFIXES = ("op.in_proj.weight", "op.out_proj.weight", "mlp.fc1.weight", "mlp.fc2.weight",
                    "downsample.reduction.weight", "classifier.head.weight")


# ---------------------------------------------------------------------- layout
def _rename_prefix(sd: dict[str, Tensor], old: str, new: str) -> bool:
    hits = [k for k in sd if k == old or k.startswith(old + ".")]
    for k in hits:
        sd[new + k[len(old):]] = sd.pop(k)
    return bool(hits)


def to_official_layout(state_dict: Mapping[str, Tensor]) -> tuple[dict[str, Tensor], list[str]]:
    """Rewrite any accepted VMamba key layout into the current classification layout.

    Returns the new state dict (tensors shared, reshaped where needed) and notes
    on what was renamed. See the module docstring for the layouts.
    """
    sd = dict(state_dict)
    notes: list[str] = []
    if not any(k.startswith("patch_embed.") for k in sd) and any(k.startswith("backbone.patch_embed.") for k in sd):
        other = [k for k in sd if not k.startswith("backbone.")]
        sd = {k[len("backbone."):]: v for k, v in sd.items() if k.startswith("backbone.")}
        notes.append(f"took the 'backbone.' part of a dense-task checkpoint (dropped {len(other)} other tensors)")

    legacy = False
    legacy |= _rename_prefix(sd, "patch_embed.proj", "patch_embed.0")
    legacy |= _rename_prefix(sd, "patch_embed.norm", "patch_embed.2")
    for key in list(sd):
        new = re.sub(r"^(layers\.\d+\.blocks\.\d+)\.ln_1\.", r"\1.norm.", key)
        new = re.sub(r"^(layers\.\d+\.blocks\.\d+)\.self_attention\.", r"\1.op.", new)
        if new != key:
            sd[new] = sd.pop(key)
            legacy = True
    legacy |= _rename_prefix(sd, "norm", "classifier.norm")
    legacy |= _rename_prefix(sd, "head", "classifier.head")
    if legacy:
        notes.append("renamed legacy keys (patch_embed.proj/norm, ln_1, self_attention, norm, head)")

    single_file = False
    for key in list(sd):
        m = re.match(r"^(layers\.\d+\.blocks\.\d+\.op)\.(x_proj|dt_projs)\.(weight|bias)$", key)
        if m:
            prefix, name, kind = m.groups()
            sd[f"{prefix}.{name}_{kind}"] = sd.pop(key)  # reshaped to (K, ., .) below
            single_file = True
        m = re.match(r"^(layers\.\d+\.downsample)\.2\.weight$", key)
        if m and sd[key].dim() == 2:  # single-file v1 patch merging: .1 LayerNorm, .2 Linear
            base = m.group(1)
            sd[f"{base}.reduction.weight"] = sd.pop(key)
            for kind in ("weight", "bias"):
                if f"{base}.1.{kind}" in sd:
                    sd[f"{base}.norm.{kind}"] = sd.pop(f"{base}.1.{kind}")
            single_file = True
    if single_file:
        notes.append("converted the single-file vmamba.py layout (x_proj/dt_projs modules, downsample.1/.2)")

    for key, value in list(sd.items()):
        if key.endswith(_LINEAR_SUFFIXES) and value.dim() == 4 and value.shape[2:] == (1, 1):
            sd[key] = value.reshape(value.shape[0], value.shape[1])
    for key in [k for k in sd if k.endswith(("op.x_proj_weight", "op.dt_projs_weight", "op.dt_projs_bias"))]:
        value = sd[key]
        if key.endswith("op.dt_projs_bias") and value.dim() == 1:
            sd[key] = value.reshape(4, -1)
        elif key.endswith("op.x_proj_weight") and value.dim() != 3:
            sd[key] = value.reshape(4, -1, value.shape[-1])
        elif key.endswith("op.dt_projs_weight") and value.dim() != 3:
            sd[key] = value.reshape(4, -1, value.shape[-1])
    return sd, notes


# ---------------------------------------------------------------------- diagnosis
def guess_config(state_dict: Mapping[str, Tensor]) -> str:
    """A one-line description of the architecture in an official-layout state dict,
    with the registered configuration(s) it matches, for error messages."""
    depths = [0, 0, 0, 0]
    for key in state_dict:
        m = re.match(r"^layers\.(\d)\.blocks\.(\d+)\.", key)
        if m and int(m.group(1)) < 4:
            depths[int(m.group(1))] = max(depths[int(m.group(1))], int(m.group(2)) + 1)
    dims = None
    conv = state_dict.get("layers.0.blocks.0.op.conv2d.weight")
    a_logs = state_dict.get("layers.0.blocks.0.op.A_logs")
    norm = state_dict.get("layers.0.blocks.0.norm.weight")
    if norm is not None:
        dims = int(norm.shape[0])
    d_state = int(a_logs.shape[1]) if a_logs is not None else None
    d_inner = int(conv.shape[0]) if conv is not None else None
    matches = [name for name, cfg in CONFIGS.items()
               if list(cfg.depths) == depths and cfg.dims == dims and cfg.d_state == d_state
               and (d_inner is None or cfg.d_inner(0) == d_inner)]
    desc = f"depths {depths}, dims {dims}, d_state {d_state}, d_inner {d_inner}"
    return desc + (f" (matches {', '.join(matches)})" if matches else " (no registered configuration matches)")


# ---------------------------------------------------------------------- loading
def download_official(config: str | VMambaConfig, progress: bool = True) -> Path:
    """Path of the official checkpoint of a configuration (or its registered name), downloaded
    once into ``torch.hub.get_dir()/checkpoints``. Raises :class:`CheckpointError` if there is none."""
    cfg = get_config(config) if isinstance(config, str) else config
    name = config if isinstance(config, str) else (cfg.official or "this configuration")
    if cfg.url is None:
        raise CheckpointError(f"'{name}' has no official checkpoint; pass checkpoint_path= instead")
    target = Path(torch.hub.get_dir()) / "checkpoints" / cfg.url.rsplit("/", 1)[1]
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            torch.hub.download_url_to_file(cfg.url, str(target), progress=progress)
        except Exception as err:
            raise CheckpointError(f"could not download the official '{name}' checkpoint from {cfg.url}: {err}; "
                                  f"download it yourself and pass its path") from err
    return target


def _resolve(source: Any) -> tuple[Any, str | None]:
    """``(path or state dict, how to name it)``: a configuration name gives its downloaded official file."""
    if isinstance(source, Mapping):
        return source, None
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if Path(text).exists():
            return text, None
        if text in CONFIGS or text in ALIASES:
            path = download_official(text)
            return path, f"the official '{text}' checkpoint ('{path}')"
        raise FileNotFoundError(f"VMamba checkpoint '{text}' does not exist (or give a configuration name "
                                f"to download its official weights: {', '.join(CONFIGS)})")
    raise CheckpointError(f"expected a checkpoint path, a configuration name or a state dict, "
                          f"got {type(source).__name__}")


def _adapt_in_chans(weight: Tensor, in_chans: int) -> Tensor:
    """Stem weights ``(C', 3, k, k)`` for ``in_chans`` inputs: summed for 1 channel (a grey
    image repeated 3 times gives the same response), else repeated and scaled by 3/in_chans."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


class OfficialKeys:
    """Key converter (:data:`medcam.state_dict.Converter`): any accepted VMamba layout into ``model``'s keys.

    Official keys with a place in ``model`` are renamed (see the module docstring; the stem is
    adapted to the backbone's ``in_chans``), the others keep their official names, so the core
    reports them as unexpected unless :meth:`allowed_unexpected` lets them go.
    """

    def __init__(self, model: nn.Module, backbone: Any, prefix: str, head: nn.Module | None, include_head: bool):
        self.model, self.backbone, self.prefix, self.head = model, backbone, prefix, head
        self.include_head = include_head
        self.head_prefix = "head." if prefix else ""
        self.head_has_norm = head is not None and isinstance(getattr(head, "norm", None), nn.LayerNorm)
        self.loads_fc = head is not None and include_head and isinstance(getattr(head, "fc", None), nn.Linear)
        self.official: dict[str, Tensor] = {}
        self.notes: list[str] = []

    def _mapping(self, sd: Mapping[str, Tensor]) -> dict[str, str]:
        """Official key -> model key."""
        mapping: dict[str, str] = {}
        norm_keys = ("classifier.norm.weight", "classifier.norm.bias")
        if self.backbone is not None:
            mapping.update({k: self.prefix + k for k in self.backbone.state_dict()})
            if self.backbone.out_indices[-1] == 3 and self.backbone.out_norm and not self.head_has_norm \
                    and not any(k.startswith("outnorm3.") for k in sd):
                mapping.update({k: f"{self.prefix}outnorm3.{k.rsplit('.', 1)[1]}" for k in norm_keys})
        if self.head_has_norm:
            mapping.update({k: f"{self.head_prefix}norm.{k.rsplit('.', 1)[1]}" for k in norm_keys})
        if self.loads_fc:
            mapping.update({f"classifier.head.{kind}": f"{self.head_prefix}fc.{kind}" for kind in ("weight", "bias")})
        return mapping

    def __call__(self, state: dict[str, Tensor], reference: Mapping[str, Any]) -> dict[str, Tensor]:
        self.official, self.notes = to_official_layout(state)
        mapping = self._mapping(self.official)
        out: dict[str, Tensor] = {}
        for key, value in self.official.items():
            target = mapping.get(key)
            if target is None or target not in reference:
                out[key] = value  # no place in the model: unexpected, or allowed to go
                continue
            expected = reference[target]
            if key == "patch_embed.0.weight" and value.shape[1] != self.backbone.in_chans \
                    and value.shape[0] == expected[0] and value.shape[2:] == expected[2:]:
                value = _adapt_in_chans(value, self.backbone.in_chans)
                self.notes.append(f"converted the stem from {self.official[key].shape[1]} to "
                                  f"{self.backbone.in_chans} input channels")
            out[target] = value
        return out

    def allowed_missing(self) -> list[str]:
        """Model keys the checkpoint need not fill: level norms a classification file cannot have, and
        what no official key maps to (a head left out by ``include_head=False``)."""
        covered = set(self._mapping({}).values()) | {f"{self.prefix}outnorm3.{k}" for k in ("weight", "bias")}
        return [f"{self.prefix}outnorm[0-9].*"] + [k for k in self.model.state_dict() if k not in covered]

    def allowed_unexpected(self) -> list[str]:
        """Checkpoint keys that may go: everything but the classifier into a head alone, dense-task
        level norms, and the official classifier unless the head is to be loaded."""
        if self.backbone is None:
            return ["*"]
        return ["outnorm[0-9].*"] + ([] if self.head is not None and self.include_head else ["classifier.*"])

    def hint(self, report: WeightsReport) -> str:
        """The error's advice: what the checkpoint is, and what to change."""
        parts = [f"The checkpoint is {guess_config(self.official)}"]
        if report.mismatched:
            parts.append("build the model with the matching configuration")
            if any(m.startswith(f"{self.head_prefix}fc.") for m in report.mismatched):
                parts.append("for a different number of classes pass include_head=False")
            return "; ".join(parts)
        if any(k.startswith("classifier.") for k in report.unexpected):
            parts.append("the official classifier needs the vmamba_classifier head, or a linear head on a "
                         "backbone with out_norm=True (or pass include_head=False)")
        return "; ".join(parts + ["pass strict=False to load what fits"])


def _targets(model: nn.Module) -> tuple[Any, str, nn.Module | None]:
    """(backbone or None, its key prefix, head or None) of ``model``."""
    from .heads import VMambaClassifierHead
    from .vssm import VMamba

    if isinstance(model, VMamba):
        return model, "", None
    if isinstance(model, VMambaClassifierHead):
        return None, "", model
    backbone, head = getattr(model, "backbone", None), getattr(model, "head", None)
    if isinstance(backbone, VMamba):
        return backbone, "backbone.", head
    raise CheckpointError(f"load_official_checkpoint needs a VMamba backbone, a vmamba_classifier head or a "
                          f"medcam model with a VMamba backbone; got {type(model).__name__}"
                          + (f" with backbone {type(backbone).__name__}" if backbone is not None else ""))


def load_official_checkpoint(model: nn.Module, source: Any, *, include_head: bool = True, strict: bool = True,
                             key: str | None = None) -> WeightsReport:
    """Load an official VMamba checkpoint into ``model``.

    Args:
        model: a medcam model whose backbone is a VMamba (``build_model(...)``), a
            bare VMamba backbone, or a ``vmamba_classifier`` head.
        source: a checkpoint path, a state dict, or a configuration name
            (``"vmamba_tiny_s1l8"``: its official file is downloaded once into the
            torch hub cache). Into a bare backbone, also a saved medcam model
            (:func:`medcam.save`) with a VMamba backbone: its backbone weights.
        include_head: also load ``classifier.head`` into the head's ``fc`` (needs
            the checkpoint's 1000 classes); ``False`` for fine-tuning on new classes
            (the classifier LayerNorm is still loaded where the model has one).
        strict: every backbone parameter (except level norms ``outnorm{i}`` the
            checkpoint cannot have) and every checkpoint tensor must find its place;
            otherwise :class:`~medcam.errors.CheckpointError` lists what does not fit.
        key: the entry of the checkpoint file holding the weights; ``None`` takes the first of
            ``"state_dict"``, ``"model"`` (what the official training saves), ``"model_ema"``,
            else the file itself (:func:`medcam.state_dict.unwrap_state_dict`); ``"model_ema"``
            picks the EMA weights the official training also saves.

    Returns:
        a :class:`medcam.state_dict.WeightsReport`.

    Example::

        import medcam, medcam_vmamba
        model = medcam.build_model("vmamba_tiny_s1l8_in1k")
        medcam_vmamba.load_official_checkpoint(model, "vssm1_tiny_0230s_ckpt_epoch_264.pth")
    """
    backbone, prefix, head = _targets(model)
    source, origin = _resolve(source)
    keys = OfficialKeys(model, backbone, prefix, head, include_head)
    report = load_weights(model, source, what="this model", convert=keys, entry=key, origin=origin, strict=strict,
                          allow_missing=keys.allowed_missing(), allow_unexpected=keys.allowed_unexpected(),
                          medcam_checkpoints=backbone is model, hint=keys.hint)
    report.notes[:0] = keys.notes
    return report
