"""Load official VMamba checkpoints into medcam models, safely and with clear errors.

Accepted as published (``MzeroMiko/VMamba`` releases), with no code from the
checkpoint ever executed:

* a file holding ``{"model": state_dict, ...}`` (the official training
  checkpoints, which also pickle a yacs config: foreign objects are read as
  inert dicts, see :func:`read_checkpoint`), ``{"state_dict": ...}`` or a bare
  state dict; a ``module.`` prefix (DataParallel) and the ``backbone.`` prefix of
  the detection/segmentation checkpoints are removed;
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
import pickle
import re
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from medcam.checkpoint import backbone_weights, is_medcam_checkpoint
from medcam.errors import CheckpointError

from .configs import ALIASES, CONFIGS, VMambaConfig, get_config

__all__ = ["LoadReport", "read_checkpoint", "to_official_layout", "load_official_checkpoint", "download_official",
           "guess_config"]

_LINEAR_SUFFIXES = ("op.in_proj.weight", "op.out_proj.weight", "mlp.fc1.weight", "mlp.fc2.weight",
                    "downsample.reduction.weight", "classifier.head.weight")


@dataclass
class LoadReport:
    """What :func:`load_official_checkpoint` did.

    Attributes:
        loaded: model keys that received a checkpoint tensor.
        initialized: model keys the checkpoint does not hold, left as initialized
            (only level norms ``outnorm{i}`` a classification checkpoint cannot have,
            or what ``strict=False`` let through).
        ignored: checkpoint keys (official names) with no place in this model
            (e.g. ``classifier.head.*`` when loading a bare backbone).
        notes: adaptations made (renamed legacy keys, input-channel conversion, ...).
    """

    loaded: list[str] = field(default_factory=list)
    initialized: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.initialized:
            parts.append(f"kept the initial value of {len(self.initialized)} ({_short(self.initialized)})")
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)} checkpoint tensors ({_short(self.ignored)})")
        return "; ".join(parts + self.notes)


def _short(keys: list[str], n: int = 4) -> str:
    return ", ".join(keys[:n]) + (f", ... (+{len(keys) - n})" if len(keys) > n else "")


# ---------------------------------------------------------------------- reading
def _inert(cls: type, *args: Any, **kwargs: Any) -> OrderedDict:
    return OrderedDict()


def read_checkpoint(path: str | os.PathLike[str]) -> Any:
    """``torch.load(path, weights_only=True)``, tolerating foreign pickled objects.

    Official VMamba checkpoints also pickle their training config (a yacs
    ``CfgNode``) and sometimes argparse namespaces. Such classes are replaced by
    an inert stand-in that becomes an empty or plain ``OrderedDict``: their code
    is never imported or run, and tensors load as usual.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"VMamba checkpoint '{path}' does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"'{path}' is not a readable PyTorch checkpoint ({err}); a legacy (non-zip) file "
                                  f"holding objects other than tensors must be re-saved with "
                                  f"torch.save(ckpt['model'], ...)") from err
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        stand_ins = [(type(f"Inert[{name}]", (), {"__new__": _inert}), name) for name in names]
        try:
            with torch.serialization.safe_globals(stand_ins):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err2:
            raise CheckpointError(f"cannot read '{path}' without running code from it ({err2}); "
                                  f"foreign objects in it: {', '.join(names) or 'none'}") from err2
    except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
        raise CheckpointError(f"'{path}' is not a readable PyTorch checkpoint: {err}") from err


def _unwrap(obj: Any, where: str, key: str | None = None, medcam_backbone: bool = False) -> dict[str, Tensor]:
    """The state dict inside a checkpoint object (under ``key`` when given).

    A medcam checkpoint (:func:`medcam.save`) is accepted only with ``medcam_backbone``
    (loading a bare backbone): its ``backbone.*`` weights, already in this layout.
    """
    if is_medcam_checkpoint(obj):
        if not medcam_backbone:
            raise CheckpointError(f"{where} is a medcam checkpoint, not an official VMamba one: use medcam.load()")
        return backbone_weights(obj, where)
    if key is not None:
        if not isinstance(obj, Mapping) or key not in obj:
            found = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
            raise CheckpointError(f"{where} has no '{key}' entry (found {found})")
        obj = obj[key]
    elif isinstance(obj, Mapping):
        for key in ("model", "state_dict", "model_ema"):
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                obj = inner
                break
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, Tensor) for v in obj.values()):
        keys = list(obj)[:8] if isinstance(obj, Mapping) else type(obj).__name__
        raise CheckpointError(f"{where}: expected a state dict (or a mapping with one under 'model'/'state_dict'), "
                              f"found {keys}")
    return {str(k): v for k, v in obj.items()}


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
    if sd and all(k.startswith("module.") for k in sd):
        sd = {k[len("module."):]: v for k, v in sd.items()}
        notes.append("removed the 'module.' prefix")
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


def _state_dict_of(source: Any, key: str | None = None,
                   medcam_backbone: bool = False) -> tuple[dict[str, Tensor], str]:
    if isinstance(source, Mapping):
        return _unwrap(source, "the given state dict", key, medcam_backbone), "the given state dict"
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if not Path(text).exists() and (text in CONFIGS or text in ALIASES):
            path = download_official(text)
            return _unwrap(read_checkpoint(path), f"'{path}'", key), f"official '{text}' checkpoint"
        if not Path(text).exists():
            raise FileNotFoundError(f"VMamba checkpoint '{text}' does not exist (or give a configuration name "
                                    f"to download its official weights: {', '.join(CONFIGS)})")
        return _unwrap(read_checkpoint(text), f"'{text}'", key, medcam_backbone), f"'{text}'"
    raise CheckpointError(f"expected a checkpoint path, a configuration name or a state dict, "
                          f"got {type(source).__name__}")


def _adapt_in_chans(weight: Tensor, in_chans: int) -> Tensor:
    """Stem weights ``(C', 3, k, k)`` for ``in_chans`` inputs: summed for 1 channel (a grey
    image repeated 3 times gives the same response), else repeated and scaled by 3/in_chans."""
    if in_chans == 1:
        return weight.sum(dim=1, keepdim=True)
    reps = -(-in_chans // weight.shape[1])
    return weight.repeat(1, reps, 1, 1)[:, :in_chans] * (weight.shape[1] / in_chans)


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
                             key: str | None = None) -> LoadReport:
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
        key: the entry of the checkpoint file holding the weights; ``None`` takes
            ``"model"`` (what VMamba's own loaders use), else ``"state_dict"``, else
            ``"model_ema"``, else the file itself; ``"model_ema"`` picks the EMA weights
            the official training also saves.

    Returns:
        a :class:`LoadReport`.

    Example::

        import medcam, medcam_vmamba
        model = medcam.build_model("vmamba_tiny_s1l8_in1k")
        medcam_vmamba.load_official_checkpoint(model, "vssm1_tiny_0230s_ckpt_epoch_264.pth")
    """
    backbone, prefix, head = _targets(model)
    # a saved medcam model's backbone goes into a bare backbone (checkpoint_path=, benchmark init_from)
    raw, where = _state_dict_of(source, key, medcam_backbone=backbone is model)
    sd, notes = to_official_layout(raw)
    report = LoadReport(notes=list(notes))
    own = model.state_dict()
    mapping: dict[str, str] = {}  # official key -> model key

    norm_keys = ("classifier.norm.weight", "classifier.norm.bias")
    head_has_norm = head is not None and isinstance(getattr(head, "norm", None), nn.LayerNorm)
    if backbone is not None:
        for key in backbone.state_dict():
            mapping[key] = prefix + key
        last = backbone.out_indices[-1]
        if last == 3 and backbone.out_norm and not head_has_norm and not any(k.startswith("outnorm3.") for k in sd):
            mapping.update({k: f"{prefix}outnorm3.{k.rsplit('.', 1)[1]}" for k in norm_keys})
    head_prefix = "head." if prefix else ""
    if head is not None:
        if head_has_norm:
            mapping.update({k: f"{head_prefix}norm.{k.rsplit('.', 1)[1]}" for k in norm_keys})
        if include_head and isinstance(getattr(head, "fc", None), nn.Linear):
            mapping.update({f"classifier.head.{kind}": f"{head_prefix}fc.{kind}" for kind in ("weight", "bias")})

    mismatched: list[str] = []
    new_state: dict[str, Tensor] = {}
    for key, value in sd.items():
        target = mapping.get(key)
        if target is None or target not in own:
            report.ignored.append(key)
            continue
        expected = own[target]
        if key == "patch_embed.0.weight" and backbone is not None and value.shape[1] != backbone.in_chans \
                and value.shape[0] == expected.shape[0] and value.shape[2:] == expected.shape[2:]:
            value = _adapt_in_chans(value, backbone.in_chans)
            report.notes.append(f"converted the stem from {sd[key].shape[1]} to {backbone.in_chans} input channels")
        if tuple(value.shape) != tuple(expected.shape):
            mismatched.append(f"{key}: checkpoint {tuple(value.shape)}, model {tuple(expected.shape)}")
            continue
        new_state[target] = value.to(expected.dtype)
    report.loaded = sorted(new_state)
    targets = set(mapping.values()) & set(own)
    missing = sorted(t for t in targets if t not in new_state)
    report.initialized = missing
    fatal_missing = [t for t in missing if not re.match(rf"^{re.escape(prefix)}outnorm\d\.", t)]

    def fits_nowhere(key: str) -> bool:
        """A checkpoint tensor this model cannot hold although it should."""
        if backbone is None:  # a head alone takes only the classifier
            return False
        if re.match(r"^outnorm\d\.", key):  # dense-task level norms the model does not use
            return False
        if key.startswith("classifier."):  # the official classifier, wanted when the head is loaded
            return head is not None and include_head
        return True

    unexpected = [k for k in report.ignored if fits_nowhere(k)]
    if mismatched:
        raise CheckpointError(f"{where} does not fit this model ({len(mismatched)} shape mismatches: "
                              f"{_short(mismatched, 3)}). The checkpoint is {guess_config(sd)}; "
                              f"build the model with the matching configuration"
                              + ("; for a different number of classes pass include_head=False"
                                 if any(m.startswith("classifier.head") for m in mismatched) else ""))
    if strict and (fatal_missing or unexpected):
        problems = []
        if fatal_missing:
            problems.append(f"missing {len(fatal_missing)} model tensors ({_short(fatal_missing)})")
        if unexpected:
            problems.append(f"{len(unexpected)} checkpoint tensors have no place in the model ({_short(unexpected)})")
            if any(k.startswith("classifier.") for k in unexpected):
                problems.append("the official classifier needs the vmamba_classifier head, or a linear head on a "
                                "backbone with out_norm=True (or pass include_head=False)")
        raise CheckpointError(f"{where} does not fit this model: {'; '.join(problems)}. "
                              f"The checkpoint is {guess_config(sd)}; pass strict=False to load what fits")
    model.load_state_dict(new_state, strict=False)
    return report
