"""Score-CAM and Ablation-CAM (medcam_cam.perturbation) against their published formulas."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import medcam
from medcam.errors import SpecError
from cam_probes import build_probe, tiny_cnn_model


def _probe_logits(V: np.ndarray, b: np.ndarray, images: np.ndarray) -> np.ndarray:
    """The probe model by hand: A = AvgPool2(2x - 1), y = <V, A> + b. images (N, C, 4, 4) -> (N, K)."""
    acts = 2 * images - 1
    n, c, h, w = acts.shape
    pooled = acts.reshape(n, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))
    return np.einsum("kcij,ncij->nk", V, pooled) + b


@pytest.fixture
def pooled_probe():
    torch.manual_seed(6)
    model = build_probe(channels=3, classes=3, size=4, pool=2, scale=2.0, shift=1.0)
    images = torch.rand(2, 3, 4, 4)
    return model, images


def test_scorecam_weights_are_class_softmax_of_channel_masked_inputs(pooled_probe):
    """Wang et al. 2020: H_k = minmax(Up(A_k)), alpha_k = softmax(f(X * H_k))_c, L = ReLU(sum alpha_k A_k)."""
    model, images = pooled_probe
    targets = [1, 2]
    got = medcam.explain(model, images, "scorecam", target=targets, raw=True, progress=False)
    V = model.head.weight.detach().double().numpy()
    b = model.head.bias.detach().double().numpy()
    x = images.double().numpy()
    acts = (2 * images - 1).reshape(2, 3, 2, 2, 2, 2).mean(dim=(3, 5))          # (B, C, 2, 2)
    for i, c in enumerate(targets):
        up = F.interpolate(acts[i][:, None].double(), size=(4, 4), mode="bilinear", align_corners=False)[:, 0]
        masks = up.numpy()
        low = masks.min(axis=(1, 2), keepdims=True)
        masks = (masks - low) / (masks.max(axis=(1, 2), keepdims=True) - low)     # (C, 4, 4)
        logits = _probe_logits(V, b, x[i][None] * masks[:, None])                 # (C, K)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        weights = probs[:, c]
        expected = np.maximum(np.tensordot(weights, acts[i].double().numpy(), axes=1), 0)
        np.testing.assert_allclose(got[i].double().numpy(), expected, atol=1e-5)


def test_scorecam_batch_size_does_not_change_the_result(pooled_probe):
    model, images = pooled_probe
    maps = [medcam.explain(model, images, "scorecam", raw=True, batch_size=n, progress=False) for n in (1, 4, 100)]
    torch.testing.assert_close(maps[0], maps[1])
    torch.testing.assert_close(maps[0], maps[2])


def test_scorecam_scores_the_blank_input_of_constant_channels_once():
    """Constant channels give all-zero masks: one shared forward pass of a zero image scores them all,
    and every score equals the one-pass-per-channel definition."""
    from medcam.attribution import normalize_maps
    from medcam_cam.perturbation import SCORES, masked_input_scores

    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3))
    passes: list[int] = []

    def forward(x: torch.Tensor) -> torch.Tensor:
        passes.append(len(x))
        return net(x)

    images = torch.rand(2, 3, 8, 8)
    acts = torch.rand(2, 5, 4, 4)
    acts[:, 1] = 0.3   # constant in both images
    acts[1, 3] = 0.0   # constant in the second image only
    targets = torch.tensor([[0], [2]])
    with torch.no_grad():
        got = masked_input_scores(forward, images, acts, targets, SCORES["softmax"], batch_size=4, progress=False)
        masks = normalize_maps(F.interpolate(acts, size=(8, 8), mode="bilinear", align_corners=False))
        for i in range(2):
            for k in range(5):
                expected = torch.softmax(net(images[i:i + 1] * masks[i, k]), 1)[0, targets[i, 0]]
                torch.testing.assert_close(got[i, 0, k], expected)
    assert sum(passes) == 2 * 5 - 3 + 1


def test_scorecam_score_choices(pooled_probe):
    model, images = pooled_probe
    logit = medcam.explain(model, images, "scorecam", raw=True, score="logit", progress=False)
    softmax = medcam.explain(model, images, "scorecam", raw=True, score="softmax", progress=False)
    auto = medcam.explain(model, images, "scorecam", raw=True, progress=False)
    torch.testing.assert_close(auto, softmax)
    assert not torch.allclose(logit, softmax)
    multilabel = build_probe(channels=3, classes=3, size=4, pool=2, scale=2.0, shift=1.0, multilabel=True)
    multilabel.load_state_dict(model.state_dict())
    sigmoid = medcam.explain(multilabel, images, "scorecam", raw=True, score="sigmoid", progress=False)
    torch.testing.assert_close(medcam.explain(multilabel, images, "scorecam", raw=True, progress=False), sigmoid)
    with pytest.raises(SpecError, match="scorecam.score"):
        medcam.build_attribution({"name": "scorecam", "score": "probability"})


def test_ablationcam_weights_are_relative_score_drops():
    """Desai & Ramaswamy 2020: w_k = (y_c - y_c^k) / y_c; for the linear probe
    y_c - y_c^k = <V_ck, A_k>, so w_k = <V_ck, A_k> / y_c."""
    torch.manual_seed(7)
    model = build_probe(channels=4, classes=3, size=4, scale=2.0, shift=1.0)
    images = torch.rand(3, 4, 4, 4)
    targets = [0, 1, 2]
    got = medcam.explain(model, images, "ablationcam", target=targets, raw=True, progress=False)
    V = model.head.weight.detach().double().numpy()
    b = model.head.bias.detach().double().numpy()
    acts = (2 * images - 1).double().numpy()
    for i, c in enumerate(targets):
        drops = (V[c] * acts[i]).sum(axis=(1, 2))
        y = drops.sum() + b[c]
        expected = np.maximum(np.tensordot(drops / y, acts[i], axes=1), 0)
        np.testing.assert_allclose(got[i].double().numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("level,module", [(3, "backbone.stages.3.1"), (2, "backbone.stages.2.1")])
def test_ablationcam_rerun_from_a_level_equals_rerun_through_a_hook(level, module):
    """Level 3 re-runs only the head; level 2 also re-runs stage 3 through forward_from; a hooked
    module re-runs the whole model with its output replaced. All three must agree."""
    model = tiny_cnn_model()
    images = torch.rand(2, 3, 64, 64)
    from_level = medcam.explain(model, images, "ablationcam", layer=level, raw=True, batch_size=7, progress=False)
    hooked = medcam.explain(model, images, "ablationcam", layer=module, raw=True, batch_size=5, progress=False)
    torch.testing.assert_close(from_level, hooked, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", ["scorecam", "ablationcam"])
def test_batch_size_must_be_positive(name):
    with pytest.raises(SpecError, match=f"{name}.batch_size"):
        medcam.build_attribution({"name": name, "batch_size": 0})


@pytest.mark.parametrize("name", ["scorecam", "ablationcam"])
def test_perturbation_methods_are_not_available_from_an_output(name):
    model = tiny_cnn_model()
    out = model(torch.rand(1, 3, 64, 64), return_features=True)
    with pytest.raises(ValueError, match="re-runs the model"):
        medcam.build_attribution(name).from_output(out, size=(64, 64), model=model)
