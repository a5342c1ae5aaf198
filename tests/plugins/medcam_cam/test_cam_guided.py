"""Guided backpropagation and Guided Grad-CAM (medcam_cam.guided): a network small enough to backpropagate
by hand, the model's ReLUs restored, and pytorch-grad-cam's GuidedBackpropReLUModel on the same model."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import medcam
from cam_probes import LogitsView, tiny_cnn_model
from medcam_cam.guided import guided_relus


class TwoLayer(nn.Module):
    """x (B, 2, 3, 3) -> z = W1 x (1x1 conv, 2 -> 3 channels) -> ReLU -> y_c = sum V_c * relu(z)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1, bias=False)
        self.relu = nn.ReLU(inplace=True)
        self.V = nn.Parameter(torch.randn(2, 3, 3, 3))

    def forward(self, x):
        return torch.einsum("kchw,bchw->bk", self.V, self.relu(self.conv(x)))


def test_guided_backprop_by_hand():
    torch.manual_seed(0)
    net = TwoLayer()
    images = torch.randn(2, 2, 3, 3)                # signed inputs: some z < 0
    got = medcam.explain(net, images, "guidedbackprop", target=[0, 1], raw=True)
    W = net.conv.weight.detach().double().numpy()[:, :, 0, 0]                   # (3, 2)
    V = net.V.detach().double().numpy()
    for i, c in enumerate([0, 1]):
        x = images[i].double().numpy()
        z = np.einsum("oc,chw->ohw", W, x)
        relevance = V[c] * (z > 0) * (V[c] > 0)     # guided ReLU: positive gradient at positive input only
        expected = np.einsum("oc,ohw->chw", W, relevance).sum(axis=0)
        np.testing.assert_allclose(got[i].double().numpy(), expected, rtol=1e-6, atol=1e-8)
    plain = medcam.explain(net, images, "input_x_gradient", target=[0, 1], raw=True)
    assert not torch.allclose(got, plain)


def test_relus_are_restored_even_on_error():
    model = tiny_cnn_model()
    relus = [(name, m) for name, m in model.named_modules() if type(m) is nn.ReLU]
    with pytest.raises(RuntimeError, match="boom"):
        with guided_relus(model) as count:
            assert count == len(relus) > 0
            raise RuntimeError("boom")
    after = [(name, m) for name, m in model.named_modules() if type(m) is nn.ReLU]
    assert [n for n, _ in after] == [n for n, _ in relus]
    assert all(a is b and a.inplace for (_, a), (_, b) in zip(after, relus))


def test_guided_gradcam_is_guided_backprop_times_gradcam():
    torch.manual_seed(1)
    model = tiny_cnn_model(width=4)
    images = torch.rand(2, 3, 64, 64)
    got = medcam.explain(model, images, "guidedgradcam", target=[0, 2], raw=True)
    guided = medcam.explain(model, images, "guidedbackprop", target=[0, 2], raw=True)
    cam = medcam.explain(model, images, "gradcam", target=[0, 2], raw=True)
    cam = torch.nn.functional.interpolate(cam[:, None], size=(64, 64), mode="bilinear", align_corners=False)[:, 0]
    torch.testing.assert_close(got, guided * cam, rtol=1e-5, atol=1e-8)


@pytest.mark.slow
def test_guided_backprop_equals_pytorch_grad_cam():
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam import GuidedBackpropReLUModel

    torch.manual_seed(2)
    model = tiny_cnn_model(width=4)
    image = torch.rand(1, 3, 64, 64)
    theirs = GuidedBackpropReLUModel(LogitsView(model), device="cpu")(image.clone(), target_category=1)   # (H, W, C)
    ours = medcam.explain(model, image, "guidedbackprop", target=1, raw=True)
    reference = torch.from_numpy(theirs.sum(axis=2)).float()
    torch.testing.assert_close(ours[0], reference, rtol=1e-4, atol=1e-5 * float(reference.abs().max()))
