"""Smooth Grad-CAM++, SS-CAM and IS-CAM (medcam_cam.score_variants): NumPy evaluations of the formulas
on the probe model (logits linear in the activations) and torchcam 0.5 (a dev dependency) on tiny_cnn
with the same seeds (both draw their noise from torch's global generator in the same order)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from cam_probes import LogitsView, build_probe, tiny_cnn_model


def _probe():
    torch.manual_seed(12)
    model = build_probe(channels=3, classes=3, size=5, scale=2.0, shift=0.5)
    images = torch.rand(2, 3, 5, 5)
    return model, images


def _gains(model, images, c_of, coefficients):
    """(1/N) sum_i [y_c(X * a_i H^k) - y_c(X)] with H^k the min-max normalized channel (no upsampling: stride 1)."""
    V = model.head.weight.detach().double().numpy()
    b = model.head.bias.detach().double().numpy()
    out = []
    for i in range(images.shape[0]):
        x = images[i].double().numpy()
        acts = 2 * x - 0.5
        c = c_of[i]
        base = (V[c] * acts).sum() + b[c]
        gains = []
        for k in range(3):
            h = (acts[k] - acts[k].min()) / (acts[k].max() - acts[k].min())
            g = np.mean([(V[c] * (2 * x * a * h - 0.5)).sum() + b[c] - base for a in coefficients])
            gains.append(g)
        out.append(np.asarray(gains))
    return out


@pytest.mark.parametrize("coefficients,expected", [("linear", [1 / 3, 2 / 3, 1.0]), ("cumulative", [1 / 3, 1.0, 2.0])])
def test_iscam_equals_the_integrated_score_formula(coefficients, expected):
    model, images = _probe()
    targets = [2, 0]
    got = medcam.explain(model, images, "iscam", target=targets, raw=True, samples=3, coefficients=coefficients,
                         progress=False)
    acts = (2 * images - 0.5).double().numpy()
    for i, gains in enumerate(_gains(model, images, targets, expected)):
        weights = np.exp(gains - gains.max()) / np.exp(gains - gains.max()).sum()     # softmax over channels
        reference = np.maximum(np.tensordot(weights, acts[i], axes=1), 0)
        np.testing.assert_allclose(got[i].double().numpy(), reference, rtol=1e-5, atol=1e-6)


def test_sscam_without_noise_is_the_score_gain_formula_and_noise_is_seeded():
    model, images = _probe()
    targets = [1, 2]
    got = medcam.explain(model, images, "sscam", target=targets, raw=True, samples=2, std=0.0, progress=False)
    acts = (2 * images - 0.5).double().numpy()
    for i, gains in enumerate(_gains(model, images, targets, [1.0])):
        weights = np.exp(gains - gains.max()) / np.exp(gains - gains.max()).sum()
        np.testing.assert_allclose(got[i].double().numpy(), np.maximum(np.tensordot(weights, acts[i], axes=1), 0),
                                   rtol=1e-5, atol=1e-6)
    noisy = [medcam.explain(model, images, "sscam", target=targets, raw=True, samples=3, std=0.5, seed=s,
                            progress=False) for s in (1, 1, 2)]
    assert torch.equal(noisy[0], noisy[1]) and not torch.equal(noisy[0], noisy[2])


def test_smooth_gradcampp_without_noise_is_gradcampp_of_the_logit():
    """std = 0: every sample sees the image, so mean(g^n) = g^n and the weights are Grad-CAM++'s
    (Chattopadhay et al., eq. 19) with the plain logit (no exp)."""
    model, images = _probe()
    targets = [0, 1]
    got = medcam.explain(model, images, "smoothgradcam++", target=targets, raw=True, samples=3, std=0.0)
    V = model.head.weight.detach().double().numpy()
    acts = (2 * images - 0.5).double().numpy()
    for i, c in enumerate(targets):
        g = V[c]
        denominator = 2 * g ** 2 + acts[i].sum(axis=(1, 2))[:, None, None] * g ** 3
        alpha = np.divide(g ** 2, denominator, out=np.zeros_like(g), where=denominator != 0)
        weights = (alpha * np.maximum(g, 0)).sum(axis=(1, 2))
        np.testing.assert_allclose(got[i].double().numpy(), np.maximum(np.tensordot(weights, acts[i], axes=1), 0),
                                   rtol=1e-5, atol=1e-6)


@pytest.fixture
def net():
    torch.manual_seed(13)
    model = tiny_cnn_model(width=4, preprocess={"size": [64, 64], "mean": [0.0] * 3, "std": [1.0] * 3})
    return model, torch.rand(2, 3, 64, 64)


def _torchcam(kind, model, images, targets, layer="backbone.stages.2", **params):
    methods = pytest.importorskip("torchcam.methods")
    view = LogitsView(model).eval()
    model.input_range = None  # torchcam feeds the model its own noisy / scaled copies of the images
    try:
        with getattr(methods, kind)(view, target_layer=f"model.{layer}", input_shape=(3, 64, 64),
                                    **params) as extractor:
            scores = view(images)
            cams = extractor(class_idx=targets, scores=scores, normalized=False)
    finally:
        del model.input_range
    return cams[0].detach()


@pytest.mark.slow
def test_iscam_and_score_gains_equal_torchcams():
    model, images = tiny_cnn_model(width=4, preprocess={"size": [64, 64], "mean": [0.0] * 3, "std": [1.0] * 3}), None
    torch.manual_seed(14)
    images = torch.rand(2, 3, 64, 64)
    theirs = _torchcam("ISCAM", model, images, [0, 2], num_samples=3, batch_size=16)
    ours = medcam.explain(model, images, "iscam", target=[0, 2], layer="backbone.stages.2", raw=True, samples=3,
                          coefficients="cumulative", batch_size=16, progress=False)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max()))
    theirs = _torchcam("ScoreCAM", model, images, [1, 0], batch_size=16)        # SS-CAM without noise
    ours = medcam.explain(model, images, "sscam", target=[1, 0], layer="backbone.stages.2", raw=True, samples=1,
                          std=0.0, batch_size=16, progress=False)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max()))


@pytest.mark.slow
def test_sscam_and_smooth_gradcampp_equal_torchcams_with_the_same_noise(net):
    """seed=None: medcam draws from torch's global generator, in torchcam's order and shapes."""
    model, images = net
    torch.manual_seed(15)
    theirs = _torchcam("SSCAM", model, images, [2, 1], num_samples=2, std=0.5, batch_size=16)
    torch.manual_seed(15)
    ours = medcam.explain(model, images, "sscam", target=[2, 1], layer="backbone.stages.2", raw=True, samples=2,
                          std=0.5, seed=None, batch_size=16, progress=False)
    torch.testing.assert_close(ours, theirs, rtol=1e-4, atol=1e-5 * float(theirs.abs().max()))
    # torchcam's Smooth Grad-CAM++ takes the ReLU'd gradient *and the activations of the map* from its last
    # noisy forward pass (its hooks stay on), medcam the mean gradient and the image's own activations: with
    # negligible noise they agree; at the last level (GAP + linear head) the gradients are spatially constant,
    # where torchcam's alpha denominator (sum_ab A_ab g^3_ab) equals the paper's (sum_ab A_ab g^3_ij)
    theirs = _torchcam("SmoothGradCAMpp", model, images, [0, 1], layer="backbone.stages.3", num_samples=2, std=1e-12)
    ours = medcam.explain(model, images, "smoothgradcam++", target=[0, 1], layer="backbone.stages.3", raw=True,
                          samples=2, std=1e-12)
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-4 * float(theirs.abs().max()))
