"""medcam.engine.optim: optimizers by name, parameter groups and the learning-rate schedules."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from medcam.engine.config import TrainConfig
from medcam.engine.optim import WARMUP_START, LRSchedule, build_optimizer, parameter_groups
from medcam.errors import SpecError


def _model() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))


def test_no_weight_decay_on_biases_and_norms():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    decay, no_decay = parameter_groups(model, 0.05)
    assert decay["weight_decay"] == 0.05 and [p.shape for p in decay["params"]] == [torch.Size([4, 3, 3, 3])]
    assert no_decay["weight_decay"] == 0.0 and len(no_decay["params"]) == 3  # conv bias, BN weight and bias


def test_backbone_lr_scale_gives_the_backbone_its_own_groups():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone = nn.Conv2d(3, 4, 3)
            self.head = nn.Linear(4, 2)

    model = Net()
    opt = build_optimizer(model, TrainConfig(lr=0.01, backbone_lr_scale=0.1, weight_decay=0.05))
    lrs = [(g["lr"], g["weight_decay"], len(g["params"])) for g in opt.param_groups]
    assert lrs == [(0.01, 0.05, 1), (0.01, 0.0, 1), (pytest.approx(0.001), 0.05, 1), (pytest.approx(0.001), 0.0, 1)]
    backbone_ids = {id(p) for g in opt.param_groups[2:] for p in g["params"]}
    assert backbone_ids == {id(model.backbone.weight), id(model.backbone.bias)}
    sched = LRSchedule(opt, TrainConfig(lr=0.01, backbone_lr_scale=0.1, epochs=2, warmup_epochs=1), 4)
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.01 * WARMUP_START] * 2 + [0.001 * WARMUP_START] * 2)
    with pytest.raises(SpecError, match="backbone_lr_scale: Sequential has no backbone"):
        build_optimizer(nn.Sequential(nn.Linear(2, 2)), TrainConfig(backbone_lr_scale=0.5))
    assert sched.lr == pytest.approx(0.01 * WARMUP_START)  # the reported lr is the head's


@pytest.mark.parametrize("name, cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                       ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop)])
def test_optimizers_by_name(name, cls):
    model = nn.Linear(3, 2)
    opt = build_optimizer(model, TrainConfig(optimizer=name, lr=0.01))
    assert isinstance(opt, cls) and opt.param_groups[0]["lr"] == 0.01


def _lrs(config: TrainConfig, steps_per_epoch: int) -> list[float]:
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=config.lr)
    sched = LRSchedule(opt, config, steps_per_epoch)
    out = [sched.lr]
    for _ in range(config.epochs * steps_per_epoch):
        sched.step()
        out.append(sched.lr)
    return out


def test_cosine_with_warmup_and_floor():
    lrs = _lrs(TrainConfig(lr=1.0, epochs=4, warmup_epochs=1, min_lr_ratio=0.1), steps_per_epoch=10)
    assert lrs[0] == pytest.approx(WARMUP_START)
    assert lrs[5] == pytest.approx(WARMUP_START + (1 - WARMUP_START) * 0.5)
    assert lrs[10] == pytest.approx(1.0)
    assert lrs[25] == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lrs[40] == pytest.approx(0.1)


def test_linear_step_constant():
    assert _lrs(TrainConfig(lr=2.0, epochs=2, scheduler="linear"), 5)[5] == pytest.approx(1.0)
    step = _lrs(TrainConfig(lr=1.0, epochs=4, scheduler="step", step_epochs=2, gamma=0.5), 3)
    assert step[5] == 1.0 and step[6] == 0.5 and step[11] == 0.5
    assert set(_lrs(TrainConfig(lr=0.3, epochs=2, scheduler="constant"), 4)) == {0.3}


def test_plateau_decays_after_patience_and_resumes():
    cfg = TrainConfig(lr=1.0, scheduler="plateau", plateau_patience=1, gamma=0.5)
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=cfg.lr)
    sched = LRSchedule(opt, cfg, 1)
    for value in (0.5, 0.6, 0.6, 0.6):  # best 0.6, then two epochs without improvement > patience 1
        sched.step_epoch(value, "max")
    assert sched.lr == 0.5
    clone = LRSchedule(torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=cfg.lr), cfg, 1)
    clone.load_state_dict(sched.state_dict())
    assert clone.lr == 0.5 and clone.plateau_best == 0.6


def test_schedule_state_round_trip():
    cfg = TrainConfig(lr=1.0, epochs=3, warmup_epochs=0.5)
    opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=cfg.lr)
    sched = LRSchedule(opt, cfg, 8)
    for _ in range(7):
        sched.step()
    other_opt = torch.optim.SGD(nn.Linear(2, 2).parameters(), lr=cfg.lr)
    other = LRSchedule(other_opt, cfg, 8)
    other.load_state_dict(sched.state_dict())
    assert other.lr == sched.lr and other_opt.param_groups[0]["lr"] == sched.lr
