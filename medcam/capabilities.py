"""Optional capabilities of model parts, as :class:`typing.Protocol` s.

A part (backbone, head, loss, attribution method) may offer more than its
kind's required contract. Each optional capability is a runtime-checkable
protocol here; code that uses one checks ``isinstance(part, Protocol)`` instead
of probing attributes, and :func:`require` turns a missing capability into one
clear line naming the method the part lacks.

==========================  ==========================================================
protocol                    what the part offers
==========================  ==========================================================
:class:`CamWeightsHead`     ``level`` and ``cam_weights() -> (K, C)``: pool, then linear
:class:`ClassMapHead`       ``level`` and ``class_maps(features) -> (B, K, h, w)``
:class:`RescoringHead`      ``rescore(backbone, fmap)``: re-score a (masked) level map
:class:`RescorableBackbone` ``forward_from(x, level)`` and ``forward_from_exact``
:class:`FeatureLoss`        ``needs_features``: read ``output.features`` (train with them)
:class:`ClassCountLoss`     ``set_class_counts(counts)``: the training set's class counts
:class:`ModelCheck`         ``check_model(model)``: refuse, at assembly, a model it cannot serve
==========================  ==========================================================

Example::

    from medcam.capabilities import ClassMapHead, require
    head = require(model.head, ClassMapHead, "head", "the cam method")
    maps = head.class_maps(features)                # (B, K, h, w)

This module imports no torch at run time (annotations only).
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Protocol, Sequence, TypeVar, runtime_checkable

from .errors import CapabilityError

if TYPE_CHECKING:
    from torch import Tensor, nn

__all__ = [
    "CamWeightsHead",
    "ClassMapHead",
    "RescoringHead",
    "RescorableBackbone",
    "FeatureLoss",
    "ClassCountLoss",
    "ModelCheck",
    "CapabilityError",
    "missing_members",
    "require",
    "needs_features",
]

P = TypeVar("P")


@runtime_checkable
class CamWeightsHead(Protocol):
    """A head that pools level ``level`` then applies a linear map: ``logits = W GAP(F_level) + b``.

    ``cam_weights()`` returns ``W`` ``(K, C)``; the class activation map of class
    ``k`` is ``sum_c W[k, c] F_level[c]`` (Zhou et al., CVPR 2016).
    """

    level: int

    def cam_weights(self) -> Tensor:
        """``(K, C)`` weights that turn level ``level`` ``(B, C, h, w)`` into class maps."""
        ...


@runtime_checkable
class ClassMapHead(Protocol):
    """A head that computes per-class maps itself (FPM's classification branch, VMamba's LN + linear).

    ``class_maps(features)`` takes the backbone levels ``[(B, C_i, h_i, w_i)]`` and
    returns ``(B, K, h, w)`` at the resolution of level ``level``; the logits are
    their spatial mean (plus a bias, if the head has one).
    """

    level: int

    def class_maps(self, features: Sequence[Tensor]) -> Tensor:
        """Class maps ``(B, K, h, w)`` of the backbone levels ``features``."""
        ...


@runtime_checkable
class RescoringHead(Protocol):
    """A head that re-scores a (masked) map of its foreground level (the WSOL erasing losses use it)."""

    def rescore(self, backbone: nn.Module, fmap: Tensor, *, frozen: bool = True) -> Tensor:
        """``(B, K)`` scores of level map ``fmap`` ``(B, C, h, w)``."""
        ...


@runtime_checkable
class RescorableBackbone(Protocol):
    """A backbone that can re-run its stages after output level ``level``.

    ``forward_from(levels[k], k)`` returns ``levels[k + 1:]``, exactly when
    ``forward_from_exact`` is True (False when a level passes through a norm the
    next stage does not see, as VMamba with ``out_norm``).
    """

    forward_from_exact: bool

    def forward_from(self, x: Tensor, level: int) -> list[Tensor]:
        """The levels after ``level``, computed from its map ``x`` ``(B, C_level, h, w)``."""
        ...


@runtime_checkable
class FeatureLoss(Protocol):
    """A loss that reads ``output.features``: the trainer calls the model with ``return_features=True``."""

    needs_features: bool


@runtime_checkable
class ClassCountLoss(Protocol):
    """A loss that uses the training set's per-class counts (``class_weights="balanced"``)."""

    def set_class_counts(self, counts: Sequence[int]) -> None:
        """Receive the counts ``[n_0, ..., n_{K-1}]`` once, before training."""
        ...


@runtime_checkable
class ModelCheck(Protocol):
    """A part (attribution method, loss) that can tell at assembly whether a model serves it."""

    def check_model(self, model: nn.Module) -> None:
        """Raise :class:`CapabilityError` when ``model`` lacks a capability this part uses."""
        ...


def missing_members(obj: Any, protocol: type) -> list[str]:
    """The members of ``protocol`` that ``obj`` lacks (methods as ``name()``), in declaration order."""
    out = []
    for name in _protocol_members(protocol):
        expected_callable = callable(getattr(protocol, name, None))
        if not hasattr(obj, name):
            out.append(f"{name}()" if expected_callable else name)
        elif expected_callable and not callable(getattr(obj, name)):
            out.append(f"{name}()")
    return out


def _protocol_members(protocol: type) -> list[str]:
    names = list(getattr(protocol, "__annotations__", {}))
    names += [n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")]
    return list(dict.fromkeys(names))


def require(obj: Any, protocol: type[P], role: str, purpose: str) -> P:
    """``obj`` if it offers ``protocol``, else a :class:`CapabilityError` naming what it lacks.

    Args:
        obj: the part (``None`` counts as lacking everything).
        protocol: one of this module's protocols.
        role: what the part is in the model, e.g. ``"head"``.
        purpose: who needs it, e.g. ``"the cam method"``.
    """
    lacking = missing_members(obj, protocol)
    if not lacking:
        return obj  # type: ignore[return-value]
    kind = type(obj).__name__
    raise CapabilityError(f"{purpose} needs a {role} with {' and '.join(lacking)} ({protocol.__name__}); "
                          f"the {role} {kind} has no {', '.join(lacking)}")


def needs_features(loss: Any) -> bool:
    """True when ``loss`` is a :class:`FeatureLoss` that reads ``output.features``."""
    return isinstance(loss, FeatureLoss) and bool(loss.needs_features)
