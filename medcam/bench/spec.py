"""Benchmark specs: which data, which models, which methods, which baselines.

A benchmark spec is a YAML/JSON file (or a mapping) naming everything by
registry name, so a new model preset, attribution method or loss joins a
benchmark by adding its name::

    name: busi_cpu
    seed: 0
    size: 128                       # preprocess.size of every trained model
    data: {dataset: busi, val: 0.15, test: 0.15, split_seed: 0, groups: near_duplicates}
    train: {epochs: 8, lr: 0.001, balanced_sampler: true}   # medcam.engine.TrainConfig
    eval: {methods: all, exclude_methods: [scorecam], interval: 0.01}
    faithfulness: {images: 24, metrics: [deletion, insertion, road, pointing_game]}   # [] switches it off
    baselines: [center_box, center_gaussian, random_map]
    models:
      - key: resnet18_ce
        spec: {backbone: resnet18, loss: [ce]}
      - key: resnet18_lesion_attention
        spec: resnet18_lesion_attention           # a preset name
        train: {lr: 0.0005}                        # per-model overrides
      - key: resnet18_wsol_from_ce
        spec: {backbone: resnet18, head: fpm, loss: [foreground_control]}
        init_from: resnet18_ce                     # start from that model's trained backbone

:func:`load_bench_spec` validates every key (unknown keys are errors with
close matches) and fills the defaults, so the resolved spec written to the
results is complete.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from medcam.errors import SpecError
from medcam.params import Range, check_choice, check_keys, check_number, check_value
from medcam.registry import did_you_mean

__all__ = ["BenchSpec", "ModelEntry", "load_bench_spec", "DATA_DEFAULTS", "EVAL_DEFAULTS", "BASELINE_NAMES"]
# the faithfulness section's defaults live in medcam.bench.faithfulness.FAITHFULNESS_DEFAULTS

#: Data settings (medcam.engine.runs.DataConfig without the path) and their defaults.
DATA_DEFAULTS: dict[str, Any] = {
    "dataset": "busi", "val": 0.15, "test": 0.15, "split_seed": 0, "groups": "near_duplicates",
    "augment": "default", "options": {},
}
#: Evaluation settings and their defaults.
EVAL_DEFAULTS: dict[str, Any] = {
    "methods": "all",            # "all" registered attribution methods, or a list of names / part specs
    "exclude_methods": [],       # names left out of "all" (say why in the spec's comments / notes)
    "interval": 0.01,            # CAM threshold step of the WSOL metrics (Choe et al.: 0.01 or 0.001)
    "batch_size": 16,            # images per attribution call (fixed: the fpm head's batch statistics)
    "checkpoint": "best",        # which checkpoint of a trained model: best (validation) or last
    "val_threshold": True,       # also report box accuracy at thresholds chosen on the validation split
    "gallery": 6,                # held-out lesion images in the overlay gallery
}
#: Model-free baselines (medcam.bench.baselines).
BASELINE_NAMES = ("center_box", "center_gaussian", "random_map")
_TOP_KEYS = ("name", "description", "seed", "size", "threads", "data", "train", "eval", "faithfulness", "baselines",
             "models", "notes")
_MODEL_KEYS = ("key", "label", "spec", "train", "methods", "exclude_methods", "checkpoint", "init_from", "notes")
_KEY_RE = re.compile(r"^[A-Za-z0-9_.+-]+$")


@dataclass
class ModelEntry:
    """One model of a benchmark.

    Attributes:
        key: identifier (folder name of its training run, row key in the results).
        label: shown in tables and plots.
        spec: model spec (preset name, mapping or YAML/JSON path), before the data fixes its classes.
        train: per-model training settings over the benchmark's ``train``.
        methods: ``"all"`` or a list of attribution names / part specs (``None``: the benchmark's).
        exclude_methods: names left out of ``"all"`` for this model (added to the benchmark's).
        checkpoint: load this checkpoint instead of training (``None``: train).
        init_from: key of an earlier model of the benchmark whose trained backbone weights this
            model starts from (its backbone's ``checkpoint_path``); the offline stand-in for the
            pretrained start of WSOL papers (``None``: the spec's own initialisation).
        notes: free text kept in the results.
    """

    key: str
    label: str
    spec: Any
    train: dict[str, Any] = field(default_factory=dict)
    methods: Any = None
    exclude_methods: list[str] = field(default_factory=list)
    checkpoint: str | None = None
    init_from: str | None = None
    notes: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "spec": copy.deepcopy(self.spec), "train": dict(self.train),
                "methods": copy.deepcopy(self.methods), "exclude_methods": list(self.exclude_methods),
                "checkpoint": self.checkpoint, "init_from": self.init_from, "notes": self.notes}


@dataclass
class BenchSpec:
    """A validated benchmark spec (module docstring); :meth:`to_dict` is what results record."""

    name: str
    seed: int
    size: int | None
    threads: int | None
    data: dict[str, Any]
    train: dict[str, Any]
    eval: dict[str, Any]
    baselines: list[dict[str, Any]]
    models: list[ModelEntry]
    description: str | None = None
    notes: Any = None
    faithfulness: dict[str, Any] = field(default_factory=lambda: _faithfulness(None))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "seed": self.seed, "size": self.size,
                "threads": self.threads, "data": copy.deepcopy(self.data), "train": copy.deepcopy(self.train),
                "eval": copy.deepcopy(self.eval), "faithfulness": copy.deepcopy(self.faithfulness),
                "baselines": copy.deepcopy(self.baselines),
                "models": [m.to_dict() for m in self.models], "notes": copy.deepcopy(self.notes)}

    def model(self, key: str) -> ModelEntry:
        for entry in self.models:
            if entry.key == key:
                return entry
        raise SpecError(f"no model '{key}' in benchmark '{self.name}'{did_you_mean(key, [m.key for m in self.models])}")

    def select(self, keys: Sequence[str] | None) -> "BenchSpec":
        """A copy with only the models ``keys`` and those they start from (``init_from``), in the spec's order.

        ``None`` keeps all.
        """
        if not keys:
            return self
        wanted: set[str] = set()
        for key in keys:
            entry = self.model(key)
            while entry is not None and entry.key not in wanted:
                wanted.add(entry.key)
                entry = self.model(entry.init_from) if entry.init_from else None
        out = copy.deepcopy(self)
        out.models = [m for m in out.models if m.key in wanted]
        return out

    def override(self, *, size: int | None = None, epochs: int | None = None, threads: int | None = None,
                 seed: int | None = None) -> "BenchSpec":
        """A copy with command-line overrides applied (validated like the file)."""
        raw = self.to_dict()
        if size is not None:
            raw["size"] = size
        if epochs is not None:
            raw["train"] = {**raw["train"], "epochs": epochs}
            for m in raw["models"]:
                m["train"].pop("epochs", None)
        if threads is not None:
            raw["threads"] = threads
        if seed is not None:
            raw["seed"] = seed
        return load_bench_spec(raw)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"{where}: expected a mapping, got {type(value).__name__}")
    return copy.deepcopy(dict(value))


def _int(value: Any, where: str, minimum: int, optional: bool = False) -> int | None:
    return check_number(value, where, Range(minimum), integer=True, optional=optional)


def _methods(value: Any, where: str) -> Any:
    if value is None or value == "all":
        return value
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not value:
        raise SpecError(f"{where}: expected 'all' or a non-empty list of attribution names / part specs, "
                        f"got {value!r}")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str):
            out.append(copy.deepcopy(dict(item)))
        else:
            raise SpecError(f"{where}[{i}]: expected a name or {{name: ..., ...}}, got {item!r}")
    return out


def _names(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"{where}: expected a list of names, got {value!r}")
    return list(value)


def _eval(raw: Any) -> dict[str, Any]:
    data = _mapping(raw, "eval")
    check_keys(data, EVAL_DEFAULTS, "eval")
    out = {**copy.deepcopy(EVAL_DEFAULTS), **data}
    out["methods"] = _methods(out["methods"], "eval.methods") or "all"
    out["exclude_methods"] = _names(out["exclude_methods"], "eval.exclude_methods")
    out["interval"] = check_number(out["interval"], "eval.interval", Range(0.0, 1.0, low_open=True, high_open=True),
                                   note="a threshold step such as 0.01")
    out["batch_size"] = _int(out["batch_size"], "eval.batch_size", 1)
    out["gallery"] = _int(out["gallery"], "eval.gallery", 0)
    check_choice(out["checkpoint"], ("best", "last"), "eval.checkpoint")
    check_value(out["val_threshold"], bool, "eval.val_threshold")
    return out


def _faithfulness(raw: Any) -> dict[str, Any]:
    """The ``faithfulness`` section: metric parts resolved against the ``metrics`` registry, defaults filled."""
    from .faithfulness import FAITHFULNESS_DEFAULTS, resolve_metrics

    data = _mapping(raw, "faithfulness")
    check_keys(data, FAITHFULNESS_DEFAULTS, "faithfulness")
    out = {**copy.deepcopy(FAITHFULNESS_DEFAULTS), **data}
    metrics = out["metrics"]
    if metrics is None:
        metrics = []
    if isinstance(metrics, (str, Mapping)):
        metrics = [metrics]
    if not isinstance(metrics, (list, tuple)):
        raise SpecError(f"faithfulness.metrics: expected a list of metric names or part specs, got {metrics!r}")
    out["metrics"] = [part for _, part in resolve_metrics(metrics)]
    out["images"] = _int(out["images"], "faithfulness.images", 0)
    check_value(out["baselines"], bool, "faithfulness.baselines")
    return out


def _baselines(raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        raw = list(BASELINE_NAMES)
    if not isinstance(raw, (list, tuple)):
        raise SpecError(f"baselines: expected a list of baseline names or {{name: ..., ...}}, got {raw!r}")
    out = []
    for i, item in enumerate(raw):
        part = {"name": item} if isinstance(item, str) else _mapping(item, f"baselines[{i}]")
        check_choice(part.get("name"), BASELINE_NAMES, f"baselines[{i}].name")
        out.append(part)
    return out


def _model(raw: Any, i: int) -> ModelEntry:
    where = f"models[{i}]"
    if isinstance(raw, str):
        raw = {"key": raw, "spec": raw}
    data = _mapping(raw, where)
    check_keys(data, _MODEL_KEYS, where)
    if "spec" not in data and "checkpoint" not in data:
        raise SpecError(f"{where}: needs 'spec' (a preset name, mapping or file) or 'checkpoint'")
    key = data.get("key")
    if key is None:
        spec = data.get("spec")
        key = spec if isinstance(spec, str) else (spec or {}).get("name") if isinstance(spec, Mapping) else None
    if not isinstance(key, str) or not _KEY_RE.match(key):
        raise SpecError(f"{where}.key: expected an identifier of letters, digits, '_', '.', '+' or '-', got {key!r}")
    label = data.get("label", key)
    if not isinstance(label, str):
        raise SpecError(f"{where}.label: expected a string, got {label!r}")
    checkpoint = data.get("checkpoint")
    if checkpoint is not None and not isinstance(checkpoint, str):
        raise SpecError(f"{where}.checkpoint: expected a path, got {checkpoint!r}")
    init_from = data.get("init_from")
    if init_from is not None:
        if not isinstance(init_from, str):
            raise SpecError(f"{where}.init_from: expected the key of an earlier model, got {init_from!r}")
        if checkpoint is not None:
            raise SpecError(f"{where}: 'init_from' starts a training run, 'checkpoint' skips it; give one")
    return ModelEntry(key=key, label=label, spec=copy.deepcopy(data.get("spec")),
                      train=_mapping(data.get("train"), f"{where}.train"),
                      methods=_methods(data.get("methods"), f"{where}.methods"),
                      exclude_methods=_names(data.get("exclude_methods"), f"{where}.exclude_methods"),
                      checkpoint=checkpoint, init_from=init_from, notes=data.get("notes"))


def load_bench_spec(source: Any) -> BenchSpec:
    """Read and validate a benchmark spec (a mapping or a YAML/JSON path).

    Raises:
        SpecError: an unknown key (with close matches), a bad value, duplicate model keys.
        FileNotFoundError: a path that does not exist.
    """
    if isinstance(source, BenchSpec):
        return copy.deepcopy(source)
    from medcam.spec import load_spec

    if isinstance(source, Mapping):
        raw = copy.deepcopy(dict(source))
    else:
        raw = load_spec(source)
        if set(raw) == {"name"} and isinstance(source, str):
            raise FileNotFoundError(f"benchmark spec '{source}' is not a file (give a .yaml or .json path)")
    check_keys(raw, _TOP_KEYS)
    data = _mapping(raw.get("data"), "data")
    check_keys(data, DATA_DEFAULTS, "data")
    data = {**copy.deepcopy(DATA_DEFAULTS), **data}
    train = _mapping(raw.get("train"), "train")
    from medcam.engine.config import TrainConfig

    TrainConfig.from_dict(train)  # validate early (per-model overrides are validated when merged)
    models = [_model(m, i) for i, m in enumerate(raw.get("models") or [])]
    if not models:
        raise SpecError("models: a benchmark needs at least one model")
    keys = [m.key for m in models]
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    if dupes:
        raise SpecError(f"models: duplicate keys {dupes}; give each model a distinct 'key'")
    for i, m in enumerate(models):
        TrainConfig.from_dict({**train, **m.train})
        if m.init_from is not None and m.init_from not in keys[:i]:
            raise SpecError(f"models[{i}].init_from: '{m.init_from}' is not an earlier model of this benchmark"
                            f"{did_you_mean(m.init_from, keys[:i])} (models start from models listed before them)")
    name = raw.get("name", "benchmark")
    if not isinstance(name, str):
        raise SpecError(f"name: expected a string, got {name!r}")
    return BenchSpec(name=name, description=raw.get("description"), seed=_int(raw.get("seed", 0), "seed", 0),
                     size=_int(raw.get("size"), "size", 8, optional=True),
                     threads=_int(raw.get("threads"), "threads", 1, optional=True), data=data, train=train,
                     eval=_eval(raw.get("eval")), baselines=_baselines(raw.get("baselines")), models=models,
                     notes=raw.get("notes"), faithfulness=_faithfulness(raw.get("faithfulness")))
