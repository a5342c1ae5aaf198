"""Average drop, increase in confidence, confidence change (medcam.faithfulness.confidence):
a NumPy evaluation of the Grad-CAM++ paper's definitions and pytorch-grad-cam's metrics on the same
model, maps and targets (identity normalization: image space = the model's input space)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam


def _scores(model, images: torch.Tensor, targets: list[int], softmax: bool) -> np.ndarray:
    with torch.no_grad():
        logits = model(images).logits.double().numpy()
    if softmax:
        logits = np.exp(logits - logits.max(1, keepdims=True))
        logits = logits / logits.sum(1, keepdims=True)
    return logits[np.arange(len(targets)), targets]


def test_values_equal_the_papers_definitions(model, batch):
    images, maps, targets = batch
    maps = maps.clone()
    maps[1] = maps[1] * 0.05                       # a dim map: the masked image loses confidence
    y = _scores(model, images, targets, softmax=True)
    o = _scores(model, images * maps[:, None], targets, softmax=True)
    drop = medcam.build_metric("average_drop")(model, images, maps, target=targets).double().numpy()
    np.testing.assert_allclose(drop, 100 * np.maximum(0, y - o) / y, rtol=1e-5, atol=1e-6)
    increase = medcam.build_metric("increase_in_confidence")(model, images, maps, target=targets).numpy()
    np.testing.assert_array_equal(increase, 100.0 * (o > y))
    change = medcam.build_metric("confidence_change")(model, images, maps, target=targets).double().numpy()
    np.testing.assert_allclose(change, o - y, rtol=1e-5, atol=1e-6)
    assert (drop > 0).any() and ((increase == 100) | (drop > 0)).all()


def test_hand_computed_average_drop():
    """Y = 0.8, O = 0.6: drop 100 * 0.2 / 0.8 = 25%; Y = 0.5, O = 0.7: drop 0, increase 100%."""
    from medcam.faithfulness.confidence import AverageDrop, IncreaseInConfidence

    before, after = torch.tensor([0.8, 0.5]), torch.tensor([0.6, 0.7])
    torch.testing.assert_close(AverageDrop().value(before, after), torch.tensor([25.0, 0.0]))
    torch.testing.assert_close(IncreaseInConfidence().value(before, after), torch.tensor([0.0, 100.0]))


@pytest.mark.parametrize("softmax", [False, True])
def test_equal_to_pytorch_grad_cam(softmax, model, batch):
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.cam_mult_image import (CamMultImageConfidenceChange, DropInConfidence,
                                                         IncreaseInConfidence)
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget, ClassifierOutputTarget

    from faithfulness_probes import LogitsView

    images, maps, targets = batch
    view = LogitsView(model).eval()
    kind = ClassifierOutputSoftmaxTarget if softmax else ClassifierOutputTarget
    cam_targets = [kind(t) for t in targets]
    cams = maps.numpy()
    score = "softmax" if softmax else "logit"
    change = CamMultImageConfidenceChange()(images, cams, cam_targets, view)
    ours = medcam.build_metric({"name": "confidence_change", "score": score}).run(model, images, maps,
                                                                                  target=targets)
    np.testing.assert_allclose(ours.scores.numpy(), change, rtol=1e-5, atol=1e-6)
    increase = IncreaseInConfidence()(images, cams, cam_targets, view)
    got = medcam.build_metric({"name": "increase_in_confidence", "score": score})(model, images, maps,
                                                                                  target=targets)
    np.testing.assert_array_equal(got.numpy(), 100.0 * increase)
    if softmax:  # grad-cam's drop is absolute (Y - O)+, the paper's is relative: 100 (Y - O)+ / Y
        drop = DropInConfidence()(images, cams, cam_targets, view)
        got = medcam.build_metric("average_drop").run(model, images, maps, target=targets)
        np.testing.assert_allclose(got.scores.numpy(), 100 * drop / got.values["score"].numpy(), rtol=1e-4,
                                   atol=1e-5)


def test_errors(model, batch):
    images, maps, targets = batch
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        medcam.build_metric("average_drop")(model, images, maps * 3, target=targets)
    with pytest.raises(ValueError, match="positive confidence"):
        medcam.build_metric({"name": "average_drop", "score": "logit"})
    with pytest.raises(medcam.errors.ShapeError, match="3 maps but there are 2 images"):
        medcam.build_metric("confidence_change")(model, images[:2], maps, target=targets[:2])
