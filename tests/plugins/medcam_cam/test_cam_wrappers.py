"""Finer-CAM, Refine-CAM and SESS (medcam_cam.wrappers): their formulas in NumPy and pytorch-grad-cam's
implementations on the same model, layers and targets (normalized maps: the two resize differently,
torch bilinear vs cv2 INTER_LINEAR, hence 1e-3 to 1e-2 absolute tolerances)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from cam_probes import LogitsView, build_probe, tiny_cnn_model
from medcam_cam.wrappers import finer_scores, window_starts


def test_finer_score_by_hand():
    """z = (3, 2.5, 0, 2.9), target 0: the closest classes are 3 (0.1 away), 1 (0.5), 2 (3);
    score = sum_j p_j (z_0 - z_j) / sum_j p_j over j = 3, 1 (ranks 1, 2)."""
    z = torch.tensor([[3.0, 2.5, 0.0, 2.9]])
    p = torch.softmax(z, 1)[0]
    expected = (p[3] * (3 - 2.9) + p[1] * (3 - 2.5)) / (p[3] + p[1])
    got = finer_scores(z, torch.tensor([[0]]), alpha=1.0, ranks=(1, 2))
    torch.testing.assert_close(got[0, 0], expected, rtol=1e-6, atol=1e-7)
    half = finer_scores(z, torch.tensor([[0]]), alpha=0.5, ranks=(1,))
    torch.testing.assert_close(half[0, 0], torch.tensor(3 - 0.5 * 2.9))
    assert finer_scores(z, torch.tensor([[0]]), ranks=(5,))[0, 0] == 3.0     # no class at rank 5: the logit


def test_finercam_is_gradcam_of_the_finer_score():
    """On the probe (dy_c/dA = V_c, so d score / dA is a known combination of the V's)."""
    torch.manual_seed(5)
    model = build_probe(channels=3, classes=4, size=4, scale=2.0, shift=1.0)
    images = torch.rand(2, 3, 4, 4)
    got = medcam.explain(model, images, "finercam", target=[0, 3], raw=True)
    V = model.head.weight.detach().double()
    with torch.no_grad():
        logits = model(images).logits.double()
    acts = (2 * images - 1).double()
    for i, c in enumerate([0, 3]):
        z = logits[i].clone().requires_grad_(True)
        score = finer_scores(z[None], torch.tensor([[c]]))[0, 0]
        (dz,) = torch.autograd.grad(score, z)                # d score / d z_j
        grads = torch.einsum("j,jchw->chw", dz, V)            # d score / dA
        expected = torch.relu(torch.einsum("c,chw->hw", grads.mean(dim=(1, 2)), acts[i]))
        torch.testing.assert_close(got[i].double(), expected, rtol=1e-5, atol=1e-6)


def test_window_starts_shift_the_last_window_inside():
    assert window_starts(10, 4, 4) == [0, 4, 6]
    assert window_starts(8, 4, 4) == [0, 4]
    assert window_starts(3, 4, 4) == [0]


@pytest.fixture
def net():
    torch.manual_seed(6)
    model = tiny_cnn_model(width=4, preprocess={"size": [64, 64], "mean": [0.0] * 3, "std": [1.0] * 3})
    return model, torch.rand(2, 3, 64, 64)


@pytest.mark.slow
def test_finercam_equals_pytorch_grad_cam(net):
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    model, images = net
    module = model.backbone.stages[2]
    with grad_cam.FinerCAM(LogitsView(model), [module]) as cam:
        theirs = cam(images)                                  # main class: the prediction; ranks 1, 2
    ours = medcam.explain(model, images, "finercam", layer="backbone.stages.2").numpy()
    np.testing.assert_allclose(ours, theirs, atol=2e-3)


@pytest.mark.slow
def test_refinecam_equals_pytorch_grad_cam(net):
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, images = net
    layers = ["backbone.stages.1", "backbone.stages.2", "backbone.stages.3"]
    modules = [dict(model.named_modules())[n] for n in layers]
    with torch.no_grad():     # large gradients: grad-cam's 1e-6 in the Grad-CAM++ denominator vanishes
        model.head.fc.weight.mul_(100.0)
    theirs = grad_cam.RefineCAM(LogitsView(model), modules)(images, [ClassifierOutputTarget(c) for c in (1, 2)])
    ours = medcam.explain(model, images, "refinecam", target=[1, 2], layers=layers).numpy()
    # the product of three resized maps is renormalized by its (small) maximum, which magnifies the
    # 1e-3 interpolation differences of each factor
    np.testing.assert_allclose(ours, theirs, atol=2e-2)
    assert np.abs(ours - theirs).mean() < 5e-3


@pytest.mark.slow
def test_sess_equals_pytorch_grad_cam(net):
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model, images = net
    module = model.backbone.stages[2]
    sess = grad_cam.SESS(LogitsView(model), [module], num_scales=3, window_size=48, step_size=24, smooth=False)
    theirs = sess(images, [ClassifierOutputTarget(c) for c in (0, 1)])
    ours = medcam.explain(model, images, "sess", target=[0, 1], num_scales=3, window=48, step=24, smooth=False,
                          progress=False, base={"name": "gradcam", "layer": "backbone.stages.2"}).numpy()
    np.testing.assert_allclose(ours, theirs, atol=2e-2)
    assert np.abs(ours - theirs).mean() < 2e-3


def test_wrapper_errors():
    with pytest.raises(medcam.errors.SpecError, match="not a gradient CAM method"):
        medcam.build_attribution({"name": "finercam", "base": "scorecam"})
    with pytest.raises(medcam.errors.SpecError, match="pool"):
        medcam.build_attribution({"name": "sess", "pool": "median"})
    with pytest.raises(medcam.errors.SpecError, match="sess.base"):
        medcam.build_attribution({"name": "sess", "base": "gradcamm"})
