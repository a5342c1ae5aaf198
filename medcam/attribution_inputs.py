"""What an attribution method reads and returns, shared by every method.

Map tensors (:func:`normalize_maps`, :func:`resize_maps`), targets
(:func:`resolve_targets`: None, an int, one class per image, a ``(B, T)``
table or ``"all"``), target layers (:func:`resolve_layer`: a backbone level or
a module name, with close-match errors) and the context managers that capture
or replace a layer's output and restore the model's train/eval flags and
``requires_grad`` (:func:`preserved_state`). The protocol that uses them is in
:mod:`medcam.attribution`, which re-exports these names.
"""
from __future__ import annotations

import contextlib
import difflib
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .errors import AttributionError, ShapeError, UnknownNameError
from .model import MedcamModel, MedcamSegmenter, check_images, check_pixel_values
from .registry import suggestion

__all__ = ["TargetLike", "normalize_maps", "resize_maps", "logits_of", "resolve_targets", "TargetLayer",
           "resolve_layer", "capture_output", "replace_output", "preserved_state", "checked_once", "model_device",
           "check_attribution_input"]

TargetLike = Any  # None | int | Sequence[int] | Sequence[Sequence[int]] | Tensor | "all"


# ---------------------------------------------------------------------- tensors
def normalize_maps(maps: Tensor, eps: float = 1e-12) -> Tensor:
    """Min-max normalize each map to [0, 1] over its last two dimensions.

    Args:
        maps: ``(..., h, w)``.
        eps: a map whose range is below ``eps`` is constant and becomes zeros.

    Returns:
        same shape; differentiable (the min and max are subgradients).
    """
    flat = maps.flatten(-2)
    low = flat.amin(-1, keepdim=True)
    span = flat.amax(-1, keepdim=True) - low
    out = torch.where(span > eps, (flat - low) / span.clamp_min(eps), torch.zeros_like(flat))
    return out.view_as(maps)


def resize_maps(maps: Tensor, size: Sequence[int]) -> Tensor:
    """Bilinear resize (``align_corners=False``) of ``(B, h, w)`` or ``(B, T, h, w)`` maps to ``size = (H, W)``."""
    size = (int(size[0]), int(size[1]))
    if tuple(maps.shape[-2:]) == size:
        return maps
    if maps.dim() == 3:
        return F.interpolate(maps[:, None], size=size, mode="bilinear", align_corners=False)[:, 0]
    if maps.dim() == 4:
        return F.interpolate(maps, size=size, mode="bilinear", align_corners=False)
    raise ShapeError(f"maps must be (B, h, w) or (B, T, h, w), got {tuple(maps.shape)}")


def logits_of(output: Any) -> Tensor:
    """The ``(B, K)`` logits of a model's output (a :class:`ModelOutput`, a tensor, or anything with ``.logits``)."""
    logits = output.logits if hasattr(output, "logits") else output
    if not isinstance(logits, Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ShapeError(f"attribution needs (B, K) class logits from the model, got {shape}")
    return logits


# ---------------------------------------------------------------------- targets
def resolve_targets(target: TargetLike, batch: int, num_classes: int,
                    logits: Tensor | None = None) -> tuple[Tensor, bool]:
    """Turn a ``target`` argument into a ``(B, T)`` int64 table of class indices.

    Args:
        target: see the module docstring.
        batch: ``B``.
        num_classes: ``K``; every class must lie in ``[0, K)``.
        logits: ``(B, K)``, needed for ``target=None`` (the argmax).

    Returns:
        ``(targets, several)``: ``several`` is True when the caller asked for a
        ``(B, T)`` table or ``"all"`` (maps keep their ``T`` axis).

    Raises:
        ShapeError: a per-image target whose length is not ``B``.
        AttributionError (a ValueError): a class outside ``[0, K)`` or a non-integer target.
    """
    device = logits.device if logits is not None else None
    if target is None:
        if logits is None:
            raise AttributionError("target=None needs the logits (the predicted class)")
        return logits.detach().argmax(1, keepdim=True), False
    if isinstance(target, str):
        if target != "all":
            raise AttributionError(f"target must be None, a class index, one per image, a (B, T) table or 'all', "
                             f"got {target!r}")
        table = torch.arange(num_classes, device=device).expand(batch, num_classes)
        return table.clone(), True
    if isinstance(target, bool):
        raise AttributionError(f"target must be a class index, got {target!r}")
    if isinstance(target, int):
        table = torch.full((batch, 1), int(target), dtype=torch.long, device=device)
        several = False
    else:
        if isinstance(target, Tensor):
            if target.is_floating_point() or target.dtype == torch.bool:
                raise AttributionError(f"target must hold integer class indices, got a {target.dtype} tensor "
                                 f"(for multi-hot labels pass the class indices, e.g. a (B, T) table, or 'all')")
            raw = target.detach().long()
        else:
            try:
                raw = torch.as_tensor(target)
            except (ValueError, TypeError) as err:
                raise AttributionError(f"target must be a class index, one per image, or a (B, T) table with the same "
                                 f"number of classes for every image; got {target!r}") from err
            if raw.is_floating_point() or raw.dtype == torch.bool:
                raise AttributionError(f"target must hold integer class indices, got {target!r}")
            raw = raw.long()
        if raw.dim() == 0:
            table, several = raw.view(1, 1).expand(batch, 1).clone(), False
        elif raw.dim() in (1, 2):
            if raw.shape[0] != batch:
                what = "one target per image" if raw.dim() == 1 else "one row of targets per image"
                raise ShapeError(f"target has {raw.shape[0]} entries but the batch has {batch} images ({what} "
                                 f"is required; a shorter list is never silently truncated)")
            several = raw.dim() == 2
            table = raw.view(batch, -1)
            if table.shape[1] == 0:
                raise ShapeError("target table has no classes (shape (B, 0))")
        else:
            raise ShapeError(f"target must be an int, a (B,) sequence or a (B, T) table, got shape {tuple(raw.shape)}")
        table = table.to(device) if device is not None else table
    bad = (table < 0) | (table >= num_classes)
    if bool(bad.any()):
        value = int(table[bad][0])
        raise AttributionError(f"target class {value} is out of range: the model has {num_classes} classes "
                         f"(valid: 0..{num_classes - 1})")
    return table, several


# ---------------------------------------------------------------------- layers
@dataclass(frozen=True)
class TargetLayer:
    """Where activations are read.

    ``level`` is a backbone level index (read from the forward pass, no hook)
    or ``None``; ``module`` is the hooked module otherwise. ``name`` is for
    messages.
    """

    name: str
    level: int | None = None
    module: nn.Module | None = None


def _level_names(model: MedcamModel) -> list[str]:
    return [f"backbone.{m}" if m else "" for m in model.feature_info.modules()]


def resolve_layer(model: nn.Module, layer: int | str | nn.Module | None,
                  default_level: int | None = None) -> TargetLayer:
    """Resolve a ``layer`` argument against ``model``.

    Args:
        model: a :class:`~medcam.model.MedcamModel` or any ``nn.Module``.
        layer: ``None`` (``default_level``, else the backbone's ``cam_level``),
            a backbone level index, a dotted module name, or a module of ``model``.
        default_level: the level a method prefers when ``layer`` is None (e.g. CAM: the head's level).

    Raises:
        UnknownNameError: an unknown module name, with close matches.
        AttributionError (a ValueError): a level out of range, or ``None`` for a model without backbone levels.
    """
    is_medcam = isinstance(model, MedcamModel)
    if layer is None:
        if not is_medcam:
            raise AttributionError(f"{type(model).__name__} has no backbone feature levels; pass layer='<module name>' "
                             f"(one of model.named_modules())")
        level = model.feature_info.cam_level if default_level is None else default_level
        return _level_layer(model, level)
    if isinstance(layer, bool):
        raise AttributionError(f"layer must be a level index, a module name or a module, got {layer!r}")
    if isinstance(layer, int):
        if not is_medcam:
            raise AttributionError(f"layer={layer}: level indices need a MedcamModel; pass a module name instead")
        n = len(model.feature_info)
        if not -n <= layer < n:
            raise AttributionError(f"layer={layer} is out of range: the backbone has {n} levels (0..{n - 1})")
        return _level_layer(model, layer % n)
    modules = dict(model.named_modules())
    if isinstance(layer, nn.Module):
        names = [n for n, m in modules.items() if m is layer]
        if not names:
            raise AttributionError(f"layer {type(layer).__name__} is not a submodule of the model")
        name = names[0]
    elif isinstance(layer, str):
        name = layer.strip()
        if name not in modules or not name:
            raise UnknownNameError(f"unknown layer '{name}'{_layer_hint(name, [n for n in modules if n])} "
                                   f"(layer names are those of model.named_modules())")
    else:
        raise AttributionError(f"layer must be a level index, a module name or a module, got {type(layer).__name__}")
    if is_medcam and name in _level_names(model):
        return _level_layer(model, _level_names(model).index(name))
    return TargetLayer(name=name, module=modules[name])


def _layer_hint(name: str, candidates: list[str]) -> str:
    """Close module names: names ending in ``.name`` (a path relative to a submodule) first,
    else difflib's closest (ancestors are not suggestions: a typo is rarely a shorter path)."""
    matches = [n for n in candidates if n.endswith("." + name)][:3]
    return suggestion(matches or difflib.get_close_matches(name, candidates, n=3, cutoff=0.6))


def _level_layer(model: MedcamModel, level: int) -> TargetLayer:
    module = model.feature_info[level].module
    where = f" (backbone.{module})" if module else ""
    return TargetLayer(name=f"level {level}{where}", level=level)


@contextlib.contextmanager
def capture_output(module: nn.Module) -> Iterator[list[Any]]:
    """Collect ``module``'s forward outputs into the yielded list; the hook is removed on exit."""
    outputs: list[Any] = []

    def hook(_mod: nn.Module, _inp: Any, out: Any) -> None:
        outputs.append(out)

    handle = module.register_forward_hook(hook)
    try:
        yield outputs
    finally:
        handle.remove()


@contextlib.contextmanager
def replace_output(module: nn.Module, value: Tensor) -> Iterator[None]:
    """Make ``module`` return ``value`` (same shape as its real output) while the context is open."""

    def hook(_mod: nn.Module, _inp: Any, out: Any) -> Tensor:
        if not isinstance(out, Tensor) or out.shape != value.shape:
            shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
            raise ShapeError(f"replacement of shape {tuple(value.shape)} does not match the layer output {shape}")
        return value

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


@contextlib.contextmanager
def preserved_state(model: nn.Module, eval_mode: bool = True) -> Iterator[None]:
    """Run a block with ``model`` in eval mode (if asked) and restore, on exit, every
    module's ``training`` flag and every parameter's ``requires_grad``.

    With ``eval_mode=False`` the forward passes run in the model's own mode, so
    training-mode BatchNorm normalizes with batch statistics; its running
    statistics (every buffer of a module in training mode) are restored on exit,
    since explaining is not training (perturbation methods would otherwise feed
    hundreds of masked images into them).
    """
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    saved: list[tuple[Tensor, Tensor]] = []
    if not eval_mode:
        saved = [(b, b.detach().clone()) for m in model.modules() if m.training
                 for b in m.buffers(recurse=False)]
    try:
        if eval_mode:
            model.eval()
        yield
    finally:
        for m, training in modes:
            m.training = training
        for p, flag in flags:
            if p.requires_grad != flag:
                p.requires_grad_(flag)
        with torch.no_grad():
            for buffer, value in saved:
                buffer.copy_(value)


def model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    for tensor in model.parameters():
        return tensor.device
    for tensor in model.buffers():
        return tensor.device
    return fallback


@contextlib.contextmanager
def checked_once(model: nn.Module) -> Iterator[None]:
    """Inside the block, ``model`` skips its pixel-range check (finiteness is still checked).

    A method checks the caller's images once (:func:`check_attribution_input`), then
    feeds the model images it derived on purpose: noisy copies (SS-CAM, Smooth
    Grad-CAM++), brightness-scaled ones (augmentation smoothing), masked or blended
    ones. Those may leave [0, 1] and must not be refused as if a user had passed them.
    Every medcam model or segmenter inside ``model`` is covered (a segmenter wrapped
    in :class:`medcam.attribution_segmentation.RegionScores`, say).
    """
    inner = [m for m in model.modules() if isinstance(m, (MedcamModel, MedcamSegmenter)) and m.input_range is not None]
    saved = [("input_range" in vars(m), m.input_range) for m in inner]
    for m in inner:
        m.input_range = None
    try:
        yield
    finally:
        for m, (had_own, before) in zip(inner, saved):
            if had_own:
                m.input_range = before
            else:
                del m.input_range


def check_attribution_input(model: nn.Module, images: Any) -> Tensor:
    """The images ``(B, C, H, W)`` after the shape, dtype and value checks, before any forward pass.

    A :class:`MedcamModel` or :class:`MedcamSegmenter` checks its ``input_range`` (default [0, 1]); for any
    other module only finiteness is checked (its value convention is unknown).
    """
    if isinstance(model, (MedcamModel, MedcamSegmenter)):
        check_images(images, model.in_chans)
        return check_pixel_values(images, model.input_range)
    channels = images.shape[1] if isinstance(images, Tensor) and images.dim() == 4 else 3
    return check_pixel_values(check_images(images, channels), None)
