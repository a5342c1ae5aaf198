"""Weight loading: one reader and one loader for every backbone family and weights source.

The core owns reading weights; a plugin contributes only a key *converter*.

Reading (:func:`read_weights_file`, :func:`read_state_dict`): ``torch.load(map_location="cpu",
weights_only=True)`` (no arbitrary unpickling) or, for ``.safetensors``, safetensors. Foreign
classes pickled next to the tensors (the yacs config of official VMamba checkpoints) are
read as inert ``OrderedDict`` stand-ins: their code is never imported or run. What the file
holds is unwrapped (:func:`unwrap_state_dict`) to a flat ``{name: tensor}`` mapping:

* a medcam checkpoint (:func:`medcam.checkpoint.save`, ``medcam train``) is checked against
  its stored digest and gives its backbone's weights (:func:`medcam.checkpoint.backbone_weights`:
  ``backbone.*`` of a model, the encoder of a segmenter), so a new model can start from a trained one;
* ``{"state_dict": ...}`` / ``{"model": ...}`` / ``{"model_ema": ...}`` wrappers (Lightning,
  official releases) are opened, up to three levels deep, or the entry you name;
* a ``module.`` prefix on every key (``DataParallel``) is removed.

Loading (:func:`load_weights`): the file's optional sha256 is checked first, the plugin's
converter (``convert(state, reference) -> state``, ``reference`` the module's own
``{key: shape}``, as timm's ``filter_fn``) renames the keys into the module's layout, then
every module key must be present with its shape and no file key may be left over, else one
:class:`~medcam.errors.CheckpointError` line names the file, the missing and unexpected keys
and the shape mismatches. ``allow_missing`` (e.g. ``("head.*",)``: a head left as
initialized) and ``allow_unexpected`` (a classifier the module has no place for) relax that;
``strict=False`` loads what fits. A missing ``num_batches_tracked`` is never an error.

Backbones take their weights through two parameters, declared here once
(:data:`WEIGHT_PARAMETERS`): ``pretrained`` and ``checkpoint_path``.
"""
from __future__ import annotations

import os
import pickle
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

from .errors import CheckpointError

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = ["read_weights_file", "unwrap_state_dict", "read_state_dict", "load_weights", "WeightsReport", "Converter",
           "WEIGHT_PARAMETERS", "start_from_checkpoint"]

_SHOWN = 5  # offending keys listed per kind in an error
_WRAPPERS = ("state_dict", "model", "model_ema")

#: ``convert(state, reference) -> state``: a file's tensors into a module's key layout;
#: ``reference`` is the module's own ``{key: torch.Size}``. Raise ``KeyError``/``ValueError`` for
#: a file it cannot convert (the message becomes a :class:`CheckpointError` naming the file).
Converter = Callable[[dict[str, "Tensor"], Mapping[str, Any]], dict[str, "Tensor"]]

#: The part parameters through which a backbone (or head) fetches weights while it is built,
#: with their "off" values. A rebuilt checkpoint switches them off (its state dict holds the
#: weights); ``init_from`` sets ``checkpoint_path``.
WEIGHT_PARAMETERS: dict[str, Any] = {"pretrained": False, "checkpoint_path": None}


def start_from_checkpoint(part: Any, path: str | os.PathLike[str]) -> dict[str, Any]:
    """The overrides of a part spec (``part``: its name or dict) that make it start from the weights file ``path``.

    ``checkpoint_path`` is set and a ``pretrained: true`` switched off: a part takes one weight source.
    """
    overrides: dict[str, Any] = {"checkpoint_path": os.fspath(path)}
    if isinstance(part, Mapping) and part.get("pretrained"):
        overrides["pretrained"] = WEIGHT_PARAMETERS["pretrained"]
    return overrides


# ---------------------------------------------------------------------------- reading
def _inert(cls: type, *args: Any, **kwargs: Any) -> OrderedDict:
    return OrderedDict()


def read_weights_file(path: str | os.PathLike[str]) -> Any:
    """What the file at ``path`` holds, read without running code from it.

    ``.safetensors`` files through safetensors; others with ``torch.load(weights_only=True)``,
    foreign pickled classes (a training config) replaced by inert ``OrderedDict`` stand-ins.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a PyTorch or safetensors file, or not readable without running code.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file '{path}' does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if not zipfile.is_zipfile(path):
            raise CheckpointError(f"'{path}' is not a weights file torch.load(weights_only=True) can read (not a "
                                  f"readable PyTorch checkpoint: {type(err).__name__}); a legacy (non-zip) file "
                                  f"holding objects other than tensors must be re-saved with "
                                  f"torch.save(state_dict, ...)") from err
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
        stand_ins = [(type(f"Inert[{name}]", (), {"__new__": _inert}), name) for name in names]
        try:
            with torch.serialization.safe_globals(stand_ins):
                return torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err2:
            raise CheckpointError(f"cannot read '{path}' without running code from it ({err2}); "
                                  f"foreign objects in it: {', '.join(names) or 'none'}") from err2
    except Exception as err:  # zip, stream and safetensors errors all mean "not a readable weights file"
        raise CheckpointError(f"'{path}' is not a weights file torch.load(weights_only=True) can read "
                              f"(not a readable PyTorch checkpoint): {type(err).__name__}: {err}") from err


def _open_wrappers(raw: Any, where: str, entry: str | None) -> Any:
    if entry is not None:
        if not isinstance(raw, Mapping) or entry not in raw:
            found = list(raw)[:8] if isinstance(raw, Mapping) else type(raw).__name__
            raise CheckpointError(f"{where} has no '{entry}' entry (found {found})")
        return raw[entry]
    for _ in range(3):
        if not isinstance(raw, Mapping):
            break
        inner = next((raw[k] for k in _WRAPPERS if isinstance(raw.get(k), Mapping) and raw[k]), None)
        if inner is None:
            break
        raw = inner
    return raw


def unwrap_state_dict(raw: Any, where: str, *, entry: str | None = None,
                      medcam_checkpoints: bool = True) -> dict[str, Tensor]:
    """The flat ``{name: tensor}`` inside ``raw`` (what a weights file held); ``where`` names it in errors.

    Args:
        entry: the key of ``raw`` holding the weights (``"model_ema"``); ``None`` opens the
            usual wrappers (module docstring).
        medcam_checkpoints: accept a medcam checkpoint (its backbone part); ``False`` refuses it
            (for loaders of whole foreign models: a medcam model is rebuilt with ``medcam.load``).

    Raises:
        CheckpointError: ``raw`` holds no mapping of tensors, or is a medcam checkpoint that
            failed its integrity check (or was refused).
    """
    from torch import Tensor

    from .checkpoint import backbone_weights, check_payload, is_medcam_checkpoint

    if is_medcam_checkpoint(raw):
        if not medcam_checkpoints:
            raise CheckpointError(f"{where} is a medcam checkpoint, not a foreign model's weights: "
                                  f"rebuild it with medcam.load()")
        check_payload(raw, where)
        raw = backbone_weights(raw, where)
    raw = _open_wrappers(raw, where, entry)
    if not isinstance(raw, Mapping) or not raw:
        raise CheckpointError(f"{where} holds no state dict (found {type(raw).__name__}); expected a state dict "
                              f"{{name: tensor}}, optionally under 'state_dict' or 'model'")
    not_tensors = [k for k, v in raw.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(f"{where} is not a state dict: entries {not_tensors[:_SHOWN]} are not tensors "
                              f"(expected a state dict {{name: tensor}}, optionally under 'state_dict' or 'model')")
    state = {str(k): v for k, v in raw.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_state_dict(path: str | os.PathLike[str], *, sha256: str | None = None, entry: str | None = None,
                    medcam_checkpoints: bool = True) -> dict[str, Tensor]:
    """The tensors of the weights file ``path``, unwrapped (see :func:`unwrap_state_dict`).

    ``sha256``: the digest of the file's bytes you expect (``sha256sum``), checked before it is read.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: a different digest, a file not readable as weights, or no state dict in it.
    """
    if sha256 is not None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"weights file '{path}' does not exist")
        from .checkpoint import verify_sha256

        verify_sha256(path, sha256)
    return unwrap_state_dict(read_weights_file(path), f"'{path}'", entry=entry, medcam_checkpoints=medcam_checkpoints)


# ---------------------------------------------------------------------------- loading
@dataclass
class WeightsReport:
    """What :func:`load_weights` did (and, before raising, what did not fit).

    Attributes:
        loaded: module keys that received a tensor from the file.
        initialized: module keys the file did not fill, left as initialized (allowed missing), sorted.
        ignored: file keys (after conversion) with no place in the module, left out (allowed unexpected).
        missing: module keys absent from the file and not allowed to be (left as initialized
            only with ``strict=False``).
        unexpected: file keys with no place in the module and not allowed to be (ignored only
            with ``strict=False``).
        mismatched: ``"key (file shape) vs (module shape)"`` for keys whose shapes differ.
        notes: what the family's loader adapted (renamed layouts, input channels, ...).
    """

    loaded: list[str] = field(default_factory=list)
    initialized: list[str] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"loaded {len(self.loaded)} tensors"]
        if self.initialized:
            parts.append(f"kept the initial value of {len(self.initialized)} ({_listing(self.initialized)})")
        if self.ignored:
            parts.append(f"ignored {len(self.ignored)} file tensors ({_listing(self.ignored)})")
        return "; ".join(parts + self.notes)


def _listing(items: Sequence[str]) -> str:
    more = f", ... ({len(items)} in all)" if len(items) > _SHOWN else ""
    return ", ".join(items[:_SHOWN]) + more


def _matches(key: str, patterns: Sequence[str]) -> bool:
    return any(fnmatchcase(key, p) for p in patterns)


def load_weights(module: nn.Module, source: str | os.PathLike[str] | Mapping[str, Any], *, what: str,
                 convert: Converter | None = None, sha256: str | None = None, entry: str | None = None,
                 origin: str | None = None, strict: bool = True, allow_missing: Sequence[str] = (),
                 allow_unexpected: Sequence[str] = (), medcam_checkpoints: bool = True,
                 hint: str | Callable[[WeightsReport], str] | None = None) -> WeightsReport:
    """Load a weights file (or an already read state dict) into ``module``, strictly by default.

    Args:
        module: what receives the weights.
        source: a weights file (read with :func:`read_state_dict`) or a mapping (unwrapped the same way).
        what: the module in messages (``"backbone 'resnet18' (in_chans=1)"``).
        convert: the plugin's key converter (:data:`Converter`), or ``None`` for files in the
            module's own key layout.
        sha256: expected digest of the file's bytes (a path ``source`` only).
        entry: the entry holding the weights (``"model_ema"``), see :func:`unwrap_state_dict`.
        origin: how to name a mapping ``source`` in messages (a path is named by itself).
        strict: missing or unexpected keys are errors (shape mismatches always are).
        allow_missing: glob patterns of module keys that may stay as initialized (``"head.*"``).
        allow_unexpected: glob patterns of (converted) file keys that may be left out.
        medcam_checkpoints: see :func:`unwrap_state_dict`.
        hint: appended to the error (or computed from the report): the formats accepted, a likely fix.

    Returns:
        a :class:`WeightsReport`.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: unreadable file, digest mismatch, a converter that fails, or weights that do
            not fit: one line naming the file, up to 5 missing keys, unexpected keys and shape mismatches.
    """
    if isinstance(source, Mapping):
        where = origin or "the given state dict"
        state = unwrap_state_dict(source, where, entry=entry, medcam_checkpoints=medcam_checkpoints)
    else:
        where = origin or f"'{source}'"
        state = read_state_dict(source, sha256=sha256, entry=entry, medcam_checkpoints=medcam_checkpoints)
    own = module.state_dict()
    reference = {k: v.shape for k, v in own.items()}
    if convert is not None:
        try:
            state = convert(state, reference)
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"{where} cannot be converted to {what}: {err}") from err
    report = WeightsReport()
    fits: dict[str, Tensor] = {}
    for key, value in state.items():
        if key not in reference:
            (report.ignored if _matches(key, allow_unexpected) else report.unexpected).append(key)
        elif value.shape != reference[key]:
            report.mismatched.append(f"{key} {tuple(value.shape)} vs {tuple(reference[key])}")
        else:
            fits[key] = value.to(own[key].dtype)
    absent = [k for k in reference if k not in fits]
    report.missing = [k for k in absent if k not in state and not k.endswith("num_batches_tracked")
                      and not _matches(k, allow_missing)]
    report.loaded = list(fits)
    if report.mismatched or (strict and (report.missing or report.unexpected)):
        problems = "; ".join(f"{kind}: {_listing(items)}" for kind, items in
                             (("missing keys", report.missing), ("unexpected keys", report.unexpected),
                              ("shape mismatches (file vs model)", report.mismatched)) if items)
        extra = hint(report) if callable(hint) else hint
        raise CheckpointError(f"{where} does not fit {what}: {problems}" + (f". {extra}" if extra else ""))
    report.initialized = sorted(absent)
    report.ignored += report.unexpected
    module.load_state_dict(fits, strict=False)
    return report
