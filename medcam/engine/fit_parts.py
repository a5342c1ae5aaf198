"""What :class:`medcam.engine.Trainer` reports to and returns: the :class:`Callback` hooks, the
:class:`EarlyStopping` state and the :class:`FitResult` of a run."""
from __future__ import annotations

import math
from abc import ABC
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Mapping

from .logs import RunFiles

if TYPE_CHECKING:
    from .trainer import Trainer

__all__ = ["Callback", "EarlyStopping", "FitResult"]


class Callback(ABC):  # noqa: B024 - every hook is optional; the defaults do nothing
    """Hooks into :meth:`Trainer.fit`; subclass and override the ones you need (all run on every process)."""

    def on_epoch_start(self, trainer: "Trainer", epoch: int) -> None:
        """Before epoch ``epoch`` (0-based)."""

    def on_step_end(self, trainer: "Trainer", epoch: int, step: int, logs: Mapping[str, float]) -> None:
        """After optimizer step ``step`` (0-based within the epoch); ``logs`` holds the loss terms."""

    def on_epoch_end(self, trainer: "Trainer", epoch: int, record: Mapping[str, Any]) -> None:
        """After the epoch's checkpoint and log record were written."""


class EarlyStopping:
    """Tracks the best value of the monitored metric; ``should_stop`` after ``patience`` epochs without gain."""

    def __init__(self, mode: str, patience: int | None):
        self.mode, self.patience = mode, patience
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.bad_epochs = 0

    def update(self, value: float | None, epoch: int) -> bool:
        """Record epoch ``epoch`` (1-based); True when it is the new best."""
        if value is None or math.isnan(value):
            self.bad_epochs += 1
            return False
        if self.best is None or (value > self.best if self.mode == "max" else value < self.best):
            self.best, self.best_epoch, self.bad_epochs = float(value), epoch, 0
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience is not None and self.bad_epochs >= self.patience

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.best, self.best_epoch, self.bad_epochs = state["best"], state["best_epoch"], int(state["bad_epochs"])


@dataclass
class FitResult:
    """What :meth:`Trainer.fit` returns.

    Attributes:
        history: one record per finished epoch (as in ``metrics.jsonl``).
        best_epoch: 1-based epoch with the best monitored validation metric (None without validation).
        best_metrics: validation metrics of that epoch.
        last_metrics: validation metrics of the last epoch.
        stopped_early: early stopping ended the run.
        files: the run's output files (None without ``out_dir``).
    """

    history: list[dict[str, Any]]
    best_epoch: int | None = None
    best_metrics: dict[str, Any] | None = None
    last_metrics: dict[str, Any] | None = None
    stopped_early: bool = False
    files: RunFiles | None = None
    extra: dict[str, Any] = field(default_factory=dict)
