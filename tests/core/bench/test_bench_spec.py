"""Benchmark spec validation: defaults, overrides and clear errors."""
from __future__ import annotations

from pathlib import Path

import pytest

from medcam.bench.spec import DATA_DEFAULTS, EVAL_DEFAULTS, load_bench_spec
from medcam.errors import SpecError

REPO = Path(__file__).resolve().parents[3]
MINIMAL = {"models": [{"key": "a", "spec": {"backbone": "tiny_cnn"}}]}


def test_defaults_are_filled() -> None:
    spec = load_bench_spec(MINIMAL)
    assert spec.data == DATA_DEFAULTS and spec.eval == EVAL_DEFAULTS
    assert [b["name"] for b in spec.baselines] == ["center_box", "center_gaussian", "random_map"]
    assert spec.models[0].label == "a" and spec.seed == 0 and spec.size is None
    again = load_bench_spec(spec.to_dict())
    assert again.to_dict() == spec.to_dict()


def test_preset_name_shorthand_and_key_from_name() -> None:
    spec = load_bench_spec({"models": ["tiny_classifier", {"spec": {"name": "tiny_classifier"}, "key": "b"}]})
    assert [m.key for m in spec.models] == ["tiny_classifier", "b"]
    assert spec.models[0].spec == "tiny_classifier"


@pytest.mark.parametrize("raw, message", [
    ({**MINIMAL, "modles": []}, "modles: unknown key; did you mean 'models'"),
    ({**MINIMAL, "eval": {"intervall": 0.01}}, "eval.intervall: unknown key; did you mean 'interval'"),
    ({**MINIMAL, "eval": {"interval": 2}}, "eval.interval"),
    ({**MINIMAL, "eval": {"checkpoint": "bset"}}, "did you mean 'best'"),
    ({**MINIMAL, "train": {"epoch": 3}}, "train.epoch: unknown key; did you mean 'epochs'"),
    ({**MINIMAL, "baselines": ["center_boxx"]}, "did you mean 'center_box'"),
    ({**MINIMAL, "data": {"split_sed": 1}}, "did you mean 'split_seed'"),
    ({"models": []}, "at least one model"),
    ({"models": [{"key": "a", "spec": "x"}, {"key": "a", "spec": "y"}]}, "duplicate keys"),
    ({"models": [{"key": "a b", "spec": "x"}]}, "models[0].key"),
    ({"models": [{"key": "a"}]}, "needs 'spec'"),
    ({"models": [{"key": "a", "spec": "x", "train": {"lr": -1}}]}, "train.lr"),
    ({"models": [{"key": "a", "spec": "x", "methods": [3]}]}, "models[0].methods[0]"),
    ({**MINIMAL, "size": 2}, "size"),
    ({"models": [{"key": "a", "spec": "x", "init_from": "b"}, {"key": "b", "spec": "y"}]},
     "models[0].init_from: 'b' is not an earlier model"),
    ({"models": [{"key": "ce", "spec": "x"}, {"key": "b", "spec": "y", "init_from": "cee"}]}, "did you mean 'ce'"),
    ({"models": [{"key": "a", "spec": "x"}, {"key": "b", "spec": "y", "init_from": "a", "checkpoint": "b.pt"}]},
     "models[1]: 'init_from' starts a training run, 'checkpoint' skips it"),
])
def test_bad_specs_raise_with_the_path(raw: dict, message: str) -> None:
    with pytest.raises(SpecError) as info:
        load_bench_spec(raw)
    assert message in str(info.value)


def test_override_and_select() -> None:
    spec = load_bench_spec({"train": {"epochs": 3}, "models": [
        {"key": "a", "spec": "x", "train": {"epochs": 5}}, {"key": "b", "spec": "y"}]})
    over = spec.override(size=64, epochs=1, threads=2, seed=7)
    assert (over.size, over.threads, over.seed, over.train["epochs"]) == (64, 2, 7, 1)
    assert "epochs" not in over.models[0].train          # the command line wins over per-model epochs
    assert [m.key for m in spec.select(["b"]).models] == ["b"]
    with pytest.raises(SpecError, match="did you mean 'b'"):
        spec.select(["bb"])


def test_select_keeps_the_models_a_selection_starts_from() -> None:
    spec = load_bench_spec({"models": [{"key": "ce", "spec": "x"}, {"key": "other", "spec": "y"},
                                       {"key": "mid", "spec": "y", "init_from": "ce"},
                                       {"key": "last", "spec": "z", "init_from": "mid"}]})
    assert [m.key for m in spec.select(["last"]).models] == ["ce", "mid", "last"]
    assert [m.key for m in spec.select(["other"]).models] == ["other"]
    assert spec.select(["last"]).models[2].init_from == "mid"


def test_missing_file_is_an_error() -> None:
    with pytest.raises(FileNotFoundError):
        load_bench_spec("no_such_spec.yaml")


@pytest.mark.parametrize("name", ["busi_cpu.yaml", "busi_full.yaml", "busi_vmamba_cpu.yaml"])
def test_shipped_specs_are_valid(name: str) -> None:
    spec = load_bench_spec(REPO / "benchmarks" / "specs" / name)
    keys = [m.key for m in spec.models]
    if name != "busi_vmamba_cpu.yaml":
        assert "resnet18_ce" in keys and "resnet18_lesion_attention" in keys
    assert any("wsol" in k for k in keys)
    assert {b["name"] for b in spec.baselines} == {"center_box", "center_gaussian", "random_map"}
    assert spec.data["groups"] == "near_duplicates" and spec.data["split_seed"] == 0


def test_vmamba_spec_shares_the_cpu_protocol() -> None:
    cpu = load_bench_spec(REPO / "benchmarks" / "specs" / "busi_cpu.yaml")
    vm = load_bench_spec(REPO / "benchmarks" / "specs" / "busi_vmamba_cpu.yaml")
    assert (vm.size, vm.seed, vm.data, vm.train["epochs"]) == (cpu.size, cpu.seed, cpu.data, cpu.train["epochs"])
    assert vm.eval["checkpoint"] == cpu.eval["checkpoint"] and vm.eval["interval"] == cpu.eval["interval"]
