"""medcam.params: declared choices and ranges, the shared checks and their messages."""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest

from medcam.errors import SpecError
from medcam.params import (Fraction, FractionBelowOne, NonNegativeFloat, PositiveFloat, PositiveInt, Range, accepts,
                           check_choice, check_keys, check_number, check_value, describe, parameter_hints)
from medcam.registry import get_registry
from medcam.spec import resolve_model_spec, resolve_part


def _message(call: Any) -> str:
    with pytest.raises(SpecError) as info:
        call()
    return str(info.value)


def test_range_contains_and_reads_like_its_bounds():
    assert 0.0 in Range(0.0) and -0.1 not in Range(0.0)
    assert 0.0 not in Range(0.0, low_open=True) and 1e-9 in Range(0.0, low_open=True)
    assert 1.0 in Fraction.__metadata__[0] and 1.0 not in FractionBelowOne.__metadata__[0]
    for bad in (float("nan"), float("inf"), True, "1", None):
        assert bad not in Range()
    assert Range(1).describe(integer=True) == "a positive integer"
    assert Range(0.0, low_open=True).describe() == "a positive number"
    assert Range(32).describe(integer=True) == "an integer >= 32"
    assert Range(0.0, 1.0, high_open=True).describe() == "a number in [0, 1)"
    assert Range(1, 6).describe(integer=True) == "an integer in [1, 6]"
    assert Range(high=2.5, high_open=True).describe() == "a number < 2.5"
    with pytest.raises(ValueError, match="above"):
        Range(2, 1)


@pytest.mark.parametrize("hint, good, bad", [
    (bool, [True, False], [1, "true", None]),
    (int, [0, -3], [1.0, True, "1"]),
    (float, [0, 1.5], [True, "1e-3"]),
    (str, ["a"], [1, None]),
    (Literal["a", "b"], ["a", "b"], ["c", "A", None]),
    (Literal[1, 2], [1], [True, 1.0]),
    (PositiveInt, [1, 7], [0, 1.0, True]),
    (NonNegativeFloat, [0, 0.5], [-1e-9, float("nan")]),
    (PositiveFloat | None, [None, 2.0], [0.0]),
    (list[int], [[], [1, 2], (1,)], [[1.5], "12", {1: 2}]),
    (tuple[float, float], [[1, 2.0]], [[1.0], [1, "x"]]),
    (dict[str, int], [{"a": 1}], [{"a": "x"}, [("a", 1)]]),
    (bool | Literal["auto"], [True, "auto"], ["yes", None]),
    (Path, ["anything"], []),   # a class declares nothing this module checks
    (Any, [object()], []),
])
def test_accepts(hint, good, bad):
    assert all(accepts(v, hint) for v in good), good
    assert not any(accepts(v, hint) for v in bad), bad


def test_describe():
    assert describe(Literal["none", "nonlinear"]) == "one of none, nonlinear"
    assert describe(bool | Literal["auto"]) == "true, false or auto"
    assert describe(FractionBelowOne | None) == "a number in [0, 1) or null"
    assert describe(Literal["scse"] | None) == "scse or null"
    assert describe(list[float] | str | None) == "a list, a string or null"


def test_check_value_messages():
    assert check_value(3, PositiveFloat, "p") == 3.0 and isinstance(check_value(3, PositiveFloat, "p"), float)
    assert _message(lambda: check_value("nonlinaer", Literal["none", "nonlinear"], "head.modulation")) == (
        "head.modulation: expected one of none, nonlinear, got 'nonlinaer'; did you mean 'nonlinear'?")
    assert _message(lambda: check_value(0, PositiveInt, "head.top_k", note="default 1")) == (
        "head.top_k: expected a positive integer, got 0 (default 1)")
    assert _message(lambda: check_value("yes", bool | Literal["auto"], "train.balanced_sampler")) == (
        "train.balanced_sampler: expected true, false or auto, got 'yes'")


def test_check_choice():
    assert check_choice("SGD", ("sgd", "adam"), "train.optimizer", fold_case=True) == "sgd"
    assert check_choice("adam", ("sgd", "adam"), "train.optimizer") == "adam"
    assert _message(lambda: check_choice("adamx", ("sgd", "adam", "adamw"), "train.optimizer")) == (
        "train.optimizer: expected one of sgd, adam, adamw, got 'adamx'; did you mean 'adam'?")
    assert _message(lambda: check_choice("SGD", ("sgd",), "train.optimizer")).startswith(
        "train.optimizer: expected one of sgd, got 'SGD'")


def test_check_number():
    assert check_number(2, "x", Range(0.0)) == 2.0 and check_number(2, "x", integer=True) == 2
    assert check_number(None, "x", Range(1), integer=True, optional=True) is None
    assert _message(lambda: check_number(-1, "loss[0].weight", Range(0.0), note="why")) == (
        "loss[0].weight: expected a number >= 0, got -1 (why)")
    assert _message(lambda: check_number(2.5, "eval.batch_size", Range(1), integer=True, optional=True)) == (
        "eval.batch_size: expected a positive integer or null, got 2.5")
    assert _message(lambda: check_number(float("inf"), "p", Range(0.0))) == "p: expected a number >= 0, got inf (not finite)"


def test_check_keys():
    check_keys({"size": 1}, ["size", "resize"], "preprocess")
    assert _message(lambda: check_keys({"sise": 1}, ["size", "resize"], "preprocess")) == (
        "preprocess.sise: unknown key; did you mean 'size'? (keys: size, resize)")
    assert _message(lambda: check_keys({"modles": 1}, ["models", "name"])) == (
        "modles: unknown key; did you mean 'models'? (keys: models, name)")


# ---------------------------------------------------------------------- factories
def _factory(width: PositiveInt = 4, mode: Literal["a", "b"] = "a", rate: FractionBelowOne = 0.5,
             path: "NotDefinedAnywhere" = None, plain=2.0) -> None:  # noqa: F821
    """A factory with declared parameters and one annotation that does not resolve."""


def test_parameter_hints_keep_annotated_and_skip_what_does_not_resolve():
    hints = parameter_hints(_factory)
    assert hints["width"] == PositiveInt and hints["mode"] == Literal["a", "b"] and "path" not in hints
    assert "plain" not in hints


def test_parameter_hints_read_a_generated_signature():
    def generated(*args: Any, **kwargs: Any) -> None:
        pass

    kw = inspect.Parameter.POSITIONAL_OR_KEYWORD
    generated.__signature__ = inspect.Signature([inspect.Parameter("rate", kw, default=0.0, annotation="Fraction"),
                                                 inspect.Parameter("n", kw, default=1, annotation=PositiveInt)])
    assert parameter_hints(generated) == {"rate": Fraction, "n": PositiveInt}


def test_spec_validation_reads_the_declarations():
    base = {"backbone": "tiny_cnn", "num_classes": 3}
    spec = resolve_model_spec({**base, "head": {"name": "fpm", "modulation": "none", "top_k": 2}})
    assert spec["head"]["modulation"] == "none" and spec["head"]["top_k"] == 2
    for head, message in (
            ({"name": "fpm", "modulation": "wrong"},
             "head.modulation: expected one of none, nonlinear, got 'wrong' (default 'nonlinear')"),
            ({"name": "fpm", "modulation": "nonlinaer"},
             "head.modulation: expected one of none, nonlinear, got 'nonlinaer' (default 'nonlinear'); "
             "did you mean 'nonlinear'?"),
            ({"name": "fpm", "box_threshold": 1.0},
             "head.box_threshold: expected a number in [0, 1), got 1.0 (default 0.83)"),
            ({"name": "fpm", "hidden": 0.5}, "head.hidden: expected a positive integer, got 0.5 (default 1024)"),
            ({"name": "fpm", "fusion": None}, "head.fusion: expected true or false, got None (default True)")):
        assert _message(lambda: resolve_model_spec({**base, "head": head})) == message
    loss = {"name": "attention_box", "source": "boxes", "mode": "ratio", "lam": 1}
    assert resolve_part("losses", loss, "loss[0]")["lam"] == 1  # valid values are kept as given
    assert _message(lambda: resolve_part("losses", {**loss, "lam": 1.5}, "loss[0]")) == (
        "loss[0].lam: expected a number in [0, 1], got 1.5 (default 0.5)")


def test_every_registered_factory_accepts_its_own_defaults():
    for kind in ("backbones", "segmenters", "heads", "attributions", "losses", "metrics"):
        registry = get_registry(kind)
        for name in registry.list():
            factory = registry.get(name)
            hints = parameter_hints(factory)
            for p in inspect.signature(factory).parameters.values():
                if p.name in hints and p.default is not p.empty and p.name not in registry.injected:
                    assert accepts(p.default, hints[p.name]), (kind, name, p.name, p.default)
