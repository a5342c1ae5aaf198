"""TimmBackbone: one wrapper that turns any timm feature extractor into a medcam backbone.

The feature extraction itself is timm's: for the registered families the full
timm model is built (timm loads ``pretrained`` weights and adapts the first conv
to ``in_chans``), then cut after the last requested level by
``timm.models.FeatureListNet``; for ``timm/<name>`` timm's own
``features_only`` extractor is used. This module adds the medcam contract on
top: a :class:`medcam.features.FeatureInfo`, eager ``out_indices`` checks,
``forward_from`` and offline ``checkpoint_path`` loading.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Sequence

import timm
import torch
from timm.models import FeatureDictNet, FeatureListNet
from torch import Tensor, nn

from medcam.errors import CheckpointError, ShapeError, SpecError, UnknownNameError
from medcam.features import FeatureInfo, FeatureLevel, normalize_out_indices
from medcam.registry import did_you_mean

from .variants import Variant
from .loading import TimmKeys, load_timm_weights

__all__ = ["TimmBackbone", "build_variant", "build_timm"]


class TimmBackbone(nn.Module):
    """A timm feature extractor under the medcam backbone contract.

    Args:
        body: a timm feature extractor (``FeatureListNet``, ``FeatureGetterNet``, ...)
            with a timm ``feature_info`` for the levels it returns.
        timm_name: the timm model it was built from (for messages).
        in_chans: input channels the first conv expects.
        cam_level: default level for CAM methods (default the last).

    ``forward(x)``: ``x`` ``(B, in_chans, H, W)`` (normalized) -> list of
    ``(B, C_i, H / s_i, W / s_i)`` maps, one per level, by increasing stride (exact
    for H, W multiples of 32). Token models (PVT) return their tokens as maps.
    """

    #: forward_from(levels[k], k) reproduces levels[k + 1:] (medcam.capabilities.RescorableBackbone)
    forward_from_exact = True

    def __init__(self, body: nn.Module, *, timm_name: str, in_chans: int, cam_level: int = -1):
        super().__init__()
        self.body = body
        self.timm_name = timm_name
        self.in_chans = in_chans
        timm_info = body.feature_info
        channels, strides = timm_info.channels(), timm_info.reduction()
        modules = self._level_modules(timm_info.module_name())
        self.feature_info = FeatureInfo(
            [FeatureLevel(int(c), int(s), m) for c, s, m in zip(channels, strides, modules)], cam_level=cam_level)
        self._nhwc = str(getattr(body, "output_fmt", "NCHW")).upper().endswith("NHWC")
        # forward_from needs the extractor to be a plain sequence of NCHW modules (timm's FeatureDictNet)
        sequential = isinstance(body, FeatureDictNet) and not self._nhwc
        self._steps: list[str] = list(body.keys()) if sequential else []
        self._level_steps: list[str] = []
        if self._steps:
            by_out = {int(out): name for name, out in body.return_layers.items()}
            self._level_steps = [by_out[i] for i in sorted(by_out)]

    def _level_modules(self, timm_modules: Sequence[str]) -> list[str]:
        """Dotted names, inside this backbone, of the modules producing each level ("" if none)."""
        if isinstance(self.body, FeatureDictNet):
            by_out = {int(out): name for name, out in self.body.return_layers.items()}
            return [f"body.{by_out[i]}" for i in sorted(by_out)]
        names = []
        for module in timm_modules:
            found = ""
            for candidate in (f"body.{module}", f"body.model.{module}", "body." + module.replace(".", "_", 1)):
                try:
                    self.get_submodule(candidate)
                except AttributeError:
                    continue
                found = candidate
                break
            names.append(found)
        return names

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_chans:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"{self.timm_name}: expected images (B, {self.in_chans}, H, W), got {shape}")

    def _as_maps(self, feats: Any) -> list[Tensor]:
        out = list(feats.values()) if isinstance(feats, Mapping) else list(feats)
        if self._nhwc:
            out = [f.permute(0, 3, 1, 2) for f in out]
        return out

    def forward(self, x: Tensor) -> list[Tensor]:
        """``(B, in_chans, H, W)`` -> ``[(B, C_i, H / s_i, W / s_i), ...]`` for the levels in ``feature_info``."""
        self._check_input(x)
        return self._as_maps(self.body(x))

    @property
    def supports_forward_from(self) -> bool:
        """True when :meth:`forward_from` can run (always for the registered families)."""
        return bool(self._steps)

    def forward_from(self, x: Tensor, level: int) -> list[Tensor]:
        """Run the stages after output level ``level`` on ``x`` and return the later levels.

        Args:
            x: a map shaped like level ``level``'s output, ``(B, C_level, h, w)``
                (e.g. a masked copy of it, as WSOL methods re-score).
            level: index into ``feature_info`` (negative counts from the end).

        Returns:
            the levels after ``level``, ``[(B, C_j, h_j, w_j) for j > level]``
            (empty for the last level); ``forward_from(forward(img)[k], k)`` equals
            ``forward(img)[k + 1:]``.
        """
        n = len(self.feature_info)
        if isinstance(level, bool) or not isinstance(level, int) or not -n <= level < n:
            raise SpecError(f"{self.timm_name}.forward_from: level {level!r} is out of range for {n} levels "
                            f"(valid: 0..{n - 1} or -{n}..-1)")
        if not self._steps:
            raise NotImplementedError(
                f"forward_from is not available for timm model '{self.timm_name}': timm extracts its features with "
                f"{type(self.body).__name__}, not by running its top-level modules in order")
        level %= n
        expected = self.feature_info[level].channels
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != expected:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ShapeError(f"{self.timm_name}.forward_from: level {level} maps are (B, {expected}, h, w), "
                             f"got {shape}")
        start = self._steps.index(self._level_steps[level]) + 1
        taps = set(self._level_steps[level + 1:])
        out = []
        for name in self._steps[start:]:
            if not taps:
                break
            x = self.body[name](x)
            if name in taps:
                out.append(x)
                taps.discard(name)
        return out

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute activations in the backward pass to save memory (timm's gradient checkpointing)."""
        if not hasattr(self.body, "set_grad_checkpointing"):
            raise NotImplementedError(f"timm's {type(self.body).__name__} has no gradient checkpointing")
        self.body.set_grad_checkpointing(enable)

    def extra_repr(self) -> str:
        return f"timm_name={self.timm_name!r}, in_chans={self.in_chans}, {self.feature_info!r}"


# ---------------------------------------------------------------------------- argument checks
def _check_in_chans(in_chans: Any) -> int:
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise SpecError(f"in_chans must be a positive integer, got {in_chans!r}")
    return in_chans


def _check_rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise SpecError(f"{name} must be a number in [0, 1), got {value!r}")
    return float(value)


def _check_weights_args(pretrained: Any, checkpoint_path: Any) -> None:
    if not isinstance(pretrained, bool):
        raise SpecError(f"pretrained must be true or false, got {pretrained!r}")
    if checkpoint_path is not None and not isinstance(checkpoint_path, str):
        raise SpecError(f"checkpoint_path must be a file path (string), got {checkpoint_path!r}")
    if pretrained and checkpoint_path:
        raise SpecError("pass either pretrained=true (timm's weights) or checkpoint_path (a local file), not both")
    if checkpoint_path:
        if not Path(checkpoint_path).is_file():
            raise FileNotFoundError(f"checkpoint_path '{checkpoint_path}' does not exist")


def _pretrained_error(timm_name: str, err: BaseException) -> CheckpointError:
    cfg = timm.models.get_pretrained_cfg(timm_name)
    source = (getattr(cfg, "hf_hub_id", None) or getattr(cfg, "url", None) or "?") if cfg is not None else "?"
    return CheckpointError(
        f"could not load timm's pretrained weights for '{timm_name}' (from {source}): {type(err).__name__}: {err}. "
        f"timm reads them from the Hugging Face cache (HF_HOME, default ~/.cache/huggingface) and downloads them "
        f"when online; offline, pass pretrained=false and checkpoint_path=<a local state dict>")


def _hub_location(timm_name: str) -> tuple[str | None, str, str | None]:
    """Where timm would fetch ``timm_name``'s weights: ``(cached file or None, source, host)``.

    Looks in the Hugging Face cache (``model.safetensors`` / ``pytorch_model.bin`` of the
    model's ``hf_hub_id``) or, for weights timm reads from a URL, in torch's hub cache.
    Touches no network.
    """
    cfg = timm.models.get_pretrained_cfg(timm_name)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    url = getattr(cfg, "url", None) if cfg is not None else None
    if hub_id:
        from huggingface_hub import try_to_load_from_cache

        repo, _, revision = hub_id.partition("@")
        names = [getattr(cfg, "hf_hub_filename", None) or "pytorch_model.bin", "model.safetensors"]
        for filename in names:
            found = try_to_load_from_cache(repo, filename, revision=revision or None)
            if isinstance(found, str) and Path(found).is_file():
                return found, f"huggingface.co/{repo}", "huggingface.co"
        return None, f"huggingface.co/{repo}", "huggingface.co"
    if url:
        from urllib.parse import urlparse

        cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
        return (str(cached) if cached.is_file() else None), url, urlparse(url).hostname
    return None, "?", None


def _require_pretrained_weights(timm_name: str) -> None:
    if timm.models.is_model_pretrained(timm_name.split(".", 1)[0]):
        return
    others = [n for n in timm.list_pretrained(f"*{timm_name}*")][:3]
    hint = f"; pretrained weights exist for {', '.join('timm/' + o for o in others)}" if others else ""
    raise CheckpointError(f"timm has no pretrained weights for '{timm_name}'{hint}; or load a local state dict "
                          f"with checkpoint_path (pretrained=false)")


def _create(timm_name: str, pretrained: bool, label: str | None = None, **kwargs: Any) -> nn.Module:
    """``timm.create_model`` that loads hub weights offline first and fails fast.

    With ``pretrained``: timm's cached file is used when there is one (no network);
    otherwise the weights are downloaded only when the hub answers a short probe
    (:func:`medcam.weights.hub_reachable`), else :func:`medcam.weights.missing_weights_error`
    (naming ``label``'s declared weights package, if any) is raised at once.
    Download and cache failures become a clear :class:`CheckpointError`.
    """
    if not pretrained:
        return timm.create_model(timm_name, pretrained=False, **kwargs)
    from medcam.weights import hub_reachable, missing_weights_error

    _require_pretrained_weights(timm_name)
    cached, source, host = _hub_location(timm_name)
    overlay: dict[str, Any] = {}
    if cached is not None:
        overlay = {"pretrained_cfg_overlay": {"file": cached}}
    elif host is None or not hub_reachable(host):
        raise missing_weights_error(label or timm_name, hub=f"timm's weights ({source}) are not cached here and "
                                                           f"{host or 'their host'} cannot be reached")
    try:
        return timm.create_model(timm_name, pretrained=True, **overlay, **kwargs)
    except (OSError, RuntimeError) as err:  # HF hub / URL errors are OSErrors; timm raises RuntimeError too
        raise _pretrained_error(timm_name, err) from err


def _identity_name_map(full: nn.Module, body: nn.Module) -> dict[str, str]:
    """timm name -> extractor name of every tensor the extractor kept (matched by identity)."""
    by_id = {id(t): name for name, t in full.state_dict(keep_vars=True).items()}
    return {by_id[id(t)]: name for name, t in body.state_dict(keep_vars=True).items()}


# ---------------------------------------------------------------------------- registered families
def build_variant(variant: Variant, *, in_chans: int, pretrained: bool, checkpoint_path: str | None,
                  out_indices: Sequence[int] | int | None, rates: Mapping[str, tuple[str, float]]) -> TimmBackbone:
    """Build a registered name (``resnet50``, ``densenet121``, ...) as a :class:`TimmBackbone`.

    Args:
        variant: the name's row in :data:`medcam_timm.variants.VARIANTS`.
        rates: medcam parameter name -> (timm keyword, value), e.g.
            ``{"drop_rate": ("proj_drop_rate", 0.1)}``; each value must be in [0, 1).

    Raises:
        SpecError: bad ``in_chans``, ``out_indices`` (naming the valid range) or rates.
        FileNotFoundError: a ``checkpoint_path`` that does not exist.
        CheckpointError: weights that cannot be loaded (message lists the mismatching keys).
    """
    from medcam.weights import installed_source, resolve_pretrained

    family = variant.spec
    in_chans = _check_in_chans(in_chans)
    _check_weights_args(pretrained, checkpoint_path)
    indices = normalize_out_indices(out_indices, len(variant.modules))
    kwargs = {timm_key: _check_rate(name, value) for name, (timm_key, value) in rates.items()}
    local = pretrained and installed_source(variant.name) is not None  # a declared weights package (offline)
    from_hub = pretrained and not local
    if not from_hub:
        kwargs.update(family.shrink_unused)
    full = _create(variant.timm_model, from_hub, label=variant.name, in_chans=in_chans, num_classes=0, **kwargs)
    levels = [dict(info) for info in full.feature_info]
    for module in family.extra_taps:
        levels.append(dict(num_chs=full.num_features, reduction=levels[-1]["reduction"], module=module))
    full.feature_info = levels
    body = FeatureListNet(full, out_indices=indices, flatten_sequential=family.flatten)
    if checkpoint_path or local:
        cfg, reference = full.pretrained_cfg, {k: v.shape for k, v in full.state_dict().items()}
        keys = TimmKeys(name_map=_identity_name_map(full, body), reference=reference,
                        first_conv=_names(cfg.get("first_conv")), classifier=_names(cfg.get("classifier")),
                        in_chans=in_chans, family=family.key)
        formats = family.formats.format(name=variant.name)
        if checkpoint_path:
            load_timm_weights(body, keys, checkpoint_path, label=variant.name, formats=formats)
        else:
            resolved = resolve_pretrained(variant.name, keys.reference)
            if resolved is None:  # uninstalled between the two looks
                raise CheckpointError(f"the weights package of '{variant.name}' disappeared while loading it")
            name, state = resolved
            load_timm_weights(body, keys, state, label=variant.name, formats=formats, origin=f"weights '{name}'")
    return TimmBackbone(body, timm_name=variant.timm_model, in_chans=in_chans)


def _names(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


# ---------------------------------------------------------------------------- timm/<any name>
def _check_timm_name(model_name: Any) -> str:
    if not isinstance(model_name, str) or not model_name.strip():
        raise SpecError(f"timm/<name>: expected a timm model name, got {model_name!r}")
    name = model_name.strip()
    arch = name.split(".", 1)[0]
    if not timm.is_model(arch):
        hint = did_you_mean(arch, timm.list_models())
        raise UnknownNameError(f"unknown timm model '{arch}'{hint} (timm.list_models('{arch[:4]}*') lists "
                               f"similar names; use them as 'timm/<name>')")
    if "." in name:
        tags = timm.list_pretrained(f"{arch}.*")
        if name not in tags:
            raise UnknownNameError(f"timm model '{arch}' has no weight tag '{name.split('.', 1)[1]}'"
                                   f"{did_you_mean(name, tags)} (tags: {', '.join(tags) or 'none'})")
    return name


def build_timm(model_name: str, *, in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
               out_indices: Sequence[int] | int | None = None, drop_path_rate: float | None = None,
               model_kwargs: Mapping[str, Any] | None = None) -> TimmBackbone:
    """Build ``timm/<model_name>``: timm's ``features_only`` extractor wrapped as a :class:`TimmBackbone`.

    ``out_indices`` is checked against the model's ``feature_info`` before anything is
    built (the model is first created on the ``meta`` device, which allocates nothing).
    """
    name = _check_timm_name(model_name)
    in_chans = _check_in_chans(in_chans)
    _check_weights_args(pretrained, checkpoint_path)
    if model_kwargs is not None and not isinstance(model_kwargs, Mapping):
        raise SpecError(f"model_kwargs must be a mapping of timm keyword arguments, got {model_kwargs!r}")
    kwargs = dict(model_kwargs or {})
    for reserved in ("features_only", "out_indices", "in_chans", "pretrained", "num_classes", "checkpoint_path"):
        if reserved in kwargs:
            raise SpecError(f"model_kwargs.{reserved}: set by medcam; use the backbone parameter instead")
    if drop_path_rate is not None:
        kwargs["drop_path_rate"] = _check_rate("drop_path_rate", drop_path_rate)
    try:
        with torch.device("meta"):
            reference_model = timm.create_model(name, pretrained=False, in_chans=in_chans, num_classes=0, **kwargs)
    except TypeError as err:
        raise SpecError(f"timm/{name}: {err}") from err
    timm_levels = getattr(reference_model, "feature_info", None)
    if not timm_levels:
        raise SpecError(f"timm model '{name}' declares no feature_info, so it cannot be used as a backbone")
    indices = normalize_out_indices(out_indices, len(timm_levels))
    try:
        with torch.device("meta"):  # does timm extract features from this model? (allocates nothing)
            timm.create_model(name, pretrained=False, features_only=True, out_indices=indices, in_chans=in_chans,
                              **kwargs)
    except (RuntimeError, AssertionError, NotImplementedError, ValueError) as err:
        raise SpecError(f"timm model '{name}' does not support feature extraction (features_only): {err}") from err
    body = _create(name, pretrained, features_only=True, out_indices=indices, in_chans=in_chans, **kwargs)
    if checkpoint_path:
        reference = {k: v.shape for k, v in reference_model.state_dict().items()}
        cfg = reference_model.pretrained_cfg  # the extractor's copy has its classifier fields removed
        keys = TimmKeys(name_map=_candidate_name_map(reference, body), reference=reference,
                        first_conv=_names(cfg.get("first_conv")), classifier=_names(cfg.get("classifier")),
                        in_chans=in_chans, family=None)
        load_timm_weights(body, keys, checkpoint_path, label=f"timm/{name}",
                          formats=f"a timm '{name.split('.')[0]}' state dict")
    return TimmBackbone(body, timm_name=name, in_chans=in_chans)


def _candidate_name_map(reference: Mapping[str, torch.Size], body: nn.Module) -> dict[str, str]:
    """timm name -> extractor name, for extractors timm built (flattened ``a_b``, getter ``model.``)."""
    body_keys = set(body.state_dict().keys())
    out = {}
    for key in reference:
        flat = key.replace(".", "_", 1)
        for candidate in (key, flat, f"model.{key}"):
            if candidate in body_keys:
                out[key] = candidate
                break
    return out

