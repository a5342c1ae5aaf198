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
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from .attribution_context import AttributionContext
from .attribution_empty import EmptyMapWarning, empty_map_advice
from .attribution_inputs import (TargetLayer, TargetLike, capture_output, check_attribution_input, checked_once,
                                 logits_of, model_device, normalize_maps, preserved_state, replace_output,
                                 resize_maps, resolve_layer, resolve_targets)
from .errors import AttributionError, ShapeError, SpecError
from .memory_format import backbone_input
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
    #: ``(logits (B, K), targets (B, T)) -> (B, T)`` scores that gradients are taken of; None: the logits.
    target_scores: Callable[[Tensor, Tensor], Tensor] | None = None

    def __init__(self, layer: int | str | None = None):
        self.layer = layer

    @abc.abstractmethod
    def compute(self, ctx: AttributionContext) -> Tensor:
        """Raw maps ``(B, T, h, w)`` for the context's targets (the method's formula)."""

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        """``(B, T, C, h, w)``: the per-channel terms whose sum is the map (eigen smoothing reads them)."""
        raise AttributionError(f"{self.name} has no per-channel terms, so eigen_smooth does not apply (it applies to "
                         f"methods whose map sums terms over channels, such as gradcam or layercam)")

    def eigen_maps(self, ctx: AttributionContext) -> Tensor:
        """``(B, T, h, w)``: the first principal component of :meth:`channel_terms` (eigen smoothing)."""
        from .attribution_ensembles import eigen_maps

        return eigen_maps(self, ctx)

    def default_level(self, model: nn.Module) -> int | None:
        """The level used when no layer is given (``None``: the backbone's ``cam_level``)."""
        return None

    def check_model(self, model: nn.Module) -> None:
        """Raise :class:`~medcam.errors.CapabilityError` when ``model`` cannot serve this method
        (:class:`medcam.capabilities.ModelCheck`); :func:`medcam.build_model` calls it for the
        spec's ``attribution``. The default accepts every model."""

    @property
    def name(self) -> str:
        return (self.spec or {}).get("name") or type(self).__name__.lower()

    def __repr__(self) -> str:
        params = {k: v for k, v in (self.spec or {}).items() if k != "name"}
        inner = ", ".join(f"{k}={v!r}" for k, v in params.items())
        return f"{type(self).__name__}({inner})"

    # -- calling -------------------------------------------------------------------
    def __call__(self, model: nn.Module, images: Tensor, target: TargetLike = None,
                 layer: Any = None, *, raw: bool = False, differentiable: bool = False, eval_mode: bool = True,
                 fusion: str = "layercam", aug_smooth: bool = False, eigen_smooth: bool = False) -> Tensor:
        """Maps for ``images`` ``(B, C, H, W)`` in [0, 1]; see :meth:`run` for the arguments."""
        return self.run(model, images, target, layer, raw=raw, differentiable=differentiable, eval_mode=eval_mode,
                        fusion=fusion, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth).maps

    def run(self, model: nn.Module, images: Tensor, target: TargetLike = None, layer: Any = None, *,
            raw: bool = False, differentiable: bool = False, eval_mode: bool = True, fusion: str = "layercam",
            aug_smooth: bool = False, eigen_smooth: bool = False) -> AttributionResult:
        """Explain a batch and return the maps with the targets and logits behind them.

        Args:
            model: a :class:`~medcam.model.MedcamModel` (or an ``nn.Module`` that
                returns ``(B, K)`` logits, with ``layer`` naming a module).
            images: ``(B, C, H, W)`` float in [0, 1].
            target: see the module docstring.
            layer: overrides the method's layer; see :func:`resolve_layer`. A list of
                layers fuses their maps (:mod:`medcam.attribution_ensembles`).
            raw: return the formula's maps at feature resolution (no resize, no normalization;
                fused and augmented maps are at input resolution).
            differentiable: keep the maps in the autograd graph.
            eval_mode: run the model in eval mode (restored afterwards); False keeps its current mode.
            fusion: how several layers' maps combine: ``layercam``, ``mean``, ``max`` or ``product``.
            aug_smooth: average the maps of 6 flipped / brightness-scaled copies (test-time augmentation).
            eigen_smooth: project the method's per-channel terms on their first principal component
                instead of summing them (methods of the form ``sum_k w_k A^k`` or element-wise terms).

        Returns:
            :class:`AttributionResult` with ``maps`` ``(B, H, W)`` / ``(B, T, H, W)``.
        """
        from .attribution_ensembles import augmented_run, fused_run

        chosen = self.layer if layer is None else layer
        options = dict(raw=raw, differentiable=differentiable, eval_mode=eval_mode, eigen_smooth=eigen_smooth)
        images = check_attribution_input(model, images)  # the caller's images, once; derived ones are the method's
        with checked_once(model):
            if aug_smooth:
                return augmented_run(self, model, images, target, layer, fusion=fusion, **options)
            if isinstance(chosen, (list, tuple)):
                return fused_run(self, model, images, target, list(chosen), fusion=fusion, **options)
            return self._run_one(model, images, target, chosen, raw=raw, differentiable=differentiable,
                                 eval_mode=eval_mode, eigen_smooth=eigen_smooth)

    def _run_one(self, model: nn.Module, images: Tensor, target: TargetLike, chosen: Any, *, raw: bool,
                 differentiable: bool, eval_mode: bool, eigen_smooth: bool) -> AttributionResult:
        """:meth:`run` for one layer (or none) without smoothing, on checked images."""
        images = images.to(model_device(model, images.device))
        if not self.uses_layer and chosen is not None:
            raise AttributionError(f"{self.name} reads no layer; do not pass layer={chosen!r}")
        target_layer = resolve_layer(model, chosen, self.default_level(model)) if self.uses_layer else None
        with contextlib.ExitStack() as stack:
            if torch.is_inference_mode_enabled():
                stack.enter_context(torch.inference_mode(False))
                images = images.clone()
            stack.enter_context(preserved_state(model, eval_mode))
            ctx = self._forward(model, images, target, target_layer, differentiable)
            with torch.set_grad_enabled(differentiable):
                maps = self.eigen_maps(ctx) if eigen_smooth else self.compute(ctx)
            result = self._finish(ctx, maps, raw=raw, size=images.shape[-2:], differentiable=differentiable)
            del ctx
        if result.empty is not None and bool(result.empty.any()):
            empty = result.empty.reshape(result.targets.shape[0], -1).cpu()
            targets = result.targets.cpu()
            classes = sorted({int(c) for c in targets[empty].tolist()})
            predicted = bool((targets == result.logits.argmax(1).cpu()[:, None])[empty].all())
            warnings.warn(EmptyMapWarning(empty_map_advice(self.name, int(empty.sum()), empty.numel(),
                                                           [str(c) for c in classes], predicted=predicted)),
                          stacklevel=4)
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
            raise AttributionError(f"{self.name} re-runs the model for every channel; use run(model, images) instead")
        if self.uses_layer and not output.features:
            raise AttributionError("from_output needs an output computed with return_features=True")
        if not raw and size is None:
            raise AttributionError("from_output needs size=(H, W) to resize the maps (or raw=True)")
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
                raise AttributionError(f"layer={level} is out of range for {n} feature levels")
            level %= n
            activations = output.features[level]
            target_layer = TargetLayer(name=f"level {level}", level=level)
        targets, several = resolve_targets(target, logits.shape[0], logits.shape[1], logits)
        ctx = AttributionContext(model=model, images=None, layer=target_layer, output=output, logits=logits,
                                 features=output.features, activations=activations, targets=targets,
                                 differentiable=differentiable, several=several, score_fn=self.target_scores)
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
                    features = [f.contiguous() for f in model.forward_features(backbone_input(model, images))]
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
                                 differentiable=differentiable, several=several, score_fn=self.target_scores)
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
        raise AttributionError(f"layer '{name}' {how} during the forward pass; choose a module that runs exactly once")
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
            target: TargetLike = None, layer: Any = None, *, raw: bool = False,
            differentiable: bool = False, eval_mode: bool = True, details: bool = False, fusion: str = "layercam",
            aug_smooth: bool = False, eigen_smooth: bool = False, **params: Any) -> Tensor | AttributionResult:
    """Attribution maps for a batch, in one call.

    Args:
        model: a :class:`~medcam.model.MedcamModel` (or an ``nn.Module`` returning
            ``(B, K)`` logits, with ``layer`` naming one of its modules).
        images: ``(B, C, H, W)`` float in [0, 1].
        method: a registered name (``medcam list attributions``), a part spec
            ``{"name": ..., **params}`` or a built :class:`Attribution`.
        target: ``None`` (predicted class), an int, one class per image, a
            ``(B, T)`` table or ``"all"``; see the module docstring.
        layer: ``None`` (the backbone's ``cam_level``), a level index or a module name; a list of
            them fuses their maps (``fusion``).
        raw: maps at feature resolution straight from the formula (no resize or normalization).
        differentiable: keep the maps in the autograd graph.
        eval_mode: explain the model in eval mode (its modes are restored afterwards).
        details: return an :class:`AttributionResult` (maps, targets, logits, layer).
        fusion, aug_smooth, eigen_smooth: multi-layer fusion and the two smoothing options
            (:meth:`Attribution.run`, :mod:`medcam.attribution_ensembles`).
        **params: method parameters (e.g. ``batch_size=64`` for Score-CAM).

    Returns:
        ``(B, H, W)`` maps in [0, 1] on the model's device (``(B, T, H, W)`` for
        several targets per image), or the :class:`AttributionResult`.
    """
    built = _build(method, params)
    result = built.run(model, images, target, layer, raw=raw, differentiable=differentiable, eval_mode=eval_mode,
                       fusion=fusion, aug_smooth=aug_smooth, eigen_smooth=eigen_smooth)
    return result if details else result.maps

