"""medcam's raw maps against pytorch-grad-cam (PyPI ``grad-cam``, a test-only dependency).

Same model, same layer module, same targets. pytorch-grad-cam's raw map is
``cam.get_cam_image(...)`` on the activations and gradients its hooks stored
(before its ReLU, min-max scaling and cv2 resize); medcam's is
``explain(..., raw=True)`` (feature resolution, before resizing).

Tolerance: ``rtol=1e-4`` and ``atol=1e-5 * max|reference|`` (float32 round-off).

Where the paper and pytorch-grad-cam disagree, medcam follows the paper and the
test checks the documented relation instead of equality (docs/attribution.md):

* XGrad-CAM: grad-cam adds ``1e-7`` to each channel sum; the test model's sums are
  large enough for that to vanish.
* Grad-CAM++: the paper's weights carry ``exp(y^c)`` (``Y = exp(S)``, eq. 19) and
  no ``1e-6`` in the alpha denominator: medcam = ``exp(y^c)`` x grad-cam on a model
  whose gradients are large enough for that epsilon to vanish.
* HiResCAM / Eigen-CAM / CAM: grad-cam applies a ReLU to every map; medcam keeps
  signed maps where the formula has no ReLU (compared before grad-cam's ReLU).
* Eigen-CAM: grad-cam centres the activations (PCA) and leaves the SVD sign
  arbitrary; medcam's ``center=True`` equals it up to that sign.
* Score-CAM: grad-cam weights channels by a softmax over channels of the target
  logits, the paper by the class softmax of each masked input; the channel
  logits themselves (the masked forward passes) are compared.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402

import medcam  # noqa: E402
from cam_probes import LogitsView, build_probe, tiny_cnn_model  # noqa: E402
from medcam_cam.perturbation import SCORES, masked_input_scores  # noqa: E402

LAYERS = ["backbone.stages.3", "backbone.stages.2.0"]  # a backbone level (no hook in medcam) and a hooked module


def grad_cam_raw(class_name: str, model: medcam.MedcamModel, layer: str, images: torch.Tensor,
                 targets: list[int], **attributes: Any) -> tuple[torch.Tensor, np.ndarray]:
    """(raw map before grad-cam's ReLU (B, h, w), grad-cam's final output (B, H, W))."""
    module = dict(model.named_modules())[layer]
    cam_targets = [ClassifierOutputTarget(c) for c in targets]
    with getattr(pytorch_grad_cam, class_name)(model=LogitsView(model), target_layers=[module]) as cam:
        for key, value in attributes.items():
            setattr(cam, key, value)
        final = cam(input_tensor=images, targets=cam_targets)
        store = cam.activations_and_grads
        acts = store.activations[0].numpy()
        grads = store.gradients[0].numpy() if store.gradients else None
        raw = cam.get_cam_image(images, module, cam_targets, acts, grads, False)
    return torch.from_numpy(np.asarray(raw, dtype=np.float32)), final


def assert_maps_close(got: torch.Tensor, reference: torch.Tensor) -> None:
    scale = float(reference.abs().max())
    assert scale > 0, "degenerate reference map"
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-5 * scale)


@pytest.fixture
def model_and_images():
    """tiny_cnn (conv-BN-ReLU stages, GAP + linear head) at 128 px; the BN before each compared
    layer is scaled by 50 so every non-zero channel sum is far above XGrad-CAM's 1e-7 in grad-cam."""
    torch.manual_seed(11)
    model = tiny_cnn_model(width=4, preprocess={"size": [128, 128]})
    with torch.no_grad():
        model.backbone.stages[3][1][1].weight.mul_(50.0)
        model.backbone.stages[2][0][1].weight.mul_(50.0)
    return model, torch.rand(3, 3, 128, 128), [0, 2, 1]


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("method,class_name,relu", [("gradcam", "GradCAM", True), ("xgradcam", "XGradCAM", True),
                                                    ("layercam", "LayerCAM", True), ("hirescam", "HiResCAM", False)])
def test_equal_raw_maps(method, class_name, relu, layer, model_and_images):
    model, images, targets = model_and_images
    reference, _ = grad_cam_raw(class_name, model, layer, images, targets)
    if relu:
        reference = reference.clamp_min(0)
    got = medcam.explain(model, images, method, target=targets, layer=layer, raw=True)
    assert_maps_close(got, reference)


def test_normalized_gradcam_output_matches_grad_cams_resized_map(model_and_images):
    """After resizing: torch bilinear vs cv2 INTER_LINEAR (both half-pixel centred); 1e-3 absolute."""
    model, images, targets = model_and_images
    _, final = grad_cam_raw("GradCAM", model, "backbone.stages.2.0", images, targets)
    got = medcam.explain(model, images, "gradcam", target=targets, layer="backbone.stages.2.0")
    torch.testing.assert_close(got, torch.from_numpy(final), rtol=0, atol=1e-3)


@pytest.mark.parametrize("layer", LAYERS)
def test_gradcampp_is_exp_score_times_grad_cams(layer, model_and_images):
    model, images, targets = model_and_images
    with torch.no_grad():  # large gradients, so grad-cam's 1e-6 in the alpha denominator is negligible
        model.head.fc.weight.mul_(200.0)
        model.head.fc.bias.zero_()
    reference, _ = grad_cam_raw("GradCAMPlusPlus", model, layer, images, targets)
    result = medcam.explain(model, images, "gradcam++", target=targets, layer=layer, raw=True, details=True)
    scores = result.logits.gather(1, result.targets)[:, 0]
    factor = torch.exp(scores.clamp(max=80.0))[:, None, None]
    assert_maps_close(result.maps / factor, reference.clamp_min(0))
    # min-max normalized, the two agree exactly: exp(y) is a positive per-map scale
    assert math.isfinite(float(factor.max()))


def test_eigencam_centered_equals_grad_cam_up_to_sign(model_and_images):
    model, images, targets = model_and_images
    reference, _ = grad_cam_raw("EigenCAM", model, "backbone.stages.2.0", images, targets)
    got = medcam.explain(model, images, "eigencam", layer="backbone.stages.2.0", raw=True, center=True)
    for i in range(len(images)):
        sign = 1.0 if float((got[i] * reference[i]).sum()) >= 0 else -1.0
        assert_maps_close(sign * got[i], reference[i])


@pytest.mark.parametrize("layer", LAYERS)
def test_ablationcam_equal_raw_maps(layer, model_and_images):
    """Post-ReLU activations (min 0): grad-cam ablates to 0 as the paper does."""
    model, images, targets = model_and_images
    reference, _ = grad_cam_raw("AblationCAM", model, layer, images[:2], targets[:2], batch_size=16)
    got = medcam.explain(model, images[:2], "ablationcam", target=targets[:2], layer=layer, raw=True, progress=False)
    assert_maps_close(got, reference.clamp_min(0))


def test_scorecam_masked_logits_match_grad_cams_channel_softmax():
    """Stride-1 probe layer, so both upsamplings (align_corners False / True) are the identity."""
    torch.manual_seed(12)
    model = build_probe(channels=4, classes=3, size=6, scale=2.0, shift=0.5)
    images = torch.rand(2, 4, 6, 6)
    targets = [2, 0]
    module = dict(model.named_modules())["backbone.pool"]
    cam_targets = [ClassifierOutputTarget(c) for c in targets]
    with pytorch_grad_cam.ScoreCAM(model=LogitsView(model), target_layers=[module]) as cam:
        cam(input_tensor=images, targets=cam_targets)
        acts = cam.activations_and_grads.activations[0].numpy()
        weights = cam.get_cam_weights(images, module, cam_targets, acts, None)
    activations = model.forward_features(images)[0]
    with torch.no_grad():
        logits = masked_input_scores(lambda x: model(x).logits, images, activations, torch.tensor(targets)[:, None],
                                     SCORES["logit"], progress=False)
    torch.testing.assert_close(torch.softmax(logits[:, 0], dim=-1), torch.from_numpy(np.asarray(weights)).float(),
                               rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("method,class_name,relu", [("gradcamelementwise", "GradCAMElementWise", True),
                                                    ("fem", "FEM", False), ("segeigencam", "SegEigenCAM", False)])
def test_equal_raw_maps_of_the_1_5_7_methods(method, class_name, relu, model_and_images):
    model, images, targets = model_and_images
    layer = "backbone.stages.2.0"
    reference, _ = grad_cam_raw(class_name, model, layer, images, targets)
    if relu:
        reference = reference.clamp_min(0)
    got = medcam.explain(model, images, method, target=targets, layer=layer, raw=True)
    assert_maps_close(got, reference)


@pytest.mark.parametrize("method,class_name", [("eigengradcam", "EigenGradCAM"), ("kpcacam", "KPCA_CAM")])
def test_principal_component_methods_equal_up_to_sign(method, class_name, model_and_images):
    """pytorch-grad-cam leaves the sign of the component arbitrary; medcam fixes it."""
    model, images, targets = model_and_images
    layer = "backbone.stages.2.0"
    reference, _ = grad_cam_raw(class_name, model, layer, images, targets)
    got = medcam.explain(model, images, method, target=targets, layer=layer, raw=True)
    for i in range(len(images)):
        sign = 1.0 if float((got[i] * reference[i]).sum()) >= 0 else -1.0
        if method == "kpcacam":   # scikit-learn's kernel PCA runs in float32 on grad-cam's float32 activations
            torch.testing.assert_close(sign * got[i], reference[i], rtol=0,
                                       atol=1e-4 * float(reference[i].abs().max()))
        else:
            assert_maps_close(sign * got[i], reference[i])


def test_shapleycam_with_rest_equals_grad_cam(model_and_images):
    """With the ReST target (``z_c - CE``) the Hessian-vector product is not zero (a ReLU network is
    piecewise linear, so with the logit target Shapley-CAM is Grad-CAM). grad-cam's product consumes its
    graph, so the normalized, resized outputs are compared (torch bilinear vs cv2 INTER_LINEAR: 1e-3)."""
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputReST

    model, images, targets = model_and_images
    layer = "backbone.stages.2.0"
    module = dict(model.named_modules())[layer]
    with pytorch_grad_cam.ShapleyCAM(model=LogitsView(model), target_layers=[module]) as cam:
        final = cam(input_tensor=images, targets=[ClassifierOutputReST(c) for c in targets])
    got = medcam.explain(model, images, "shapleycam", target=targets, layer=layer, score="rest")
    torch.testing.assert_close(got, torch.from_numpy(final), rtol=0, atol=1e-3)
    logit = medcam.explain(model, images, "shapleycam", target=targets, layer=layer, raw=True)
    gradcam = medcam.explain(model, images, "gradcam", target=targets, layer=layer, raw=True)
    torch.testing.assert_close(logit, gradcam)                                   # piecewise linear: H = 0
    assert float(got.max()) == 1.0
