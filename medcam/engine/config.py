"""The training configuration: every knob of :class:`~medcam.engine.Trainer`, validated.

A :class:`TrainConfig` is plain data (numbers, strings, ``None``), so it is
stored verbatim in checkpoints and the JSON-lines log, and a resumed run can
check that it continues the same training. Build it from keywords, a mapping
or a YAML/JSON file::

    TrainConfig(epochs=8, lr=3e-3, balanced_sampler=True)
    TrainConfig.from_dict({"optimizer": "sgd", "lr": 0.05})
    TrainConfig.load("train.yaml")

Unknown keys and misspelled choices are errors with close matches
(``train.optimzer: unknown key; did you mean 'optimizer'?``).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

from medcam.errors import SpecError
from medcam.params import (Fraction, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, check_keys,
                           check_value)

__all__ = ["TrainConfig", "OPTIMIZERS", "SCHEDULERS", "AMP_MODES", "MONITORS", "CLASSIFIER_MONITORS",
           "SEGMENTER_MONITORS", "RESUME_SAFE_KEYS", "PRETRAINED_DEFAULTS"]

Optimizer = Literal["sgd", "adam", "adamw", "rmsprop"]
Scheduler = Literal["constant", "cosine", "linear", "step", "plateau"]
AmpMode = Literal["auto", "off", "fp16", "bf16"]
#: Metrics the trainer can monitor for the best checkpoint, early stopping and the plateau schedule:
#: a classifier's (the first is the default) and a segmenter's (medcam.metrics.segmentation).
ClassifierMonitor = Literal["balanced_accuracy", "accuracy", "auc", "macro_f1", "loss"]
SegmenterMonitor = Literal["dice", "iou", "dice_per_image", "box_acc", "loss"]
Monitor = Literal[ClassifierMonitor, SegmenterMonitor]
OPTIMIZERS, SCHEDULERS, AMP_MODES = typing.get_args(Optimizer), typing.get_args(Scheduler), typing.get_args(AmpMode)
CLASSIFIER_MONITORS, SEGMENTER_MONITORS = typing.get_args(ClassifierMonitor), typing.get_args(SegmenterMonitor)
MONITORS = typing.get_args(Monitor)
#: Defaults for a spec whose backbone starts from pretrained weights, under the spec's and the user's
#: settings: a short warm-up, so the new head's first large gradients do not wreck the pretrained
#: features (the pretrained Lite0 presets, measured in docs/results.md, train with it).
PRETRAINED_DEFAULTS: dict[str, Any] = {"warmup_epochs": 0.5}
#: Keys that may change between a run and its ``--resume`` (they do not change the result).
RESUME_SAFE_KEYS = ("epochs", "progress", "num_workers", "device", "eval_batch_size")


@dataclass
class TrainConfig:
    """How to train (the model itself comes from its spec).

    Attributes:
        epochs: passes over the training set.
        batch_size: the *global* batch size; under ``torchrun`` with W processes
            each process takes ``batch_size / W`` samples per step, so results do
            not depend on the number of processes.
        eval_batch_size: batch size for evaluation (default ``2 * batch_size``).
        optimizer: ``sgd`` (momentum, Nesterov), ``adam``, ``adamw`` or ``rmsprop``.
        lr: peak learning rate.
        backbone_lr_scale: the backbone's learning rate as a fraction of ``lr`` (e.g. 0.1:
            a pretrained backbone fine-tuned gently while a new head learns at ``lr``).
        weight_decay: decoupled (``adamw``) or L2 weight decay; never applied to
            biases and normalization parameters (1-D tensors).
        momentum: momentum for ``sgd`` and ``rmsprop``.
        scheduler: learning-rate schedule: ``constant``, ``cosine`` (to
            ``lr * min_lr_ratio``), ``linear`` (to ``lr * min_lr_ratio``), ``step``
            (times ``gamma`` every ``step_epochs``) or ``plateau`` (times ``gamma``
            when the monitored metric has not improved for ``plateau_patience`` epochs).
        warmup_epochs: linear warm-up from ``lr / 100`` (may be fractional; not with ``plateau``).
        min_lr_ratio: final learning rate of ``cosine``/``linear`` as a fraction of ``lr``.
        step_epochs: period of the ``step`` schedule.
        gamma: decay factor of ``step`` and ``plateau``.
        plateau_patience: epochs without improvement before ``plateau`` decays.
        grad_clip: clip the global gradient norm to this value (``None``: off).
        amp: mixed precision: ``auto`` (fp16 or bf16 autocast on CUDA, off on CPU),
            ``off``, ``fp16`` (CUDA only, with loss scaling) or ``bf16`` (also on CPU).
        balanced_sampler: draw every class equally often (sampling with replacement,
            ``N`` samples per epoch; single-label data only): ``true``, ``false`` or ``auto``
            (the default: on when the training set's largest class is more than 1.5x its
            smallest, :func:`medcam.engine.sampler.wants_balance`; the run header says which).
        monitor: metric that selects the best checkpoint, drives early stopping
            and the ``plateau`` schedule (computed on the validation set); one of
            :data:`CLASSIFIER_MONITORS` (default ``balanced_accuracy``) for a classifier,
            :data:`SEGMENTER_MONITORS` for a segmenter (``dice`` when its spec is trained, see :meth:`for_spec`).
        monitor_mode: ``max``, ``min`` or ``auto`` (``min`` for ``loss``, else ``max``).
        early_stopping: stop after this many epochs without improvement (``None``: off).
        seed: seeds weights, data order, augmentation and dropout; the same seed
            gives the same weights.
        num_workers: data-loading worker processes per training process.
        device: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda`` or ``cuda:N``.
        sync_bn: synchronize batch-norm statistics across processes (CUDA only).
        progress: show tqdm progress bars (main process only).
    """

    epochs: PositiveInt = 10
    batch_size: PositiveInt = 32
    eval_batch_size: PositiveInt | None = None
    optimizer: Optimizer = "adamw"
    lr: PositiveFloat = 1e-3
    backbone_lr_scale: NonNegativeFloat = 1.0
    weight_decay: NonNegativeFloat = 1e-4
    momentum: NonNegativeFloat = 0.9
    scheduler: Scheduler = "cosine"
    warmup_epochs: NonNegativeFloat = 0.0
    min_lr_ratio: Fraction = 0.0
    step_epochs: PositiveInt = 10
    gamma: PositiveFloat = 0.1
    plateau_patience: NonNegativeInt = 3
    grad_clip: PositiveFloat | None = None
    amp: AmpMode = "auto"
    balanced_sampler: bool | Literal["auto"] = "auto"
    monitor: Monitor = "balanced_accuracy"
    monitor_mode: Literal["auto", "max", "min"] = "auto"
    early_stopping: PositiveInt | None = None
    seed: NonNegativeInt = 0
    num_workers: NonNegativeInt = 0
    device: str = "auto"
    sync_bn: bool = False
    progress: bool = True

    def __post_init__(self) -> None:
        self._validate()

    # ------------------------------------------------------------------ validation
    def _validate(self) -> None:
        """Every field against its annotation (choices in any case, ints declared float become floats)."""
        for key, hint in _field_hints().items():
            setattr(self, key, check_value(getattr(self, key), hint, f"train.{key}", fold_case=True))
        if not isinstance(self.device, str) or not (self.device in ("auto", "cpu", "cuda", "mps")
                                                    or self.device.startswith("cuda:")):
            raise SpecError(f"train.device: expected auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.scheduler == "plateau" and self.warmup_epochs:
            raise SpecError("train.warmup_epochs: the plateau schedule has no warm-up; use cosine or set it to 0")

    # ------------------------------------------------------------------ derived
    @property
    def mode(self) -> str:
        """``"max"`` or ``"min"``: the direction in which :attr:`monitor` improves."""
        if self.monitor_mode != "auto":
            return self.monitor_mode
        return "min" if self.monitor == "loss" else "max"

    @property
    def eval_batch(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size

    # ------------------------------------------------------------------ conversion
    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every setting (what checkpoints and logs store)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    def replace(self, **changes: Any) -> "TrainConfig":
        """A validated copy with some settings changed."""
        return TrainConfig.from_dict({**self.to_dict(), **changes})

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | "TrainConfig" | None) -> "TrainConfig":
        """Build from a mapping; unknown keys raise :class:`SpecError` with close matches."""
        if isinstance(data, TrainConfig):
            return data
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise SpecError(f"train: expected a mapping of training settings, got {type(data).__name__}")
        check_keys(data, [f.name for f in dataclasses.fields(cls)], "train")
        return cls(**dict(data))

    @classmethod
    def for_spec(cls, spec: Mapping[str, Any], config: Mapping[str, Any] | "TrainConfig" | None) -> "TrainConfig":
        """The settings to train ``spec`` (a resolved model spec) with.

        The spec's own ``train`` mapping (a preset's tuned optimizer and learning rate)
        is the base; the keys of ``config`` override it. Under both, a spec whose
        backbone is ``pretrained`` gets :data:`PRETRAINED_DEFAULTS`, and a segmenter spec
        (one with a ``segmenter`` part) monitors ``dice`` without class balance unless told otherwise. A
        :class:`TrainConfig` given as ``config`` is complete and used as it is.
        """
        if isinstance(config, TrainConfig):
            return config
        if config is not None and not isinstance(config, Mapping):
            raise SpecError(f"train: expected a mapping of training settings, got {type(config).__name__}")
        backbone = spec.get("backbone")
        pretrained = isinstance(backbone, Mapping) and backbone.get("pretrained") is True
        base = dict(PRETRAINED_DEFAULTS) if pretrained else {}
        if "segmenter" in spec:  # images of a class without lesions are not oversampled unless asked
            base.update(monitor=SEGMENTER_MONITORS[0], balanced_sampler=False)
        return cls.from_dict({**base, **dict(spec.get("train") or {}), **dict(config or {})})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> "TrainConfig":
        """Read a YAML or JSON file holding a mapping of settings (optionally under ``train:``)."""
        return cls.from_dict(cls.read(path))

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> dict[str, Any]:
        """The settings a YAML/JSON file gives (only those; optionally under ``train:``), validated."""
        from medcam.spec import load_spec

        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"training config '{p}' does not exist")
        data = load_spec(p)
        if set(data) == {"train"}:
            data = data["train"]
        cls.from_dict(data)
        return dict(data)

    def differences(self, other: "TrainConfig", ignore: tuple[str, ...] = RESUME_SAFE_KEYS) -> list[str]:
        """Keys whose values differ from ``other`` (except ``ignore``), as ``"key: a -> b"``."""
        mine, theirs = self.to_dict(), other.to_dict()
        return [f"{k}: {theirs[k]!r} -> {mine[k]!r}" for k in mine if k not in ignore and mine[k] != theirs.get(k)]


@functools.cache
def _field_hints() -> dict[str, Any]:
    """``{field: annotation}`` of :class:`TrainConfig` (evaluated once)."""
    return typing.get_type_hints(TrainConfig, include_extras=True)
