"""The attribution protocol, :func:`explain`, and the helpers every method shares.

An attribution method (CAM, Grad-CAM, ...) is an :class:`Attribution`: it turns a
model and images ``(B, C, H, W)`` in [0, 1] into maps that say where the model
looked. Methods live in plugins and are built by name::

    import medcam
    maps = medcam.explain(model, images)                      # Grad-CAM, predicted class
    maps = medcam.explain(model, images, "gradcam++", target=labels)
    method = medcam.build_attribution({"name": "scorecam", "batch_size": 64})
    maps = method(model, images, target=[0, 2, 1, 1])

What every method returns (the core guarantees it, whatever the method):

* a torch tensor on the model's device: ``(B, H, W)`` for one target per image,
  ``(B, T, H, W)`` for ``T`` targets per image (``target`` given as a
  ``(B, T)`` table or ``"all"``), at input resolution and min-max normalized
  to [0, 1] per map (a constant map becomes all zeros);
* with ``raw=True`` the method's own formula at feature resolution,
  ``(B, h, w)`` or ``(B, T, h, w)``, neither resized nor normalized;
* with ``differentiable=True`` the map stays in the autograd graph (second-order
  gradients are recorded), so a loss can use it;
* no hook survives the call (even when it raises), and the model's per-module
  train/eval flags and every parameter's ``requires_grad`` are restored;
* a map that came out empty (all zeros: the method's raw map was constant,
  e.g. Grad-CAM's ReLU of an all-negative map for a class the model does not
  predict) is flagged in ``AttributionResult.empty`` and, once per call, an
  :class:`EmptyMapWarning` says how many and what to try instead.

``target`` is ``None`` (each image's predicted class), an int (the same class
for every image), a length-``B`` sequence or ``(B,)`` tensor (one class per
image; any other length is an error, never truncated), a ``(B, T)`` table of
classes, or ``"all"`` (every class). The *score* of a target is its logit.

``layer`` is ``None`` (the backbone level ``feature_info.cam_level``, read
from the forward pass itself: no hook), an int (another backbone level), or a
module name such as ``"backbone.stages.2"`` (captured with a forward hook that
is removed right after the forward pass). The layer must output ``(B, C, h, w)``
maps; backbones expose every level as maps, token models included.

Writing a method: subclass :class:`Attribution`, set ``uses_gradients`` and
implement :meth:`Attribution.compute`, which reads an :class:`AttributionContext`
(activations, gradients, scores, re-scoring helpers) and returns raw maps
``(B, T, h, w)``. Register the factory in the ``medcam.attributions``
entry-point group.
"""
from __future__ import annotations

import abc
import contextlib
import warnings
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from .attribution_empty import EmptyMapWarning, empty_map_advice
from .attribution_inputs import (TargetLayer, TargetLike, capture_output, check_attribution_input, logits_of,
                                 model_device, normalize_maps, preserved_state, replace_output, resize_maps,
                                 resolve_layer, resolve_targets)
from .errors import ShapeError, SpecError
from .model import MedcamModel, ModelOutput

__all__ = [
    "EmptyMapWarning",
    "empty_map_advice",
    "Attribution",
    "AttributionContext",
    "AttributionResult",
    "TargetLayer",
    "explain",
    "resolve_layer",
    "resolve_targets",
    "normalize_maps",
    "resize_maps",
    "preserved_state",
    "capture_output",
    "replace_output",
    "logits_of",
]


# ---------------------------------------------------------------------- context
class AttributionContext:
    """One forward pass at the target layer, and what methods read from it.

    Attributes:
        model: the model being explained.
        images: ``(B, C, H, W)`` input in [0, 1] (on the model's device).
        layer: the :class:`TargetLayer`.
        targets: ``(B, T)`` int64 class indices.
        output: the model's :class:`ModelOutput` (or raw output) of this pass.
        logits: ``(B, K)``.
        features: backbone levels ``[(B, C_i, h_i, w_i)]`` (MedcamModel only, else None).
        activations: ``(B, C, h, w)`` at ``layer`` (``None`` when the method reads no layer).
        differentiable: whether maps must stay in the autograd graph.
        several: the caller asked for ``(B, T)`` targets (maps keep the ``T`` axis).

    Gradients are computed on demand by :meth:`gradients`. Build contexts with
    :meth:`Attribution.run` (a forward pass) or :meth:`Attribution.from_output`.
    """

    def __init__(self, *, model: nn.Module | None, images: Tensor | None, layer: TargetLayer | None,
                 output: Any, logits: Tensor, features: list[Tensor] | None, activations: Tensor | None,
                 targets: Tensor, differentiable: bool, several: bool = False):
        self.model = model
        self.images = images
        self.layer = layer
        self.output = output
        self.logits = logits
        self.features = features
        self.activations = activations
        self.targets = targets
        self.differentiable = differentiable
        self.several = several
        self._gradients: Tensor | None = None

    @property
    def scores(self) -> Tensor:
        """``(B, T)`` target logits ``logits[b, targets[b, t]]``."""
        return self.logits.gather(1, self.targets)

    def require_activations(self) -> Tensor:
        """The layer's activations ``(B, C, h, w)``; an error for a context without a layer."""
        if self.activations is None:
            raise RuntimeError("this attribution context has no layer activations")
        return self.activations

    def gradients(self) -> Tensor:
        """``(B, T, C, h, w)``: ``d score[b, t] / d activations[b]``.

        Image ``b``'s score depends only on its own activations in eval mode, so
        one backward of ``sum_b score[b, t]`` per target column ``t`` gives every
        per-image gradient. With ``differentiable`` the gradients are themselves
        in the graph (``create_graph=True``).
        """
        if self._gradients is not None:
            return self._gradients
        acts = self.require_activations()
        if not acts.requires_grad:
            raise RuntimeError(f"the activations at {self.layer.name if self.layer else 'the layer'} are not in the "
                               f"autograd graph; gradient methods need them (for from_output, pass an output "
                               f"computed with return_features=True and gradients enabled)")
        with torch.enable_grad():
            scores = self.scores
            totals = [scores[:, t].sum() for t in range(scores.shape[1])]
        columns = []
        for t, total in enumerate(totals):
            keep = self.differentiable or t < len(totals) - 1
            (grad,) = torch.autograd.grad(total, acts, retain_graph=keep, create_graph=self.differentiable)
            columns.append(grad)
        self._gradients = torch.stack(columns, 1)
        return self._gradients

    # -- re-scoring helpers for perturbation methods --------------------------------
    def _forward_logits(self, images: Tensor) -> Tensor:
        assert self.model is not None
        return logits_of(self.model(images))

    def logits_for_images(self, images: Tensor) -> Tensor:
        """``(N, K)`` logits of a forward pass on other images ``(N, C, H, W)`` (no graph unless differentiable)."""
        if self.model is None:
            raise RuntimeError("this method runs extra forward passes; call it with a model, not from_output")
        with torch.set_grad_enabled(self.differentiable):
            return self._forward_logits(images)

    def logits_with_activations(self, activations: Tensor, index: Tensor) -> Tensor:
        """``(N, K)`` logits when the target layer outputs ``activations`` ``(N, C, h, w)``
        instead of its real output, for images ``index`` ``(N,)`` of the batch.

        For a backbone level the rest of the model is re-run from that level
        (the head, plus ``backbone.forward_from`` for later levels); for a hooked
        module the whole model runs on ``images[index]`` with the module's output replaced.
        """
        if self.model is None or self.layer is None:
            raise RuntimeError("this method runs extra forward passes; call it with a model, not from_output")
        with torch.set_grad_enabled(self.differentiable):
            if self.layer.level is not None:
                return self._head_from_level(activations, index)
            assert self.images is not None and self.layer.module is not None
            with replace_output(self.layer.module, activations):
                return self._forward_logits(self.images[index])

    def _head_from_level(self, activations: Tensor, index: Tensor) -> Tensor:
        model = self.model
        assert isinstance(model, MedcamModel) and self.features is not None and self.layer is not None
        level = self.layer.level
        assert level is not None
        earlier = [_take(f, index) for f in self.features[:level]]
        later: list[Tensor] = []
        if level < len(self.features) - 1:
            forward_from = getattr(model.backbone, "forward_from", None)
            if forward_from is None:
                raise ValueError(f"re-scoring level {level} needs the backbone to implement forward_from() "
                                 f"(its later levels depend on it); use the last level or a module name")
            later = list(forward_from(activations, level))
        return logits_of(model.head(earlier + [activations] + later))


def _take(tensor: Tensor, index: Tensor) -> Tensor:
    """``tensor[index]``; a broadcast view (no copy) when every index is the same image."""
    if index.numel() and bool((index == index[0]).all()):
        return tensor[index[:1]].expand(index.numel(), *tensor.shape[1:])
    return tensor[index]


@dataclass
class AttributionResult:
    """Maps plus what produced them.

    Attributes:
        maps: ``(B, H, W)`` / ``(B, T, H, W)`` (or raw, feature resolution).
        targets: ``(B, T)`` class indices the maps explain.
        logits: ``(B, K)`` model logits (detached).
        layer: name of the layer that was read.
        empty: ``(B,)`` / ``(B, T)`` bool, True where a normalized map is all zeros
            (None for raw maps, which are not normalized).
    """

    maps: Tensor
    targets: Tensor
    logits: Tensor
    layer: str
    empty: Tensor | None = None


# ---------------------------------------------------------------------- protocol
class Attribution(abc.ABC):
    """Base class of attribution methods (see the module docstring for the contract).

    Args:
        layer: default layer (``None``: the backbone's ``cam_level``); a call's
            ``layer`` argument overrides it.

    Class attributes a method sets:
        uses_gradients: the method calls :meth:`AttributionContext.gradients`.
        uses_layer: the method reads activations at a layer (False for e.g. FPM readout).
        extra_passes: the method re-runs the model (Score-CAM, Ablation-CAM), so
            :meth:`from_output` cannot serve it.
    """

    uses_gradients: bool = False
    uses_layer: bool = True
    extra_passes: bool = False
    spec: dict[str, Any] | None = None

    def __init__(self, layer: int | str | None = None):
        self.layer = layer

    @abc.abstractmethod
    def compute(self, ctx: AttributionContext) -> Tensor:
        """Raw maps ``(B, T, h, w)`` for the context's targets (the method's formula)."""

    def default_level(self, model: nn.Module) -> int | None:
        """The level used when no layer is given (``None``: the backbone's ``cam_level``)."""
        return None

    @property
    def name(self) -> str:
        return (self.spec or {}).get("name") or type(self).__name__.lower()

    def __repr__(self) -> str:
        params = {k: v for k, v in (self.spec or {}).items() if k != "name"}
        inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({inner})"

    # -- calling -------------------------------------------------------------------
    def __call__(self, model: nn.Module, images: Tensor, target: TargetLike = None,
                 layer: int | str | nn.Module | None = None, *, raw: bool = False,
                 differentiable: bool = False, eval_mode: bool = True) -> Tensor:
        """Maps for ``images`` ``(B, C, H, W)`` in [0, 1]; see :meth:`run` for the arguments."""
        return self.run(model, images, target, layer, raw=raw, differentiable=differentiable,
                        eval_mode=eval_mode).maps

    def run(self, model: nn.Module, images: Tensor, target: TargetLike = None,
            layer: int | str | nn.Module | None = None, *, raw: bool = False,
            differentiable: bool = False, eval_mode: bool = True) -> AttributionResult:
        """Explain a batch and return the maps with the targets and logits behind them.

        Args:
            model: a :class:`~medcam.model.MedcamModel` (or an ``nn.Module`` that
                returns ``(B, K)`` logits, with ``layer`` naming a module).
            images: ``(B, C, H, W)`` float in [0, 1].
            target: see the module docstring.
            layer: overrides the method's layer; see :func:`resolve_layer`.
            raw: return the formula's maps at feature resolution (no resize, no normalization).
            differentiable: keep the maps in the autograd graph.
            eval_mode: run the model in eval mode (restored afterwards); False keeps its current mode.

        Returns:
            :class:`AttributionResult` with ``maps`` ``(B, H, W)`` / ``(B, T, H, W)``.
        """
        images = check_attribution_input(model, images)
        images = images.to(model_device(model, images.device))
        chosen = self.layer if layer is None else layer
        if not self.uses_layer and chosen is not None:
            raise ValueError(f"{self.name} reads no layer; do not pass layer={chosen!r}")
        target_layer = resolve_layer(model, chosen, self.default_level(model)) if self.uses_layer else None
        with contextlib.ExitStack() as stack:
            if torch.is_inference_mode_enabled():
                stack.enter_context(torch.inference_mode(False))
                images = images.clone()
            stack.enter_context(preserved_state(model, eval_mode))
            ctx = self._forward(model, images, target, target_layer, differentiable)
            with torch.set_grad_enabled(differentiable):
                maps = self.compute(ctx)
            result = self._finish(ctx, maps, raw=raw, size=images.shape[-2:], differentiable=differentiable)
            del ctx
        if result.empty is not None and bool(result.empty.any()):
            empty = result.empty.reshape(result.targets.shape[0], -1).cpu()
            targets = result.targets.cpu()
            classes = sorted({int(c) for c in targets[empty].tolist()})
            predicted = bool((targets == result.logits.argmax(1).cpu()[:, None])[empty].all())
            warnings.warn(EmptyMapWarning(empty_map_advice(self.name, int(empty.sum()), empty.numel(),
                                                           [str(c) for c in classes], predicted=predicted)),
                          stacklevel=3)
        return result

    def from_output(self, output: ModelOutput, target: TargetLike = None, *, size: Sequence[int] | None = None,
                    model: nn.Module | None = None, layer: int | None = None, raw: bool = False,
                    differentiable: bool = True) -> AttributionResult:
        """Maps from a forward pass that already happened (e.g. inside a training step).

        ``output`` must come from ``model(images, return_features=True)`` with
        gradients enabled; no extra forward pass runs, so a loss can use the
        maps of its own forward pass. Methods that re-run the model (Score-CAM,
        Ablation-CAM) are not available here.

        Args:
            output: a :class:`ModelOutput` with ``features``.
            target: see the module docstring (``(B, K)`` multi-hot labels are not targets).
            size: ``(H, W)`` to resize to (required unless ``raw``).
            model: the model (needed by methods that read the head, e.g. CAM).
            layer: backbone level index (default: the method's default level, else the
                model's ``cam_level`` when ``model`` is given, else the last level).
            raw / differentiable: as in :meth:`run` (differentiable defaults to True here).
        """
        if self.extra_passes:
            raise ValueError(f"{self.name} re-runs the model for every channel; use run(model, images) instead")
        if self.uses_layer and not output.features:
            raise ValueError("from_output needs an output computed with return_features=True")
        if not raw and size is None:
            raise ValueError("from_output needs size=(H, W) to resize the maps (or raw=True)")
        logits = logits_of(output)
        if layer is None and model is not None:
            layer = self.default_level(model)
            if layer is None and isinstance(model, MedcamModel):
                layer = model.feature_info.cam_level
        activations = None
        target_layer = None
        if self.uses_layer:
            assert output.features is not None
            n = len(output.features)
            level = n - 1 if layer is None else layer
            if not -n <= level < n:
                raise ValueError(f"layer={level} is out of range for {n} feature levels")
            level %= n
            activations = output.features[level]
            target_layer = TargetLayer(name=f"level {level}", level=level)
        targets, several = resolve_targets(target, logits.shape[0], logits.shape[1], logits)
        ctx = AttributionContext(model=model, images=None, layer=target_layer, output=output, logits=logits,
                                 features=output.features, activations=activations, targets=targets,
                                 differentiable=differentiable, several=several)
        with torch.set_grad_enabled(differentiable):
            maps = self.compute(ctx)
        return self._finish(ctx, maps, raw=raw, size=size, differentiable=differentiable)

    # -- internals -----------------------------------------------------------------
    def _forward(self, model: nn.Module, images: Tensor, target: TargetLike, layer: TargetLayer | None,
                 differentiable: bool) -> AttributionContext:
        needs_graph = differentiable or self.uses_gradients
        is_medcam = isinstance(model, MedcamModel)
        num_classes = model.num_classes if is_medcam else None
        if num_classes is not None and target is not None:
            resolve_targets(target, images.shape[0], num_classes)  # fail before the forward pass
        x = images
        if needs_graph and not images.requires_grad:
            # the input carries the graph, so gradients reach the layer even with frozen parameters
            x = images.detach().requires_grad_(True)
        features = None
        activations = None
        if layer is not None and layer.level is not None:
            assert is_medcam
            n_levels = len(model.feature_info)
            if self.uses_gradients and not differentiable and layer.level == n_levels - 1:
                # the backward stops at the last level: record the head's graph only
                with torch.no_grad():
                    features = model.forward_features(images)
                activations = features[layer.level].detach().requires_grad_(True)
                features = features[:-1] + [activations]
                with torch.enable_grad():
                    output = model.head(features)
            else:
                with torch.set_grad_enabled(needs_graph):
                    output = model(x, return_features=True)
                features = output.features
                activations = features[layer.level]
        elif layer is not None:
            assert layer.module is not None
            with torch.set_grad_enabled(needs_graph), capture_output(layer.module) as outputs:
                output = model(x, return_features=False) if is_medcam else model(x)
            activations = _single_output(outputs, layer.name)
        else:
            with torch.set_grad_enabled(differentiable):
                output = model(x)
        logits = logits_of(output)
        if needs_graph and activations is not None and not activations.requires_grad:
            raise RuntimeError(f"the output of {layer.name if layer else 'the layer'} does not depend on the input "
                               f"through the autograd graph")
        targets, several = resolve_targets(target, images.shape[0], logits.shape[1], logits)
        ctx = AttributionContext(model=model, images=images, layer=layer, output=output, logits=logits,
                                 features=features, activations=activations, targets=targets,
                                 differentiable=differentiable, several=several)
        return ctx

    def _finish(self, ctx: AttributionContext, maps: Tensor, *, raw: bool, size: Sequence[int] | None,
                differentiable: bool) -> AttributionResult:
        b, t = ctx.targets.shape
        if maps.dim() != 4 or maps.shape[:2] != (b, t):
            raise ShapeError(f"{self.name}.compute returned {tuple(maps.shape)}, expected (B={b}, T={t}, h, w)")
        if not differentiable:
            maps = maps.detach()
        empty = None
        if not raw:
            assert size is not None
            maps = normalize_maps(resize_maps(maps.float(), size))
            empty = maps.detach().flatten(-2).amax(-1) <= 0  # (B, T); normalized maps are zero only if constant
        if not ctx.several:
            maps = maps[:, 0]
            empty = None if empty is None else empty[:, 0]
        layer_name = ctx.layer.name if ctx.layer is not None else "output"
        return AttributionResult(maps=maps, targets=ctx.targets.detach(), logits=ctx.logits.detach(), layer=layer_name,
                                 empty=empty)


def _single_output(outputs: list[Any], name: str) -> Tensor:
    if len(outputs) != 1:
        how = "never ran" if not outputs else f"ran {len(outputs)} times"
        raise ValueError(f"layer '{name}' {how} during the forward pass; choose a module that runs exactly once")
    out = outputs[0]
    if not isinstance(out, Tensor) or out.dim() != 4:
        shape = tuple(out.shape) if isinstance(out, Tensor) else type(out).__name__
        raise ShapeError(f"layer '{name}' outputs {shape}, but attribution needs (B, C, h, w) maps; choose a layer "
                         f"that outputs maps (every backbone level does: pass layer=<level index>)")
    return out


# ---------------------------------------------------------------------- explain
def _build(method: str | Mapping[str, Any] | Attribution, params: Mapping[str, Any]) -> Attribution:
    if isinstance(method, Attribution):
        if params:
            raise SpecError(f"method parameters {sorted(params)} cannot be applied to an already built "
                            f"{type(method).__name__}; build it with them instead")
        return method
    from .build import build_attribution

    spec = {"name": method} if isinstance(method, str) else dict(method)
    spec.update(params)
    built = build_attribution(spec)
    if not isinstance(built, Attribution):
        raise SpecError(f"attribution '{spec.get('name')}' built a {type(built).__name__}, not a "
                        f"medcam.attribution.Attribution")
    return built


def explain(model: nn.Module, images: Tensor, method: str | Mapping[str, Any] | Attribution = "gradcam",
            target: TargetLike = None, layer: int | str | nn.Module | None = None, *, raw: bool = False,
            differentiable: bool = False, eval_mode: bool = True, details: bool = False,
            **params: Any) -> Tensor | AttributionResult:
    """Attribution maps for a batch, in one call.

    Args:
        model: a :class:`~medcam.model.MedcamModel` (or an ``nn.Module`` returning
            ``(B, K)`` logits, with ``layer`` naming one of its modules).
        images: ``(B, C, H, W)`` float in [0, 1].
        method: a registered name (``medcam list attributions``), a part spec
            ``{"name": ..., **params}`` or a built :class:`Attribution`.
        target: ``None`` (predicted class), an int, one class per image, a
            ``(B, T)`` table or ``"all"``; see the module docstring.
        layer: ``None`` (the backbone's ``cam_level``), a level index or a module name.
        raw: maps at feature resolution straight from the formula (no resize or normalization).
        differentiable: keep the maps in the autograd graph.
        eval_mode: explain the model in eval mode (its modes are restored afterwards).
        details: return an :class:`AttributionResult` (maps, targets, logits, layer).
        **params: method parameters (e.g. ``batch_size=64`` for Score-CAM).

    Returns:
        ``(B, H, W)`` maps in [0, 1] on the model's device (``(B, T, H, W)`` for
        several targets per image), or the :class:`AttributionResult`.
    """
    built = _build(method, params)
    result = built.run(model, images, target, layer, raw=raw, differentiable=differentiable, eval_mode=eval_mode)
    return result if details else result.maps

