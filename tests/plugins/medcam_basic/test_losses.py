"""CrossEntropy: against torch's functional losses, weights, smoothing, multi-label."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import medcam
from medcam.errors import SpecError
from medcam.model import ModelOutput
from medcam_basic.losses import CrossEntropy


def test_plain_weighted_and_smoothed():
    logits, labels = torch.randn(5, 3), torch.tensor([0, 1, 2, 2, 1])
    out, batch = ModelOutput(logits=logits), {"label": labels}
    assert torch.allclose(CrossEntropy(3, False)(out, batch), F.cross_entropy(logits, labels))
    w = [1.0, 2.0, 0.5]
    assert torch.allclose(CrossEntropy(3, False, class_weights=w)(out, batch),
                          F.cross_entropy(logits, labels, weight=torch.tensor(w)))
    assert torch.allclose(CrossEntropy(3, False, label_smoothing=0.2)(out, batch),
                          F.cross_entropy(logits, labels, label_smoothing=0.2))


def test_balanced_weights_from_counts():
    loss = CrossEntropy(3, False, class_weights="balanced")
    with pytest.raises(RuntimeError, match="set_class_counts"):
        loss(ModelOutput(logits=torch.randn(2, 3)), {"label": torch.tensor([0, 1])})
    loss.set_class_counts([10, 30, 60])
    assert torch.allclose(loss.weight, torch.tensor([100 / 30, 100 / 90, 100 / 180]))


def test_multilabel_bce():
    logits = torch.randn(4, 5)
    target = (torch.rand(4, 5) > 0.5).float()
    out = CrossEntropy(5, True)(ModelOutput(logits=logits), {"label": target})
    assert torch.allclose(out, F.binary_cross_entropy_with_logits(logits, target))
    balanced = CrossEntropy(5, True, class_weights="balanced")
    balanced.set_class_counts([1, 2, 3, 4, 5])
    assert torch.allclose(balanced.weight, torch.tensor([14.0, 13 / 2, 12 / 3, 11 / 4, 10 / 5]))
    with pytest.raises(ValueError, match=r"multi-label targets must be \(B, K\)"):
        CrossEntropy(5, True)(ModelOutput(logits=logits), {"label": torch.zeros(4)})


def test_bad_parameters():
    with pytest.raises(SpecError, match="2 weights for 3 classes"):
        CrossEntropy(3, False, class_weights=[1, 2])
    with pytest.raises(SpecError, match="'balanced', 'batch' or null"):
        CrossEntropy(3, False, class_weights="even")
    with pytest.raises(SpecError, match=r"loss\[0\]\.label_smoothing: expected a number in \[0, 1\), got 1\.0"):
        medcam.build_loss({"name": "ce", "label_smoothing": 1.0}, num_classes=3)
