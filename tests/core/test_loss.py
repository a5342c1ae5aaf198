"""CompositeLoss: weighted sums, named terms, class counts."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from medcam.loss import CompositeLoss


class Const(nn.Module):
    def __init__(self, value, terms: bool = False):
        super().__init__()
        self.value, self.terms, self.counts = value, terms, None

    def set_class_counts(self, counts):
        self.counts = counts

    def forward(self, output, batch, model):
        v = torch.tensor(float(self.value), requires_grad=True)
        return {"a": v, "b": 2 * v} if self.terms else v


def test_weighted_sum_and_term_logs():
    loss = CompositeLoss([("x", 2.0, Const(1.0)), ("y", 0.5, Const(3.0, terms=True)), ("x", 1.0, Const(4.0))])
    total, logs = loss(None, {}, None)
    assert total.item() == pytest.approx(2 * 1 + 0.5 * 9 + 4) and total.requires_grad
    assert logs == {"x": 1.0, "y.a": 3.0, "y.b": 6.0, "y": 9.0, "x#2": 4.0, "total": pytest.approx(10.5)}


def test_class_counts_reach_parts():
    part = Const(1.0)
    CompositeLoss([("x", 1.0, part)]).set_class_counts([3, 4])
    assert part.counts == [3, 4]


def test_non_scalar_is_rejected():
    class Vector(nn.Module):
        def forward(self, output, batch, model):
            return torch.ones(2)

    with pytest.raises(ValueError, match="expected a scalar"):
        CompositeLoss([("v", 1.0, Vector())])(None, {}, None)
    with pytest.raises(ValueError, match="at least one"):
        CompositeLoss([])


def test_needs_features_flag():
    class Reader(Const):
        needs_features = True

    assert not CompositeLoss([("x", 1.0, Const(1.0))]).needs_features
    assert CompositeLoss([("x", 1.0, Const(1.0)), ("r", 1.0, Reader(1.0))]).needs_features
