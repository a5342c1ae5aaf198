"""Multi-layer fusion, augmentation smoothing and eigen smoothing (medcam.attribution_ensembles): NumPy
references, torchcam's LayerCAM fusion and pytorch-grad-cam's multi-layer, aug_smooth and eigen_smooth
outputs on the same model (identity normalization, so both libraries augment the same input)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import medcam
from medcam.attribution_ensembles import AUGMENTATIONS, fuse_maps
from medcam.errors import SpecError


def _minmax(x: np.ndarray) -> np.ndarray:
    return (x - x.min()) / (x.max() - x.min())


def test_fusions_by_hand():
    a = torch.tensor([[[[0.0, 2.0], [4.0, 4.0]]]])        # (1, 1, 2, 2): normalized 0, .5, 1, 1
    b = torch.tensor([[[[1.0, 1.0], [1.0, 3.0]]]])        # normalized 0, 0, 0, 1
    na, nb = np.array([[0.0, 0.5], [1.0, 1.0]]), np.array([[0.0, 0.0], [0.0, 1.0]])
    cases = {"max": np.maximum(na, nb), "mean": (na + nb) / 2, "product": na * nb,
             "layercam": np.maximum(np.tanh(2 * na), np.tanh(2 * nb))}
    for fusion, expected in cases.items():
        np.testing.assert_allclose(fuse_maps([a, b], (2, 2), fusion)[0, 0].numpy(), expected, rtol=1e-6, err_msg=fusion)


def _model():
    torch.manual_seed(0)
    model = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3,
                                "preprocess": {"size": [64, 64], "mean": [0.0] * 3, "std": [1.0] * 3}})
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
    model.train()
    with torch.no_grad():
        model(torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(1)))
    return model.eval()


class Logits(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x).logits


def test_layer_list_fuses_single_layer_maps():
    model = _model()
    images = torch.rand(2, 3, 64, 64)
    fused = medcam.explain(model, images, "gradcam", target=[0, 1], layer=[1, 2], fusion="mean", details=True)
    one = medcam.explain(model, images, "gradcam", target=[0, 1], layer=1, raw=True)
    two = medcam.explain(model, images, "gradcam", target=[0, 1], layer=2, raw=True)
    expected = fuse_maps([one[:, None], two[:, None]], (64, 64), "mean")[:, 0]
    expected = (expected - expected.amin((1, 2), keepdim=True)) / (expected.amax((1, 2), keepdim=True)
                                                                   - expected.amin((1, 2), keepdim=True))
    torch.testing.assert_close(fused.maps, expected, rtol=1e-5, atol=1e-6)
    assert fused.layer == "level 1 (backbone.stages.1) + level 2 (backbone.stages.2)"
    spec = medcam.build_attribution({"name": "layercam", "layer": [2, 3]})         # a layer list in a spec
    assert spec(model, images).shape == (2, 64, 64)


def test_layercam_fusion_equals_torchcams():
    pytest.importorskip("torchcam")
    from torchcam.methods import LayerCAM

    model = _model()
    images = torch.rand(2, 3, 64, 64)
    maps = [medcam.explain(model, images, "layercam", target=[2, 0], layer=level, raw=True) for level in (1, 2, 3)]
    normalized = [(m - m.amin((1, 2), keepdim=True)) / (m.amax((1, 2), keepdim=True) - m.amin((1, 2), keepdim=True))
                  for m in maps]
    theirs = LayerCAM.fuse_cams(normalized, (64, 64))
    ours = medcam.explain(model, images, "layercam", target=[2, 0], layer=[1, 2, 3], raw=True)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_mean_fusion_equals_pytorch_grad_cams_multi_layer_output():
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _model()
    images = torch.rand(2, 3, 64, 64)
    modules = [model.backbone.stages[1], model.backbone.stages[2]]
    with grad_cam.GradCAM(Logits(model), modules) as cam:
        theirs = cam(images, [ClassifierOutputTarget(c) for c in (1, 2)])
    ours = medcam.explain(model, images, "gradcam", target=[1, 2], layer=[1, 2], fusion="mean").numpy()
    np.testing.assert_allclose(ours, theirs, atol=3e-3)


@pytest.mark.slow
def test_aug_smooth_equals_pytorch_grad_cams():
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    assert len(AUGMENTATIONS) == 6
    model = _model()
    images = torch.rand(2, 3, 64, 64)
    model.input_range = None  # pytorch-grad-cam brightens copies to 1.1 and calls the model itself
    with grad_cam.GradCAM(Logits(model), [model.backbone.stages[2]]) as cam:
        theirs = cam(images, [ClassifierOutputTarget(c) for c in (0, 2)], aug_smooth=True)
    del model.input_range
    ours = medcam.explain(model, images, "gradcam", target=[0, 2], layer=2, aug_smooth=True).numpy()
    np.testing.assert_allclose(ours, np.stack([_minmax(t) for t in theirs]), atol=3e-3)
    plain = medcam.explain(model, images, "gradcam", target=[0, 2], layer=2).numpy()
    assert np.abs(ours - plain).max() > 1e-2


def test_eigen_smooth_equals_pytorch_grad_cams_projection_up_to_sign():
    grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = _model()
    images = torch.rand(2, 3, 64, 64)
    module = model.backbone.stages[2]
    targets = [ClassifierOutputTarget(c) for c in (1, 0)]
    with grad_cam.GradCAM(Logits(model), [module]) as cam:
        cam(images, targets)
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        theirs = cam.get_cam_image(images, module, targets, acts, grads, True)
    ours = medcam.explain(model, images, "gradcam", target=[1, 0], layer=2, raw=True, eigen_smooth=True).numpy()
    for i in range(2):
        sign = 1.0 if (ours[i] * theirs[i]).sum() >= 0 else -1.0
        np.testing.assert_allclose(sign * ours[i], theirs[i], rtol=1e-4, atol=1e-5 * np.abs(theirs[i]).max())


def test_errors():
    model = _model()
    images = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="eigen_smooth does not apply"):
        medcam.explain(model, images, "eigencam", eigen_smooth=True)
    with pytest.raises(SpecError, match="did you mean 'layercam'"):
        medcam.explain(model, images, "gradcam", layer=[1, 2], fusion="layercam2")
    with pytest.raises(ValueError, match="at least one layer"):
        medcam.explain(model, images, "gradcam", layer=[])
