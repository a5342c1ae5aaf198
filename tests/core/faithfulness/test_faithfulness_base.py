"""The metric protocol (medcam.faithfulness.base): input checks, targets, resizing, modes, scorer."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.errors import ShapeError
from medcam.faithfulness.base import SCORES, Scorer, score_function


def test_predicted_class_is_the_default_target(model, batch):
    images, maps, _ = batch
    predicted = model(images).logits.argmax(1).tolist()
    metric = medcam.build_metric({"name": "confidence_change", "score": "logit"})
    torch.testing.assert_close(metric(model, images, maps), metric(model, images, maps, target=predicted))


def test_low_resolution_maps_are_resized_bilinearly(model, batch):
    images, _, targets = batch
    small = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    metric = medcam.build_metric({"name": "confidence_change", "score": "logit"})
    big = torch.nn.functional.interpolate(small[:, None], size=(32, 32), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(metric(model, images, small, target=targets), metric(model, images, big,
                                                                                     target=targets))


def test_modes_are_restored_and_results_are_on_the_cpu(model, batch):
    images, maps, targets = batch
    model.train()
    result = medcam.build_metric("deletion").run(model, images, maps, target=targets)
    assert model.training and all(m.training for m in model.modules())
    assert result.scores.device.type == "cpu" and result.scores.shape == (3,)


def test_input_errors(model, batch):
    images, maps, targets = batch
    metric = medcam.build_metric("confidence_change")
    with pytest.raises(ShapeError, match="one target per image"):
        metric(model, images, maps, target=[[0, 1]] * 3)
    with pytest.raises(ShapeError, match="2 entries but the batch has 3"):
        metric(model, images, maps, target=[0, 1])
    with pytest.raises(ShapeError, match=r"\(B, H, W\)"):
        metric(model, images, maps[0], target=targets)
    with pytest.raises(ValueError, match="NaN"):
        metric(model, images, maps * float("nan"), target=targets)
    with pytest.raises(ShapeError, match="channels"):
        metric(model, images[:, :1], maps, target=targets)


def test_scorer_chunks_equal_one_pass(model, batch):
    images, _, targets = batch
    t = torch.tensor(targets)
    with torch.no_grad():
        expected = torch.softmax(model(images).logits, 1).gather(1, t[:, None])[:, 0]
    torch.testing.assert_close(Scorer(model, SCORES["softmax"], batch_size=2)(images, t), expected)


def test_scorer_takes_the_metrics_own_perturbed_images_outside_the_unit_range(model, batch):
    """ROAD's noisy imputation may step a little outside [0, 1]: scored, not refused; the check stays on after."""
    images, _, targets = batch
    t = torch.tensor(targets)
    noisy = images + 0.02 * torch.randn(images.shape, generator=torch.Generator().manual_seed(0))
    assert float(noisy.min()) < -0.01 or float(noisy.max()) > 1.01
    with torch.no_grad():
        model.input_range = None
        expected = torch.softmax(model(noisy).logits, 1).gather(1, t[:, None])[:, 0]
        del model.input_range
    torch.testing.assert_close(Scorer(model, SCORES["softmax"])(noisy, t), expected)
    with pytest.raises(Exception, match="outside"):
        model(noisy)


def test_auto_score_is_sigmoid_for_multilabel_models():
    multi = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2, "multilabel": True})
    single = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2})
    logits = torch.tensor([[0.0, 2.0]])
    torch.testing.assert_close(score_function("auto", multi)(logits), torch.sigmoid(logits))
    torch.testing.assert_close(score_function("auto", single)(logits), torch.softmax(logits, 1))
