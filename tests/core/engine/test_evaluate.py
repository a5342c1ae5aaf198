"""medcam.engine.evaluate: probabilities in data-set order, metrics against a manual computation, mode restored."""
from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

import medcam
from medcam.engine.evaluate import evaluate, predict
from medcam.errors import DataError


class Tiny(Dataset):
    def __init__(self, n: int = 10):
        g = torch.Generator().manual_seed(0)
        self.images = torch.rand(n, 3, 32, 32, generator=g)
        self.labels = torch.arange(n) % 3

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return {"image": self.images[i], "label": int(self.labels[i]), "path": f"img{i}", "index": i}


@pytest.fixture()
def model():
    return medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3,
                               "preprocess": {"size": 32}, "class_names": ["a", "b", "c"]})


def test_predict_matches_a_plain_forward_in_order(model):
    data = Tiny(10)
    model.train()
    preds = predict(model, data, batch_size=4)
    assert model.training  # mode restored
    model.eval()
    with torch.no_grad():
        logits = model(data.images).logits
    torch.testing.assert_close(preds.probs, torch.softmax(logits, 1), atol=1e-6, rtol=1e-5)
    assert torch.equal(preds.labels, data.labels)
    assert preds.loss == pytest.approx(torch.nn.functional.cross_entropy(logits, data.labels).item(), rel=1e-5)


def test_evaluate_reports_metrics_with_class_names(model):
    metrics = evaluate(model, Tiny(9), batch_size=5)
    assert metrics["n"] == 9 and set(metrics["per_class"]) == {"a", "b", "c"}
    assert 0.0 <= metrics["balanced_accuracy"] <= 1.0 and metrics["loss"] > 0
    assert sum(map(sum, metrics["confusion_matrix"])) == 9


def test_empty_data_set_is_an_error(model):
    with pytest.raises(DataError, match="empty"):
        predict(model, torch.utils.data.Subset(Tiny(3), []))
