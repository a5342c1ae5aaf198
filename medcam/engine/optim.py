"""Optimizers and learning-rate schedules by name.

The schedule is a pure function of the optimizer step (plus, for ``plateau``,
a few numbers of state), so it is exactly resumable from a checkpoint.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from medcam.errors import SpecError
from medcam.registry import did_you_mean

from .config import OPTIMIZERS, SCHEDULERS, TrainConfig

__all__ = ["build_optimizer", "LRSchedule", "parameter_groups"]

#: Warm-up starts at this fraction of the peak learning rate.
WARMUP_START = 0.01


def parameter_groups(model: nn.Module, weight_decay: float, lr: float | None = None,
                     backbone_lr_scale: float = 1.0) -> list[dict[str, Any]]:
    """Parameter groups: weights with ``weight_decay``; biases and 1-D (normalization) parameters without.

    Decaying the scale and shift of normalization layers only hurts (as in timm's
    and most reference training scripts), so they go to the groups without decay.
    With ``backbone_lr_scale != 1`` the parameters of ``model.backbone`` get their own
    groups at ``lr * backbone_lr_scale`` (after the others, so the first group keeps
    the peak ``lr``): a pretrained backbone fine-tuned gently under a new head.

    Raises:
        SpecError: ``backbone_lr_scale != 1`` for a model without a ``backbone``.
    """
    backbone = getattr(model, "backbone", None) if backbone_lr_scale != 1.0 else None
    if backbone_lr_scale != 1.0 and not isinstance(backbone, nn.Module):
        raise SpecError(f"train.backbone_lr_scale: {type(model).__name__} has no backbone to scale "
                        f"(set it to 1)")
    in_backbone = {id(p) for p in backbone.parameters()} if backbone is not None else set()
    buckets: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for _, param in model.named_parameters():
        if not param.requires_grad:
            continue
        buckets.setdefault((id(param) in in_backbone, param.ndim > 1), []).append(param)
    groups = []
    for is_backbone in (False, True):
        for decays in (True, False):
            params = buckets.get((is_backbone, decays))
            if not params:
                continue
            group: dict[str, Any] = {"params": params, "weight_decay": weight_decay if decays else 0.0}
            if lr is not None:
                group["lr"] = lr * (backbone_lr_scale if is_backbone else 1.0)
            groups.append(group)
    return groups


def build_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer named by ``config.optimizer`` over ``model``'s trainable parameters."""
    name = config.optimizer.lower()
    groups = parameter_groups(model, config.weight_decay, config.lr, config.backbone_lr_scale)
    if not groups:
        raise SpecError("the model has no trainable parameters")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum, nesterov=config.momentum > 0)
    if name == "adam":
        return torch.optim.Adam(groups, lr=config.lr)
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    if name == "rmsprop":
        return torch.optim.RMSprop(groups, lr=config.lr, momentum=config.momentum)
    raise SpecError(f"train.optimizer: unknown optimizer {name!r}{did_you_mean(name, OPTIMIZERS)} "
                    f"(choices: {', '.join(OPTIMIZERS)})")


class LRSchedule:
    """Sets each parameter group's learning rate to ``base_lr * factor`` after every step.

    ``factor(step)`` for a run of ``total`` steps with ``warm`` warm-up steps:

    * warm-up (``step < warm``): linear from ``WARMUP_START`` to 1;
    * ``constant``: 1;  ``cosine``: ``r + (1 - r) (1 + cos(pi t)) / 2``;
      ``linear``: ``1 - (1 - r) t``, with ``t`` the progress after warm-up in
      [0, 1] and ``r = min_lr_ratio`` (Loshchilov & Hutter, SGDR, ICLR 2017);
    * ``step``: ``gamma ** (epoch // step_epochs)``;
    * ``plateau``: ``gamma ** n``, ``n`` the number of times the monitored metric
      went ``plateau_patience`` epochs without improving (:meth:`step_epoch`).

    Args:
        optimizer: its groups' current ``lr`` is taken as the peak learning rate.
        config: the schedule settings.
        steps_per_epoch: optimizer steps in one epoch.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, config: TrainConfig, steps_per_epoch: int):
        if config.scheduler not in SCHEDULERS:
            raise SpecError(f"train.scheduler: unknown schedule {config.scheduler!r}"
                            f"{did_you_mean(config.scheduler, SCHEDULERS)} (choices: {', '.join(SCHEDULERS)})")
        self.optimizer = optimizer
        self.config = config
        self.steps_per_epoch = max(int(steps_per_epoch), 1)
        self.total = self.steps_per_epoch * config.epochs
        self.warm = int(round(config.warmup_epochs * self.steps_per_epoch))
        self.base_lrs = [float(g.get("initial_lr", g["lr"])) for g in optimizer.param_groups]
        for group, lr in zip(optimizer.param_groups, self.base_lrs):
            group["initial_lr"] = lr
        self.step_count = 0
        self.plateau_decays = 0
        self.plateau_best: float | None = None
        self.plateau_bad = 0
        self._apply()

    def factor(self, step: int) -> float:
        """Multiplier of the peak learning rate at optimizer step ``step`` (0-based)."""
        c = self.config
        if step < self.warm:
            return WARMUP_START + (1 - WARMUP_START) * step / self.warm
        if c.scheduler == "constant":
            return 1.0
        if c.scheduler == "step":
            return c.gamma ** (step // self.steps_per_epoch // c.step_epochs)
        if c.scheduler == "plateau":
            return c.gamma ** self.plateau_decays
        t = min(max((step - self.warm) / max(self.total - self.warm, 1), 0.0), 1.0)
        r = c.min_lr_ratio
        if c.scheduler == "cosine":
            return r + (1 - r) * 0.5 * (1 + math.cos(math.pi * t))
        return 1 - (1 - r) * t  # linear

    def _apply(self) -> None:
        f = self.factor(self.step_count)
        for group, lr in zip(self.optimizer.param_groups, self.base_lrs):
            group["lr"] = lr * f

    @property
    def lr(self) -> float:
        """Current learning rate of the first parameter group."""
        return float(self.optimizer.param_groups[0]["lr"])

    @property
    def last_lr(self) -> float:
        """Learning rate of the first parameter group at the last step taken (the first step's before any)."""
        return self.base_lrs[0] * self.factor(max(self.step_count - 1, 0))

    def step(self) -> None:
        """Advance one optimizer step."""
        self.step_count += 1
        self._apply()

    def step_epoch(self, metric: float | None, mode: str) -> None:
        """End of an epoch: the ``plateau`` schedule reads the monitored ``metric`` (``mode`` max|min)."""
        if self.config.scheduler != "plateau" or metric is None or math.isnan(metric):
            return
        best = self.plateau_best
        better = best is None or (metric > best if mode == "max" else metric < best)
        if better:
            self.plateau_best, self.plateau_bad = metric, 0
        else:
            self.plateau_bad += 1
            if self.plateau_bad > self.config.plateau_patience:
                self.plateau_decays += 1
                self.plateau_bad = 0
        self._apply()

    def state_dict(self) -> dict[str, Any]:
        return {"step_count": self.step_count, "plateau_decays": self.plateau_decays,
                "plateau_best": self.plateau_best, "plateau_bad": self.plateau_bad, "base_lrs": list(self.base_lrs)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.step_count = int(state["step_count"])
        self.plateau_decays = int(state["plateau_decays"])
        self.plateau_best = state["plateau_best"]
        self.plateau_bad = int(state["plateau_bad"])
        self.base_lrs = [float(v) for v in state["base_lrs"]]
        self._apply()
