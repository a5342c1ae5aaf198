"""FullGrad (medcam_cam.fullgrad): the paper's formula on the probe model (input term only: it has no
bias layer), the effective bias of a batch norm, and pytorch-grad-cam's FullGrad terms on tiny_cnn."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import medcam
from cam_probes import LogitsView, build_probe, tiny_cnn_model
from medcam_cam.fullgrad import bias_layers, effective_bias, fullgrad_terms


def _minmax(x: np.ndarray) -> np.ndarray:
    span = x.max() - x.min()
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def test_input_term_on_a_model_without_bias_layers():
    """psi(|x * dy/dx|) per channel, summed; dy_c/dx = 2 V_c on the probe (A = 2x - 1, linear head)."""
    torch.manual_seed(3)
    model = build_probe(channels=3, classes=2, size=5, scale=2.0, shift=1.0)
    images = torch.rand(2, 3, 5, 5)
    got = medcam.explain(model, images, "fullgrad", target=[1, 0], raw=True)
    V = model.head.weight.detach().double().numpy()
    for i, c in enumerate([1, 0]):
        terms = np.abs(images[i].double().numpy() * 2 * V[c])
        expected = sum(_minmax(terms[ch]) for ch in range(3))
        np.testing.assert_allclose(got[i].double().numpy(), expected, rtol=1e-5, atol=1e-6)


def test_batch_norm_effective_bias():
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
        bn.running_var.copy_(torch.tensor([4.0, 1.0, 0.25]))
        bn.weight.copy_(torch.tensor([2.0, 1.0, 3.0]))
        bn.bias.copy_(torch.tensor([0.1, 0.2, 0.3]))
    # beta - mu gamma / sqrt(var + eps): 0.1 - 1 * 2 / 2, 0.2 + 2 * 1 / 1, 0.3 - 0.5 * 3 / 0.5 (eps ~ 0)
    torch.testing.assert_close(effective_bias(bn), torch.tensor([-0.9, 2.2, -2.7]), rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_terms_equal_pytorch_grad_cams():
    """Same bias layers, the same |x * grad| and |b * grad| terms: aggregating medcam's terms as
    pytorch-grad-cam does (rescale, then resize each channel with cv2) gives its map within 1e-4, and
    medcam's own map (rescale, sum, resize once with torch) within the interpolation difference."""
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import FullGrad
    from pytorch_grad_cam.utils.image import scale_accross_batch_and_channels, scale_cam_image
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    torch.manual_seed(4)
    model = tiny_cnn_model(width=4)
    images = torch.rand(2, 3, 64, 64)

    view = LogitsView(model).eval()
    with FullGrad(model=view, target_layers=[]) as cam:
        theirs = cam(input_tensor=images.clone(), targets=[ClassifierOutputTarget(c) for c in (2, 1)])
    assert len(cam.target_layers) == len(bias_layers(model))
    input_term, bias_terms = fullgrad_terms(model, images, torch.tensor([2, 1]))
    parts = [scale_accross_batch_and_channels(input_term.numpy(), (64, 64))]
    for term in bias_terms:
        parts.append(scale_accross_batch_and_channels(term.numpy(), (64, 64)).sum(axis=1)[:, None])
    rebuilt = scale_cam_image(np.concatenate(parts, axis=1).sum(axis=1))
    np.testing.assert_allclose(rebuilt, theirs, rtol=0, atol=1e-4)
    ours = medcam.explain(model, images, "fullgrad", target=[2, 1]).numpy()
    np.testing.assert_allclose(ours, theirs, atol=5e-3)
