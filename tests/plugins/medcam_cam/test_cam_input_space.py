"""Input-resolution methods (medcam_cam.input_space): the papers' formulas in NumPy on the probe model
(logits linear in the image: ``dy_c/dx = scale * V_c``), completeness of Integrated Gradients on a
real conv net, and parity with Captum (a dev dependency) on the same model and targets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from cam_probes import LogitsView, build_probe, tiny_cnn_model
from medcam_cam.input_space import RULES, integration_rule


@pytest.fixture
def probe():
    torch.manual_seed(4)
    model = build_probe(channels=3, classes=3, size=6, scale=2.0, shift=1.0)
    images = torch.rand(3, 3, 6, 6)
    return model, images, [0, 2, 1]


def _gradient(model, c: int) -> np.ndarray:
    return 2.0 * model.head.weight.detach().double().numpy()[c]             # (C, h, w): dA/dx = 2, dy/dA = V_c


def test_input_x_gradient_and_ig_equal_the_formula_on_a_linear_model(probe):
    model, images, targets = probe
    ixg = medcam.explain(model, images, "input_x_gradient", target=targets, raw=True)
    ig = medcam.explain(model, images, "integrated_gradients", target=targets, raw=True, steps=7, progress=False)
    for i, c in enumerate(targets):
        x = images[i].double().numpy()
        expected = (x * _gradient(model, c)).sum(axis=0)    # IG of a linear model from x' = 0: (x - 0) * grad
        np.testing.assert_allclose(ixg[i].double().numpy(), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(ig[i].double().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_occlusion_equals_the_mean_drop_of_the_patches_covering_each_pixel(probe):
    model, images, targets = probe
    got = medcam.explain(model, images, "occlusion", target=targets, raw=True, window=3, stride=2, progress=False)
    for i, c in enumerate(targets):
        contribution = (images[i].double().numpy() * _gradient(model, c)).sum(axis=0)   # y(x) - y(x, pixel -> 0)
        total, count = np.zeros((6, 6)), np.zeros((6, 6))
        for y0 in (0, 2):                    # corners 0, 2 (a patch at 4 would leave the 6-px image)
            for x0 in (0, 2):
                drop = contribution[y0:y0 + 3, x0:x0 + 3].sum()
                total[y0:y0 + 3, x0:x0 + 3] += drop
                count[y0:y0 + 3, x0:x0 + 3] += 1
        expected = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
        np.testing.assert_allclose(got[i].double().numpy(), expected, rtol=1e-5, atol=1e-6)
    assert float(got[:, 5, :].abs().max()) == 0.0           # row 5 is covered by no patch


@pytest.mark.parametrize("rule", RULES)
def test_integration_rules_integrate_polynomials(rule):
    alphas, weights = integration_rule(rule, 8)
    assert weights.sum() == pytest.approx(1.0)
    assert (alphas >= 0).all() and (alphas <= 1).all()
    exact = {"gausslegendre": 1e-12, "riemann_middle": 1e-2, "riemann_trapezoid": 1e-2}.get(rule, 0.1)
    assert float((weights * alphas ** 2).sum()) == pytest.approx(1 / 3, abs=exact)


@pytest.mark.slow
def test_integrated_gradients_completeness_on_a_conv_net():
    """Sundararajan et al., proposition 1: the attributions sum to y(x) - y(x')."""
    torch.manual_seed(5)
    model = tiny_cnn_model(width=4, preprocess={"size": [32, 32]})
    images = torch.rand(2, 3, 32, 32)
    result = medcam.explain(model, images, "integrated_gradients", target=[0, 1], raw=True, details=True,
                            steps=64, progress=False)
    with torch.no_grad():
        drop = result.logits.gather(1, result.targets)[:, 0] - model(torch.zeros_like(images)).logits[:, :2].diagonal()
    torch.testing.assert_close(result.maps.sum(dim=(1, 2)), drop, rtol=2e-2, atol=1e-4)


@pytest.mark.slow
def test_batches_and_several_targets_agree_with_single_calls():
    torch.manual_seed(6)
    model = tiny_cnn_model(width=4, preprocess={"size": [32, 32]})
    images = torch.rand(3, 3, 32, 32)
    for name, params in (("integrated_gradients", {"steps": 5, "batch_size": 4, "progress": False}),
                         ("occlusion", {"window": 8, "stride": 8, "batch_size": 5, "progress": False})):
        every = medcam.explain(model, images, name, target="all", raw=True, **params)
        for i in range(3):
            one = medcam.explain(model, images[i:i + 1], name, target=[[2, 0, 1][i]], raw=True, **params)
            torch.testing.assert_close(every[i, [2, 0, 1][i]], one[0], rtol=1e-4, atol=1e-6)


def test_errors_and_no_from_output(probe):
    model, images, _ = probe
    with pytest.raises(medcam.errors.SpecError, match="rule"):
        medcam.build_attribution({"name": "integrated_gradients", "rule": "simpson"})
    with pytest.raises(medcam.errors.SpecError, match="baseline"):
        medcam.build_attribution({"name": "occlusion", "baseline": "white"})
    with pytest.raises(ValueError, match="reads no layer"):
        medcam.explain(model, images, "input_x_gradient", layer=0)
    output = model(images, return_features=True)
    with pytest.raises(ValueError, match="re-runs the model"):
        medcam.build_attribution("input_x_gradient").from_output(output, size=(6, 6))


@pytest.fixture
def conv_net():
    torch.manual_seed(7)
    model = tiny_cnn_model(width=4, preprocess={"size": [32, 32]})
    return model, torch.rand(3, 3, 32, 32), [0, 2, 1]


@pytest.mark.slow
@pytest.mark.parametrize("rule,captum_rule", [("gausslegendre", "gausslegendre"), ("riemann_right", "riemann_right"),
                                              ("riemann_trapezoid", "riemann_trapezoid")])
def test_integrated_gradients_equals_captum(rule, captum_rule, conv_net):
    captum = pytest.importorskip("captum.attr")
    model, images, targets = conv_net
    theirs = captum.IntegratedGradients(LogitsView(model)).attribute(images, baselines=0.0, target=targets, n_steps=20,
                                                                  method=captum_rule, internal_batch_size=7)
    ours = medcam.explain(model, images, "integrated_gradients", target=targets, raw=True, steps=20, rule=rule,
                          batch_size=7, progress=False)
    reference = theirs.sum(dim=1).detach()
    if rule == "riemann_trapezoid":
        # Captum's trapezoid weights are 1/n (halved at the ends), summing to (n - 1)/n; the composite
        # trapezoid rule (medcam) uses 1/(n - 1), summing to 1: Captum = (n - 1)/n x medcam
        ours = ours * 19 / 20
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5 * float(reference.abs().max()))


@pytest.mark.slow
def test_input_x_gradient_and_occlusion_equal_captum(conv_net):
    captum = pytest.importorskip("captum.attr")
    model, images, targets = conv_net
    theirs = captum.InputXGradient(LogitsView(model)).attribute(images.clone().requires_grad_(True), target=targets)
    ours = medcam.explain(model, images, "input_x_gradient", target=targets, raw=True)
    reference = theirs.sum(dim=1).detach()
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5 * float(reference.abs().max()))
    theirs = captum.Occlusion(LogitsView(model)).attribute(images, sliding_window_shapes=(3, 8, 8), strides=(3, 4, 4),
                                                        baselines=0.0, target=targets)
    ours = medcam.explain(model, images, "occlusion", target=targets, raw=True, window=8, stride=4, progress=False)
    reference = theirs[:, 0].detach()                      # every channel holds the same value
    torch.testing.assert_close(theirs[:, 1], theirs[:, 0])
    torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5 * float(reference.abs().max()))


def test_sobel_edges_by_hand_and_against_pytorch_grad_cam():
    """A vertical step edge: |S_x * G| = 4 x step on the two columns next to it, |S_y * G| = 0 (cv2 reflect
    borders), so L = 2 x step there; pytorch-grad-cam's sobel_cam (uint8) agrees to its final rounding
    (grey images, so that cv2's uint8 grey conversion is exact)."""
    image = torch.zeros(1, 3, 6, 6)
    image[:, :, :, 3:] = 0.1
    model = build_probe(channels=3, classes=2, size=6)
    got = medcam.explain(model, image, "sobelcam", raw=True)[0]
    expected = torch.zeros(6, 6)
    expected[:, 2:4] = 2 * 0.1
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.sobel_cam import sobel_cam

    torch.manual_seed(10)
    levels = torch.randint(0, 40, (1, 1, 6, 6)).float().expand(1, 3, 6, 6)   # low contrast: no uint8 saturation
    ours = medcam.explain(model, levels / 255, "sobelcam", raw=True)[0] * 255
    theirs = sobel_cam(levels[0].permute(1, 2, 0).numpy().astype(np.uint8))
    np.testing.assert_allclose(ours.numpy(), theirs, atol=0.51)


@pytest.mark.parametrize("method", ["integrated_gradients", "input_x_gradient", "fullgrad", "guidedbackprop"])
def test_differentiable_input_maps_reach_the_weights(method):
    torch.manual_seed(11)
    model = tiny_cnn_model(width=4, preprocess={"size": [32, 32]})
    images = torch.rand(2, 3, 32, 32)
    params = {"steps": 4, "progress": False} if method == "integrated_gradients" else {}
    maps = medcam.explain(model, images, method, target=[0, 1], differentiable=True, **params)
    assert maps.requires_grad
    model.zero_grad(set_to_none=True)
    (maps * torch.linspace(0, 1, 32)).sum().backward()
    grad = model.backbone.stem[0].weight.grad
    assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
