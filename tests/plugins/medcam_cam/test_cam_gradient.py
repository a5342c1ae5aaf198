"""Gradient methods (medcam_cam.gradient) against their published formulas.

The probe model has activations ``A = 2x - 1`` and logits ``y_c = <V_c, A> + b_c``,
so ``dy_c/dA = V_c`` is known without autograd: the references below are the
papers' equations evaluated in float64 NumPy.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import medcam
from cam_probes import build_probe, tiny_cnn_model

GRADIENT_METHODS = ["gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "gradcamelementwise", "eigengradcam",
                    "segeigencam", "shapleycam"]


def _first_component(terms: np.ndarray, sign: str) -> np.ndarray:
    """Centred PCA of ``(C, h, w)`` terms: projection on the first right singular vector, sign fixed."""
    c, h, w = terms.shape
    matrix = terms.reshape(c, h * w).T
    matrix = matrix - matrix.mean(axis=0, keepdims=True)
    projection = matrix @ np.linalg.svd(matrix, full_matrices=False)[2][0]
    if sign == "extreme":
        flip = abs(projection.min()) > abs(projection.max())
    else:
        reference = terms.sum(axis=0).ravel()
        flip = projection @ (reference - reference.mean()) < 0
    return (-projection if flip else projection).reshape(h, w)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


def reference(method: str, acts: np.ndarray, grads: np.ndarray, score: float) -> np.ndarray:
    """One map from one image's activations ``(C, h, w)`` and gradients ``(C, h, w)``."""
    if method == "gradcam":                                    # Selvaraju 2017, eqs. 1-2
        weights = grads.mean(axis=(1, 2))
        return _relu(np.tensordot(weights, acts, axes=1))
    if method == "gradcam++":                                  # Chattopadhay 2018, eqs. 9, 19
        g2, g3 = grads ** 2, grads ** 3
        denominator = 2 * g2 + acts.sum(axis=(1, 2))[:, None, None] * g3
        alpha = np.divide(g2, denominator, out=np.zeros_like(g2), where=denominator != 0)
        weights = (alpha * _relu(math.exp(score) * grads)).sum(axis=(1, 2))
        return _relu(np.tensordot(weights, acts, axes=1))
    if method == "xgradcam":                                   # Fu 2020, eq. 12
        total = acts.sum(axis=(1, 2))
        numerator = (acts * grads).sum(axis=(1, 2))
        weights = np.divide(numerator, total, out=np.zeros_like(total), where=total != 0)
        return _relu(np.tensordot(weights, acts, axes=1))
    if method == "layercam":                                   # Jiang 2021, eqs. 5-6
        return _relu((_relu(grads) * acts).sum(axis=0))
    if method == "hirescam":                                   # Draelos & Carin 2020
        return (grads * acts).sum(axis=0)
    if method == "gradcamelementwise":                         # pytorch-grad-cam
        return _relu(_relu(grads * acts).sum(axis=0))
    if method == "eigengradcam":                               # PCA of g * A
        return _first_component(grads * acts, "reference")
    if method == "segeigencam":                                # Chung & Ying 2025, eqs. 10-13
        return _first_component(np.abs(grads) * acts, "extreme")
    if method == "shapleycam":                                 # linear head: the Hessian is 0, so Grad-CAM
        return _relu(np.tensordot(grads.mean(axis=(1, 2)), acts, axes=1))
    raise KeyError(method)


@pytest.fixture
def probe():
    torch.manual_seed(3)
    model = build_probe(channels=3, classes=3, size=4, scale=2.0, shift=1.0)
    images = torch.rand(4, 3, 4, 4)
    return model, images


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_raw_maps_equal_the_published_formula(method, probe):
    model, images = probe
    targets = [0, 2, 1, 2]
    got = medcam.explain(model, images, method, target=targets, raw=True)
    acts = (2 * images - 1).double().numpy()
    V = model.head.weight.detach().double().numpy()
    b = model.head.bias.detach().double().numpy()
    assert got.shape == (4, 4, 4)
    for i, c in enumerate(targets):
        score = float((V[c] * acts[i]).sum() + b[c])
        expected = reference(method, acts[i], V[c], score)
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got[i].double().numpy(), expected, rtol=1e-5, atol=1e-5 * scale)


def test_hand_computed_two_by_two_case():
    """Two channels, 2x2 maps, numbers worked out by hand (see each comment)."""
    model = build_probe(channels=2, classes=2, size=2)
    with torch.no_grad():
        model.head.weight.zero_()
        model.head.weight[0, 0] = torch.tensor([[1.0, 1.0], [1.0, 1.0]])
        model.head.weight[0, 1] = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
        model.head.bias.zero_()
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 1.0]]]])   # A = x
    # y_0 = (1 + 1) + 2 * 1 = 4
    # Grad-CAM: alpha = mean(g) = (1, 1) -> A0 + A1
    expected = {"gradcam": [[1.0, 1.0], [1.0, 2.0]],
                # HiResCAM: g0*A0 + g1*A1 = [[1,0],[0,1]] + [[0,0],[0,2]]
                "hirescam": [[1.0, 0.0], [0.0, 3.0]],
                # LayerCAM: g >= 0, so the same as HiResCAM
                "layercam": [[1.0, 0.0], [0.0, 3.0]],
                # XGrad-CAM: alpha0 = (1+1)/2 = 1, alpha1 = 2/3 -> A0 + 2/3 A1
                "xgradcam": [[1.0, 2 / 3], [2 / 3, 5 / 3]],
                # Grad-CAM++: ch0 alpha = 1/(2+2*1) = 1/4 on 4 cells -> w0 = e^4; ch1 alpha = 4/(8+3*8) = 1/8 on
                # the two cells with g = 2 (0 elsewhere) -> w1 = 2 * 1/8 * 2 e^4 = e^4 / 2 -> e^4 (A0 + A1 / 2)
                "gradcam++": (math.exp(4) * np.array([[1.0, 0.5], [0.5, 1.5]])).tolist()}
    for method, value in expected.items():
        got = medcam.explain(model, x, method, target=0, raw=True)[0]
        torch.testing.assert_close(got, torch.tensor(value), rtol=1e-5, atol=1e-5, msg=method)


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_several_targets_stack_single_target_maps(method, probe):
    model, images = probe
    both = medcam.explain(model, images, method, target=[[0, 1]] * 4, raw=True)
    assert both.shape == (4, 2, 4, 4)
    for t in (0, 1):
        torch.testing.assert_close(both[:, t], medcam.explain(model, images, method, target=t, raw=True))
    every = medcam.explain(model, images, method, target="all")
    assert every.shape == (4, 3, 4, 4)
    assert float(every.amin()) == 0.0 and float(every.amax()) == 1.0


def test_hirescam_is_cam_over_area_for_a_pooling_head():
    """The HiResCAM paper's theorem: with GAP + linear, HiResCAM = CAM / (h w)."""
    model = tiny_cnn_model()
    images = torch.rand(2, 3, 64, 64)
    hires = medcam.explain(model, images, "hirescam", target=[1, 2], raw=True)
    cam = medcam.explain(model, images, "cam", target=[1, 2], raw=True)
    h, w = cam.shape[-2:]
    torch.testing.assert_close(hires, cam / (h * w), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method", GRADIENT_METHODS)
def test_differentiable_maps_reach_backbone_weights(method):
    model = tiny_cnn_model()
    images = torch.rand(2, 3, 64, 64)
    maps = medcam.explain(model, images, method, target=[0, 1], differentiable=True)
    assert maps.requires_grad and maps.shape == (2, 64, 64)
    model.zero_grad(set_to_none=True)
    (maps * torch.linspace(0, 1, 64)).sum().backward()
    stem = model.backbone.stem[0].weight.grad
    assert stem is not None and torch.isfinite(stem).all() and stem.abs().sum() > 0


def test_default_path_hook_path_and_graph_path_agree():
    """Level 3 read three ways: the no-graph fast path, a hook on the module that
    produces it, and the differentiable path (full graph)."""
    model = tiny_cnn_model()
    images = torch.rand(3, 3, 64, 64)
    fast = medcam.explain(model, images, "gradcam++", target=[0, 1, 2], raw=True)
    hooked = medcam.explain(model, images, "gradcam++", target=[0, 1, 2], raw=True, layer="backbone.stages.3.1")
    graph = medcam.explain(model, images, "gradcam++", target=[0, 1, 2], raw=True, differentiable=True)
    torch.testing.assert_close(hooked, fast)
    torch.testing.assert_close(graph.detach(), fast)


def test_gradcampp_clamps_huge_logits_instead_of_overflowing(probe):
    model, images = probe
    with torch.no_grad():
        model.head.bias.fill_(500.0)
    maps = medcam.explain(model, images, "gradcam++", raw=True)
    assert torch.isfinite(maps).all()


def test_shapleycam_uses_the_hessian_vector_product():
    """Quadratic head: g = V + Q * A and H A = Q * A, so w = mean(g - HA / 2) = mean(V + Q * A / 2)
    (Cai et al. 2025, eq. 11); with the ReST score, d/dA of log softmax adds -sum_j p_j g_j."""
    torch.manual_seed(8)
    model = build_probe(channels=3, classes=3, size=4, scale=2.0, shift=1.0, head="quadratic")
    images = torch.rand(2, 3, 4, 4)
    got = medcam.explain(model, images, "shapleycam", target=[1, 2], raw=True)
    V = model.head.weight.detach().double().numpy()
    Q = model.head.quad.detach().double().numpy()
    acts = (2 * images - 1).double().numpy()
    for i, c in enumerate([1, 2]):
        weights = (V[c] + 0.5 * Q[c] * acts[i]).mean(axis=(1, 2))
        expected = _relu(np.tensordot(weights, acts[i], axes=1))
        np.testing.assert_allclose(got[i].double().numpy(), expected, rtol=1e-5, atol=1e-6)
    gradcam = medcam.explain(model, images, "gradcam", target=[1, 2], raw=True)
    assert not torch.allclose(got, gradcam, atol=1e-3)   # the Hessian term matters here


def test_rest_score_is_the_logit_plus_its_log_probability():
    from medcam_cam.gradient import rest_scores

    logits = torch.tensor([[1.0, 2.0, 0.5]])
    targets = torch.tensor([[1, 0]])
    log_p = torch.log_softmax(logits, 1)[0]
    expected = torch.tensor([[2.0 + log_p[1], 1.0 + log_p[0]]])
    torch.testing.assert_close(rest_scores(logits, targets), expected)
    # the ReST map differs from the logit map on a quadratic head
    torch.manual_seed(9)
    model = build_probe(channels=3, classes=3, size=4, head="quadratic")
    images = torch.rand(2, 3, 4, 4)
    rest = medcam.explain(model, images, "shapleycam", target=[0, 1], raw=True, score="rest")
    logit = medcam.explain(model, images, "shapleycam", target=[0, 1], raw=True)
    assert rest.shape == logit.shape and not torch.allclose(rest, logit)
