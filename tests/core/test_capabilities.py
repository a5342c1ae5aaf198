"""medcam.capabilities: the optional contracts of parts, checked as protocols."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from medcam.capabilities import (CamWeightsHead, ClassCountLoss, ClassMapHead, FeatureLoss, ModelCheck,
                                 RescorableBackbone, missing_members, needs_features, require)
from medcam.errors import CapabilityError, SpecError


class _Linear(nn.Module):
    level = 0

    def cam_weights(self):
        return torch.zeros(2, 3)


class _Tail(nn.Module):
    def forward_from(self, x, level):
        return [x]


def test_protocols_are_checked_by_members():
    assert isinstance(_Linear(), CamWeightsHead) and not isinstance(_Linear(), ClassMapHead)
    assert not isinstance(_Tail(), RescorableBackbone)  # forward_from without forward_from_exact
    tail = _Tail()
    tail.forward_from_exact = False
    assert isinstance(tail, RescorableBackbone)
    assert missing_members(_Tail(), RescorableBackbone) == ["forward_from_exact"]
    assert missing_members(nn.Identity(), ClassMapHead) == ["level", "class_maps()"]


def test_require_names_the_missing_method_and_the_protocol():
    head = _Linear()
    assert require(head, CamWeightsHead, "head", "cam") is head
    with pytest.raises(CapabilityError, match=r"^the re-score needs a backbone with forward_from_exact and "
                                              r"forward_from\(\) \(RescorableBackbone\); the backbone Identity "
                                              r"has no forward_from_exact, forward_from\(\)$"):
        require(nn.Identity(), RescorableBackbone, "backbone", "the re-score")
    assert issubclass(CapabilityError, SpecError)


def test_loss_capabilities():
    class Reader(nn.Module):
        needs_features = True

    class Counter(nn.Module):
        def set_class_counts(self, counts):
            self.counts = counts

    assert needs_features(Reader()) and not needs_features(Counter())
    assert isinstance(Counter(), ClassCountLoss) and not isinstance(Reader(), ClassCountLoss)
    assert isinstance(Reader(), FeatureLoss)


def test_attributions_are_model_checks():
    from medcam.attribution import Attribution

    class Plain(Attribution):
        def compute(self, ctx):
            return ctx.require_activations()[:, :1]

    assert isinstance(Plain(), ModelCheck)
    assert Plain().check_model(nn.Identity()) is None  # the default accepts every model
