"""Parameter declarations: a factory states its choices and ranges once, in its signature.

A registered factory (a backbone, head, loss, ...) declares what each parameter
accepts with standard typing, and :func:`medcam.spec.resolve_part` checks every
spec value against it, so a bad value fails at spec validation with its spec
path, never later inside the model code::

    from typing import Annotated, Literal
    from medcam.params import PositiveInt, Range

    def fpm(feature_info, num_classes, modulation: Literal["none", "nonlinear"] = "nonlinear",
            top_k: PositiveInt = 1,
            box_threshold: Annotated[float, Range(0.0, 1.0, high_open=True)] = 0.83): ...

    # {"head": {"name": "fpm", "modulation": "wrong"}} ->
    # head.modulation: expected one of none, nonlinear, got 'wrong'

What an annotation accepts (:func:`accepts`): ``bool``; ``int`` (not a bool);
``float`` (an int or a float, not a bool); ``str``; ``None``; ``Literal[...]``
(one of its values); ``Annotated[int | float, Range(...)]`` (a finite number
in the range); ``list[T]``/``tuple[T, ...]``/``Sequence[T]`` (a list or tuple
of T); ``dict[K, V]``/``Mapping[K, V]`` (a mapping); ``os.PathLike`` (a string
or path); unions of these (``X | None``). ``Any`` and other classes accept
anything: they declare nothing to check here.

The same message style serves every hand-written check of the project
(:func:`check_choice`, :func:`check_number`, :func:`check_keys`): the spec
path, what is expected, the value given and close matches::

    train.optimizer: expected one of sgd, adam, adamw, rmsprop, got 'adamx'; did you mean 'adam'?
    head.top_k: expected a positive integer, got 0
    preprocess.sise: unknown key; did you mean 'size'? (keys: size, resize, ...)

This module is torch-free: light plugin ``entries`` modules import it.
"""
from __future__ import annotations

import collections.abc
import inspect
import math
import os
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Callable, Iterable, Literal, Mapping, Union

from .errors import SpecError
from .registry import did_you_mean

__all__ = [
    "Range",
    "PositiveInt",
    "NonNegativeInt",
    "PositiveFloat",
    "NonNegativeFloat",
    "Fraction",
    "FractionBelowOne",
    "parameter_hints",
    "accepts",
    "describe",
    "check_value",
    "check_choice",
    "check_number",
    "check_keys",
]


@dataclass(frozen=True)
class Range:
    """The closed or open interval a number must lie in; ``None`` leaves a side unbounded.

    Used as ``Annotated[float, Range(0.0, 1.0, high_open=True)]`` (``[0, 1)``) or
    ``Annotated[int, Range(32)]`` (``>= 32``). The value must also be finite
    (no NaN or infinity).

    Attributes:
        low, high: the bounds (as written: ``Range(0.0, ...)`` reads ``0.0`` in messages).
        low_open, high_open: exclude the bound itself (``>`` / ``<`` instead of ``>=`` / ``<=``).
    """

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __post_init__(self) -> None:
        if self.low is not None and self.high is not None and not self.low <= self.high:
            raise ValueError(f"Range: low {self.low!r} is above high {self.high!r}")

    def __contains__(self, value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return False
        return True

    def describe(self, integer: bool = False) -> str:
        """``"a positive integer"``, ``"a number >= 0"``, ``"a number in [0, 1)"``, ..."""
        noun = "integer" if integer else "number"
        positive = self.high is None and (self.low == 0 and self.low_open or integer and self.low == 1
                                          and not self.low_open)
        if positive:
            return f"a positive {noun}"
        article = "an" if integer else "a"
        low, high = _bound(self.low), _bound(self.high)
        if self.low is not None and self.high is not None:
            return f"{article} {noun} in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"
        if self.low is not None:
            return f"{article} {noun} {'>' if self.low_open else '>='} {low}"
        if self.high is not None:
            return f"{article} {noun} {'<' if self.high_open else '<='} {high}"
        return f"{article} {noun}"


def _bound(value: float | None) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


#: Common declarations (use them in signatures: ``top_k: PositiveInt = 1``).
PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0.0, low_open=True)]
NonNegativeFloat = Annotated[float, Range(0.0)]
#: ``[0, 1]``: a weight or share that may be 0 or 1.
Fraction = Annotated[float, Range(0.0, 1.0)]
#: ``[0, 1)``: a dropout rate, label smoothing or threshold that must leave something.
FractionBelowOne = Annotated[float, Range(0.0, 1.0, high_open=True)]

_SEQUENCES = (list, tuple, collections.abc.Sequence)
_MAPPINGS = (dict, collections.abc.Mapping)


# ---------------------------------------------------------------------- reading hints
def parameter_hints(factory: Callable[..., Any]) -> dict[str, Any]:
    """``{parameter: annotation}`` of ``factory``'s signature, evaluated (``Annotated`` kept).

    Uses :func:`typing.get_type_hints`, so factories may write ``from __future__ import
    annotations``; a generated factory's ``__signature__`` (string or evaluated annotations)
    counts too. An annotation that names something the module does not define at run time
    (an import under ``TYPE_CHECKING``) is left out: it declares nothing to check.
    """
    try:
        hints = typing.get_type_hints(factory, include_extras=True)
    except Exception:  # NameError, TypeError from one annotation: read them one by one below
        hints = {}
    try:
        parameters = inspect.signature(factory).parameters.values()
    except (TypeError, ValueError):
        return hints
    namespace = getattr(inspect.unwrap(factory), "__globals__", {})
    out: dict[str, Any] = {}
    for p in parameters:
        if p.name in hints:
            out[p.name] = hints[p.name]
        elif p.annotation is not inspect.Parameter.empty:
            holder = types.SimpleNamespace(__annotations__={p.name: p.annotation})
            try:
                out.update(typing.get_type_hints(holder, globalns=namespace, include_extras=True))
            except Exception:
                continue
    return out


# ---------------------------------------------------------------------- checking one value
def _range_of(hint: Any) -> tuple[Any, Range | None]:
    """``(base type, Range or None)`` of ``Annotated[base, Range(...), ...]`` (else ``(hint, None)``)."""
    if typing.get_origin(hint) is Annotated:
        base, *extras = typing.get_args(hint)
        ranges = [e for e in extras if isinstance(e, Range)]
        return base, (ranges[0] if ranges else None)
    return hint, None


def _members(hint: Any) -> tuple[Any, ...]:
    origin = typing.get_origin(hint)
    if origin is Union or origin is types.UnionType:
        return typing.get_args(hint)
    return (hint,)


def _same(value: Any, choice: Any) -> bool:
    return type(value) is type(choice) and value == choice  # Literal[1] does not accept True


def accepts(value: Any, hint: Any) -> bool:
    """Whether ``value`` (plain spec data) fits the annotation ``hint`` (module docstring)."""
    hint, bounds = _range_of(hint)
    if bounds is not None:
        return (isinstance(value, int) or hint is not int) and value in bounds
    if len(_members(hint)) > 1:
        return any(accepts(value, member) for member in _members(hint))
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is None or hint is type(None):
        return value is None
    if origin is Literal:
        return any(_same(value, choice) for choice in args)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if hint is os.PathLike or origin is os.PathLike:
        return isinstance(value, (str, os.PathLike))
    container = origin or hint
    if container in _SEQUENCES:
        if not isinstance(value, (list, tuple)):
            return False
        items = [a for a in args if a is not Ellipsis]
        if container is tuple and args and Ellipsis not in args:
            return len(value) == len(args) and all(accepts(v, a) for v, a in zip(value, args))
        return not items or all(accepts(v, items[0]) for v in value)
    if container in _MAPPINGS:
        if not isinstance(value, Mapping):
            return False
        return len(args) != 2 or all(accepts(k, args[0]) and accepts(v, args[1]) for k, v in value.items())
    return True  # Any, a class, a TypeVar: nothing declared to check


def _alternatives(hint: Any) -> list[str]:
    """The words of :func:`describe` for each member of a union (a Literal gives its values)."""
    words: list[str] = []
    for member in _members(hint):
        base, bounds = _range_of(member)
        origin = typing.get_origin(base)
        if bounds is not None:
            words.append(bounds.describe(integer=base is int))
        elif member is None or member is type(None):
            words.append("null")
        elif origin is Literal:
            words.extend(str(c) for c in typing.get_args(base))
        elif base is bool:
            words.extend(["true", "false"])
        elif base is int:
            words.append("an integer")
        elif base is float:
            words.append("a number")
        elif base is str:
            words.append("a string")
        elif (origin or base) in _SEQUENCES:
            words.append("a list")
        elif (origin or base) in _MAPPINGS:
            words.append("a mapping")
        else:
            words.append(getattr(base, "__name__", str(base)))
    return list(dict.fromkeys(words))


def describe(hint: Any) -> str:
    """What ``hint`` accepts, in words: ``"one of a, b"``, ``"a number in [0, 1) or null"``, ..."""
    if typing.get_origin(hint) is Literal:
        return "one of " + ", ".join(str(c) for c in typing.get_args(hint))
    words = _alternatives(hint)
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _choices(hint: Any) -> list[str]:
    return [c for member in _members(hint) if typing.get_origin(member) is Literal
            for c in typing.get_args(member) if isinstance(c, str)]


def _declared(value: Any, hint: Any, fold_case: bool) -> Any:
    """``value`` in the form ``hint`` declares: a choice as written (``fold_case``: ``"SGD"`` ->
    ``"sgd"``), an int where a float is declared as a float; else ``value`` unchanged."""
    if fold_case and isinstance(value, str):
        value = {c.lower(): c for c in _choices(hint)}.get(value.lower(), value)
    for member in _members(hint):
        base = _range_of(member)[0]
        if accepts(value, member):
            return float(value) if base is float and not isinstance(value, float) else value
    return value


def check_value(value: Any, hint: Any, path: str, note: str = "", *, fold_case: bool = False) -> Any:
    """``value`` in its declared form if :func:`accepts` it (an int declared ``float`` becomes a
    float; ``fold_case`` matches choices in any case), else :class:`SpecError`
    ``"{path}: expected {describe(hint)}, got {value!r} ({note}); did you mean ...?"`` (the note,
    ``not finite`` for NaN and infinity, and the close matches of a misspelled choice where there
    are any)."""
    value = _declared(value, hint, fold_case)
    if accepts(value, hint):
        return value
    close = did_you_mean(value, _choices(hint)) if isinstance(value, str) else ""
    notes = "; ".join(n for n in ("not finite" if isinstance(value, float) and not math.isfinite(value) else "", note)
                      if n)
    raise SpecError(f"{path}: expected {describe(hint)}, got {value!r}{f' ({notes})' if notes else ''}{close}")


# ---------------------------------------------------------------------- hand-written checks
def check_choice(value: Any, choices: Iterable[Any], path: str, *, fold_case: bool = False) -> Any:
    """``value`` if it is one of ``choices``, else :class:`SpecError` with close matches.

    ``fold_case``: compare strings in any case and return the choice as declared
    (``"SGD"`` -> ``"sgd"``).
    """
    return check_value(value, Literal[tuple(choices)], path, fold_case=fold_case)  # type: ignore[valid-type]


def check_number(value: Any, path: str, bounds: Range | None = None, *, integer: bool = False,
                 optional: bool = False, note: str = "") -> Any:
    """``value`` as an ``int`` (``integer``) or ``float`` if it is a finite number in ``bounds``.

    ``optional``: ``None`` is accepted (and returned). ``note`` explains the bound in the
    message (``"loss[0].weight: expected a number >= 0, got -1 (a negative weight ...)"``).
    """
    hint: Any = Annotated[int if integer else float, bounds or Range()]
    return check_value(value, hint | None if optional else hint, path, note)


def check_keys(data: Mapping[str, Any], allowed: Iterable[str], path: str = "") -> None:
    """:class:`SpecError` ``"{path}.{key}: unknown key; did you mean ...? (keys: ...)"`` for the
    first key of ``data`` not in ``allowed`` (``path`` empty: the top level)."""
    known = list(allowed)
    for key in data:
        if key not in known:
            where = f"{path}.{key}" if path else str(key)
            raise SpecError(f"{where}: unknown key{did_you_mean(str(key), known)} (keys: {', '.join(known)})")
