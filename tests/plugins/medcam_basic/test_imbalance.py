"""Per-batch class weights, focal loss and W-CEL against formulas written out by hand."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import medcam
from medcam.errors import SpecError
from medcam.model import ModelOutput
from medcam.spec import resolve_model_spec
from medcam_basic.imbalance import FocalLoss, WeightedBCE, batch_class_weights
from medcam_basic.losses import CrossEntropy


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_batch_class_weights_single_label():
    w = batch_class_weights(torch.tensor([0, 0, 0, 1]), 3, multilabel=False)
    assert torch.allclose(w, torch.tensor([4 / (2 * 3), 4 / (2 * 1), 0.0]))


def test_ce_with_batch_weights_is_the_weighted_mean_of_per_image_losses():
    logits, labels = torch.randn(6, 3), torch.tensor([0, 0, 0, 0, 1, 2])
    loss = CrossEntropy(3, False, class_weights="batch")(ModelOutput(logits=logits), {"label": labels})
    per_image = F.cross_entropy(logits, labels, reduction="none")
    w = {0: 6 / (3 * 4), 1: 6 / (3 * 1), 2: 6 / (3 * 1)}
    weights = torch.tensor([w[int(y)] for y in labels])
    assert torch.allclose(loss, (weights * per_image).sum() / weights.sum())
    # every class present counts equally: the class means are averaged
    class_means = torch.stack([per_image[labels == k].mean() for k in range(3)])
    assert torch.allclose(loss, class_means.mean())


def test_ce_with_batch_weights_multilabel_is_bce_with_pos_weight_neg_over_pos():
    logits = torch.tensor([[0.3, -1.2, 2.0], [0.5, 0.1, -0.7]])
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])  # 2 positives, 4 negatives: pos_weight 2
    loss = CrossEntropy(3, True, class_weights="batch")(ModelOutput(logits=logits), {"label": target})
    by_hand = 0.0
    for z, y in zip(logits.flatten().tolist(), target.flatten().tolist()):
        by_hand += -(2.0 * y * math.log(_sigmoid(z)) + (1 - y) * math.log(1 - _sigmoid(z)))
    assert loss.item() == pytest.approx(by_hand / 6, rel=1e-5)
    ones = torch.ones(2, 3)  # no negatives: unweighted
    assert torch.allclose(batch_class_weights(ones, 3, True), torch.ones(3))


def test_focal_softmax_against_the_formula():
    logits, labels = torch.tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]]), torch.tensor([0, 2])
    out, batch = ModelOutput(logits=logits), {"label": labels}
    probs = torch.softmax(logits, 1)
    alpha = [0.2, 0.3, 0.5]
    by_hand = [-(alpha[y]) * (1 - probs[i, y].item()) ** 2 * math.log(probs[i, y].item())
               for i, y in enumerate(labels.tolist())]
    assert FocalLoss(3, False, gamma=2.0, alpha=alpha)(out, batch).item() == pytest.approx(sum(by_hand) / 2, rel=1e-5)
    assert torch.allclose(FocalLoss(3, False, gamma=0.0)(out, batch), F.cross_entropy(logits, labels))
    # focusing: a confident correct image costs far less than under cross-entropy
    easy = ModelOutput(logits=torch.tensor([[6.0, 0.0, 0.0]]))
    ratio = FocalLoss(3, False)(easy, {"label": torch.tensor([0])}) / F.cross_entropy(easy.logits, torch.tensor([0]))
    assert ratio.item() < 1e-4
    two = FocalLoss(2, False, alpha=0.25)
    assert torch.allclose(two.alpha, torch.tensor([0.75, 0.25]))


def test_focal_multilabel_against_the_formula():
    logits = torch.tensor([[1.5, -0.5], [-2.0, 0.3]])
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    loss = FocalLoss(2, True, gamma=2.0, alpha=0.25)(ModelOutput(logits=logits), {"label": target})
    by_hand = 0.0
    for z, y in zip(logits.flatten().tolist(), target.flatten().tolist()):
        p = _sigmoid(z)
        p_t, a_t = (p, 0.25) if y else (1 - p, 0.75)
        by_hand += -a_t * (1 - p_t) ** 2 * math.log(p_t)
    assert loss.item() == pytest.approx(by_hand / 4, rel=1e-5)


def test_weighted_bce_is_w_cel_counted_in_the_batch():
    logits = torch.tensor([[0.4, -0.3, 1.1], [-1.5, 0.9, 0.2]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # |P| = 2, |N| = 4
    loss = WeightedBCE(3, True)(ModelOutput(logits=logits), {"label": target})
    beta_p, beta_n = 6 / 2, 6 / 4
    terms = [-(beta_p * y * math.log(_sigmoid(z)) + beta_n * (1 - y) * math.log(1 - _sigmoid(z)))
             for z, y in zip(logits.detach().flatten().tolist(), target.flatten().tolist())]
    assert loss.item() == pytest.approx(sum(terms) / 6, rel=1e-5)
    total = WeightedBCE(3, True, reduction="sum")(ModelOutput(logits=logits), {"label": target})
    assert total.item() == pytest.approx(sum(terms), rel=1e-5)
    loss.backward()
    assert torch.isfinite(logits.grad).all()


def test_weighted_bce_per_class_fixed_and_degenerate_batches():
    target = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    bp, bn = WeightedBCE(2, True, per_class=True).betas(target)
    assert torch.allclose(bp, torch.tensor([3 / 2, 3 / 1])) and torch.allclose(bn, torch.tensor([3 / 1, 3 / 2]))
    bp, bn = WeightedBCE(2, True).betas(torch.ones(2, 2))
    assert bp.item() == 1.0 and bn.item() == 1.0  # no negatives: unweighted, as the seed did
    bp, bn = WeightedBCE(2, True, beta=[4.0, 0.5]).betas(target)
    assert (bp.item(), bn.item()) == (4.0, 0.5)


@pytest.mark.parametrize("build, message", [
    (lambda: WeightedBCE(3, False), "weighted_bce is a multi-label loss"),
    (lambda: WeightedBCE(3, True, beta=[1.0]), r"beta: expected null .* \[beta_P, beta_N\]"),
    (lambda: medcam.build_loss({"name": "weighted_bce", "reduction": "avg"}, num_classes=3, multilabel=True),
     r"loss\[0\]\.reduction: expected one of mean, sum, got 'avg'"),
    (lambda: medcam.build_loss({"name": "focal", "gamma": -1}, num_classes=3),
     r"loss\[0\]\.gamma: expected a number >= 0, got -1"),
    (lambda: FocalLoss(3, False, alpha=0.25), "a single number weighs the positive class of a 2-class model"),
    (lambda: FocalLoss(3, True, alpha=[0.5, 0.5]), "alpha: 2 weights for 3 classes"),
    (lambda: CrossEntropy(3, False, class_weights="per_batch"), "'balanced', 'batch' or null"),
])
def test_parameter_errors(build, message):
    with pytest.raises(SpecError, match=message):
        build()


def test_losses_and_their_parameters_are_in_the_spec():
    spec = resolve_model_spec({"name": "tiny_classifier", "multilabel": True,
                               "loss": [{"name": "weighted_bce", "per_class": True}, {"name": "focal", "weight": 0.5}]})
    assert spec["loss"] == [
        {"name": "weighted_bce", "weight": 1.0, "beta": None, "per_class": True, "reduction": "mean"},
        {"name": "focal", "weight": 0.5, "gamma": 2.0, "alpha": None}]
