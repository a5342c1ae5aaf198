"""medcam.metrics.classification against scikit-learn on random and tied inputs."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from medcam.errors import ShapeError
from medcam.metrics.classification import (
    accuracy,
    balanced_accuracy,
    classification_metrics,
    confusion_matrix,
    multilabel_confusion_matrix,
    precision_recall_f1,
    roc_auc,
)


def _multiclass(n: int, k: int, seed: int, ties: bool = False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[labels]
    if ties:
        logits = np.round(logits, 0)  # many exact ties
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    return probs, labels


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_multiclass_metrics_match_sklearn(k, ties):
    probs, labels = _multiclass(200, k, seed=k + 10 * ties, ties=ties)
    preds = probs.argmax(1)
    cm = confusion_matrix(labels, preds, k)
    np.testing.assert_array_equal(cm.numpy(), skm.confusion_matrix(labels, preds, labels=list(range(k))))
    assert accuracy(labels, preds) == pytest.approx(skm.accuracy_score(labels, preds))
    assert balanced_accuracy(labels, preds, k) == pytest.approx(skm.balanced_accuracy_score(labels, preds))
    p, r, f, s = precision_recall_f1(labels, preds, k)
    sp, sr, sf, ss = skm.precision_recall_fscore_support(labels, preds, labels=list(range(k)), zero_division=0)
    np.testing.assert_allclose(p.numpy(), sp)
    np.testing.assert_allclose(r.numpy(), sr)
    np.testing.assert_allclose(f.numpy(), sf)
    np.testing.assert_array_equal(s.numpy(), ss)
    auc = roc_auc(probs, labels)
    for c in range(k):
        assert auc[c].item() == pytest.approx(skm.roc_auc_score(labels == c, probs[:, c]), abs=1e-12)
    report = classification_metrics(torch.tensor(probs), torch.tensor(labels), class_names=[f"c{i}" for i in range(k)])
    expected_macro = (skm.roc_auc_score(labels, probs[:, 1]) if k == 2
                      else skm.roc_auc_score(labels, probs, multi_class="ovr", average="macro"))
    assert report["auc"] == pytest.approx(expected_macro, abs=1e-12)
    assert report["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, preds))
    assert report["macro_f1"] == pytest.approx(skm.f1_score(labels, preds, average="macro", zero_division=0))
    assert report["per_class"]["c0"]["recall"] == pytest.approx(sr[0])
    assert report["confusion_matrix"] == cm.tolist()
    assert report["n"] == 200


def test_absent_class_in_truth_and_predictions():
    # class 2 never occurs and is never predicted: zero support, precision/recall 0, AUC undefined
    labels = np.array([0, 0, 1, 1, 1, 0])
    probs = np.array([[0.8, 0.1, 0.1], [0.4, 0.5, 0.1], [0.2, 0.7, 0.1],
                      [0.3, 0.6, 0.1], [0.6, 0.3, 0.1], [0.9, 0.05, 0.05]])
    report = classification_metrics(probs, labels, class_names=["a", "b", "c"])
    preds = probs.argmax(1)
    assert report["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(labels, preds))
    assert report["per_class"]["c"]["support"] == 0
    assert report["per_class"]["c"]["auc"] is None
    assert report["auc"] == pytest.approx(np.mean([skm.roc_auc_score(labels == c, probs[:, c]) for c in (0, 1)]))


def test_multilabel_metrics_match_sklearn():
    rng = np.random.default_rng(3)
    targets = (rng.random((150, 4)) < [0.5, 0.2, 0.1, 0.35]).astype(int)
    probs = 1 / (1 + np.exp(-(rng.normal(size=(150, 4)) + 2 * targets - 1)))
    preds = (probs >= 0.5).astype(int)
    np.testing.assert_array_equal(multilabel_confusion_matrix(targets, preds).numpy(),
                                  skm.multilabel_confusion_matrix(targets, preds))
    report = classification_metrics(probs, targets, multilabel=True)
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(targets, preds))
    assert report["auc"] == pytest.approx(skm.roc_auc_score(targets, probs, average="macro"))
    per_label_bacc = [skm.balanced_accuracy_score(targets[:, i], preds[:, i]) for i in range(4)]
    assert report["balanced_accuracy"] == pytest.approx(np.mean(per_label_bacc))
    _, sr, sf, _ = skm.precision_recall_fscore_support(targets, preds, zero_division=0)
    assert [report["per_class"][str(i)]["recall"] for i in range(4)] == pytest.approx(list(sr))
    assert report["macro_f1"] == pytest.approx(float(np.mean(sf)))
    assert np.array(report["confusion_matrix"]).shape == (4, 2, 2)


def test_auc_ties_and_degenerate_columns():
    scores = torch.tensor([0.5, 0.5, 0.5, 0.5])
    assert roc_auc(scores, torch.tensor([0, 1, 0, 1])).item() == pytest.approx(0.5)
    assert roc_auc(torch.tensor([0.1, 0.9]), torch.tensor([0, 1])).item() == pytest.approx(1.0)
    assert math.isnan(roc_auc(torch.tensor([0.1, 0.9]), torch.tensor([1, 1])).item())


def test_bad_inputs_raise_shape_errors():
    with pytest.raises(ShapeError, match=r"\[0, 3\)"):
        confusion_matrix([0, 3], [0, 1], 3)
    with pytest.raises(ShapeError, match="same length"):
        confusion_matrix([0, 1, 2], [0, 1], 3)
    with pytest.raises(ShapeError, match=r"\(N, K\)"):
        classification_metrics(np.zeros(5), np.zeros(5))
    with pytest.raises(ShapeError, match="empty"):
        classification_metrics(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ShapeError, match="multi-label targets"):
        classification_metrics(np.zeros((4, 3)), np.zeros(4), multilabel=True)
    with pytest.raises(ShapeError, match="integer class indices"):
        classification_metrics(np.full((2, 2), 0.5), np.array([0.5, 1.0]))
