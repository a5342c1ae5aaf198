"""Deletion / insertion (medcam.faithfulness.deletion) against a NumPy evaluation of RISE's definition,
and the deletion curve against Quantus's PixelFlipping (a dev dependency)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.ndimage
import torch

import medcam
from medcam.faithfulness.deletion import trapezoid_auc


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _blur(image: np.ndarray, sigma: float, size: int) -> np.ndarray:
    x = np.arange(size) - (size - 1) / 2
    weights = np.exp(-x ** 2 / (2 * sigma ** 2))
    weights /= weights.sum()
    out = scipy.ndimage.correlate1d(image, weights, axis=-1, mode="nearest")
    return scipy.ndimage.correlate1d(out, weights, axis=-2, mode="nearest")


def reference_curve(model, image: np.ndarray, saliency: np.ndarray, target: int, steps: int,
                    inserting: bool) -> tuple[np.ndarray, np.ndarray]:
    """RISE, one image: change ceil(HW / steps) pixels per step, most relevant first; softmax of the target."""
    c, h, w = image.shape
    n = h * w
    per_step = math.ceil(n / steps)
    counts = sorted({min(k, n) for k in range(0, n + per_step, per_step)})
    order = np.argsort(-saliency.ravel(), kind="stable")
    other = _blur(image, 5.0, 11) if inserting else np.zeros_like(image)
    curve = []
    for k in counts:
        changed = np.zeros(n, dtype=bool)
        changed[order[:k]] = True
        changed = changed.reshape(h, w)
        perturbed = np.where(changed, image, other) if inserting else np.where(changed, other, image)
        with torch.no_grad():
            logits = model(torch.from_numpy(perturbed[None]).float()).logits.double().numpy()
        curve.append(_softmax(logits)[0, target])
    fractions = np.asarray(counts, dtype=np.float64) / n
    return np.asarray(curve), fractions


@pytest.mark.parametrize("name", ["deletion", "insertion"])
def test_curves_and_auc_equal_the_numpy_evaluation(name, model, batch):
    images, maps, targets = batch
    metric = medcam.build_metric({"name": name, "steps": 7, "batch_size": 5})   # 1024 px: 147 per step, 8 points
    result = metric.run(model, images, maps, target=targets)
    assert result.curves.shape == (3, 8) and result.steps[0] == 0.0 and result.steps[-1] == 1.0
    for i, t in enumerate(targets):
        curve, fractions = reference_curve(model, images[i].double().numpy(), maps[i].numpy(), t, 7,
                                           name == "insertion")
        np.testing.assert_allclose(result.curves[i].numpy(), curve, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(float(result.values["auc"][i]), np.trapezoid(curve, fractions), rtol=1e-4)
    assert metric.higher_is_better == (name == "insertion")


def test_curve_ends_are_the_image_and_the_substrate(model, batch):
    """Deletion starts at the image and ends black; insertion starts blurred and ends at the image."""
    images, maps, targets = batch
    result = medcam.build_metric({"name": "deletion", "steps": 4, "score": "logit"}).run(model, images, maps,
                                                                                         target=targets)
    with torch.no_grad():
        full = model(images).logits.gather(1, torch.tensor(targets)[:, None])[:, 0]
        black = model(torch.zeros_like(images)).logits.gather(1, torch.tensor(targets)[:, None])[:, 0]
    torch.testing.assert_close(result.curves[:, 0], full, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(result.curves[:, -1], black, rtol=1e-5, atol=1e-5)
    # insertion runs the other way: from the blurred image (nothing inserted) to the image itself
    inserted = medcam.build_metric({"name": "insertion", "steps": 4, "score": "logit"}).run(model, images, maps,
                                                                                           target=targets)
    blurred = torch.from_numpy(np.stack([_blur(img, 5.0, 11) for img in images.double().numpy()])).float()
    with torch.no_grad():
        start = model(blurred).logits.gather(1, torch.tensor(targets)[:, None])[:, 0]
    torch.testing.assert_close(inserted.curves[:, 0], start, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(inserted.curves[:, -1], full, rtol=1e-5, atol=1e-5)


def test_trapezoid_auc_by_hand():
    # curve 1, 0.5, 0 at fractions 0, 0.5, 1: 0.5 * (1 + 0.5) / 2 + 0.5 * (0.5 + 0) / 2 = 0.5
    got = trapezoid_auc(torch.tensor([[1.0, 0.5, 0.0]]), torch.tensor([0.0, 0.5, 1.0]))
    assert float(got[0]) == pytest.approx(0.5)
    # unequal steps: 0.25 * (1 + 1) / 2 + 0.75 * (1 + 0) / 2 = 0.625
    got = trapezoid_auc(torch.tensor([[1.0, 1.0, 0.0]]), torch.tensor([0.0, 0.25, 1.0]))
    assert float(got[0]) == pytest.approx(0.625)


def test_deletion_curve_equals_quantus_pixel_flipping(batch):
    """Quantus flips features of the flattened input (here one channel: features are pixels), replaced by
    the image minimum (0 here); its curve starts after the first step (no unperturbed point) and its AUC
    is np.trapz with dx=1 over the steps."""
    quantus = pytest.importorskip("quantus")
    from faithfulness_probes import LogitsView, tiny_model

    images, maps, targets = batch
    images = images[:, :1].contiguous()
    model = tiny_model(channels=1)
    steps = 8                                    # 1024 px -> 128 px per step
    ours = medcam.build_metric({"name": "deletion", "steps": steps, "score": "softmax"}).run(
        model, images, maps, target=targets)
    metric = quantus.PixelFlipping(features_in_step=128, perturb_baseline="black", normalise=False, abs=False,
                                   disable_warnings=True, return_auc_per_sample=False)
    theirs = metric(model=LogitsView(model).eval(), x_batch=images.numpy(), y_batch=np.asarray(targets),
                    a_batch=maps[:, None].numpy(), softmax=True, device="cpu", channel_first=True)
    np.testing.assert_allclose(ours.curves[:, 1:].numpy(), np.asarray(theirs), rtol=1e-4, atol=1e-6)
    # the AUCs differ only by the x-axis: medcam integrates over the fraction removed, from 0 removed
    expected = [np.trapezoid(c, dx=1.0 / steps) for c in ours.curves.numpy()]
    np.testing.assert_allclose(ours.values["auc"].numpy(), expected, rtol=1e-5)


def test_errors(model, batch):
    images, maps, targets = batch
    with pytest.raises(ValueError, match="needs maps"):
        medcam.build_metric("deletion")(model, images, target=targets)
    with pytest.raises(ValueError, match="substrate"):
        medcam.build_metric({"name": "deletion", "substrate": "grey"})
    with pytest.raises(medcam.errors.SpecError, match="steps"):
        medcam.build_metric({"name": "insertion", "steps": 0})
    with pytest.raises(medcam.errors.SpecError, match="did you mean 'softmax'"):
        medcam.build_metric({"name": "deletion", "score": "softmx"})
