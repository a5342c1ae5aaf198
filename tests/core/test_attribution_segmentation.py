"""Segmenter attribution (medcam.attribution_segmentation): the region score, Grad-CAM of a segmenter
against an independent autograd + NumPy evaluation and against pytorch-grad-cam's
SemanticSegmentationTarget, fixed regions for perturbation methods, errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from medcam.attribution_segmentation import RegionScores, explain_segmenter, region_masks, segmenter_layer
from medcam.errors import ImageValueError, ShapeError, UnknownNameError

LAYER = "net.encoder.backbone.stages.2"


@pytest.fixture(scope="module")
def segmenter():
    torch.manual_seed(0)
    seg = medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4}, "num_classes": 2,
                                  "preprocess": {"size": [64, 64]}})
    for module in seg.modules():              # batch-norm statistics of a warm-up batch (features not all zero)
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = None
    warm = torch.rand(8, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        seg.train()(warm)
        seg.eval()
        median = seg(warm).transpose(0, 1).flatten(1).median(dim=1).values
        seg.net.head[0].bias.sub_(median)     # half of the pixels in each class's predicted region
    return seg


def _acts_and_grads(seg, images, layer, region, cls):
    store = {}
    module = dict(seg.named_modules())[layer]
    handle = module.register_forward_hook(lambda m, i, o: store.setdefault("a", o))
    x = images.clone().requires_grad_(True)
    logits = seg(x)
    handle.remove()
    score = (logits[:, cls] * region).sum()
    (grad,) = torch.autograd.grad(score, store["a"])
    return store["a"].detach().double().numpy(), grad.double().numpy()


def test_gradcam_of_the_predicted_region_equals_an_independent_evaluation(segmenter):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    result = explain_segmenter(segmenter, images, "gradcam", target=1, layer=LAYER, raw=True, details=True)
    with torch.no_grad():
        region = (torch.sigmoid(segmenter(images))[:, 1] > 0.5).float()
    assert 0 < float(region.mean()) < 1
    acts, grads = _acts_and_grads(segmenter, images, LAYER, region, 1)
    for i in range(2):
        weights = grads[i].mean(axis=(1, 2))                         # Selvaraju et al. 2017, eqs. 1-2
        expected = np.maximum(np.tensordot(weights, acts[i], axes=1), 0)
        np.testing.assert_allclose(result.maps[i].double().numpy(), expected, rtol=1e-5,
                                   atol=1e-6 * max(1.0, float(np.abs(expected).max())))
    assert result.layer == LAYER and result.targets.tolist() == [[1], [1]]


def test_a_given_mask_is_the_region(segmenter):
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    mask = torch.zeros(1, 64, 64, dtype=torch.bool)
    mask[0, 10:30, 20:50] = True
    got = explain_segmenter(segmenter, images, "hirescam", target=0, mask=mask, layer=LAYER, raw=True)
    acts, grads = _acts_and_grads(segmenter, images, LAYER, mask.float(), 0)
    np.testing.assert_allclose(got[0].double().numpy(), (acts[0] * grads[0]).sum(0), rtol=1e-5, atol=1e-8)
    regions = region_masks(segmenter, images, mask)
    assert regions.shape == (1, 2, 64, 64) and torch.equal(regions[0, 1].bool(), mask[0])
    scores = RegionScores(segmenter, regions)(images)
    torch.testing.assert_close(scores, (segmenter(images) * mask[:, None]).sum((2, 3)))


@pytest.mark.slow
def test_equal_to_pytorch_grad_cams_semantic_segmentation_target(segmenter):
    pytorch_grad_cam = pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.utils.model_targets import SemanticSegmentationTarget

    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        region = (torch.sigmoid(segmenter(images))[:, 0] > 0.5).float()
    module = dict(segmenter.named_modules())[LAYER]
    targets = [SemanticSegmentationTarget(0, region[i].numpy()) for i in range(2)]
    with pytorch_grad_cam.GradCAM(model=segmenter, target_layers=[module]) as cam:
        cam(input_tensor=images, targets=targets)
        acts = cam.activations_and_grads.activations[0].numpy()
        grads = cam.activations_and_grads.gradients[0].numpy()
        reference = torch.from_numpy(np.asarray(cam.get_cam_image(images, module, targets, acts, grads, False),
                                                dtype=np.float32)).clamp_min(0)
    got = explain_segmenter(segmenter, images, "gradcam", target=0, layer=LAYER, raw=True)
    torch.testing.assert_close(got, reference, rtol=1e-4, atol=1e-5 * float(reference.abs().max()))


@pytest.mark.slow
def test_perturbation_methods_hold_each_images_region_fixed(segmenter):
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(4))
    both = explain_segmenter(segmenter, images, "ablationcam", target=[0, 1], layer=LAYER, raw=True, progress=False)
    for i, c in enumerate([0, 1]):
        one = explain_segmenter(segmenter, images[i:i + 1], "ablationcam", target=c, layer=LAYER, raw=True,
                                progress=False)
        torch.testing.assert_close(both[i], one[0])
    # the copies of one image share its region: a one-row mask serves any batch of perturbed copies
    regions = region_masks(segmenter, images[:1])
    copies = images[:1].expand(3, -1, -1, -1) * torch.tensor([1.0, 0.5, 0.0]).view(3, 1, 1, 1)
    with torch.no_grad():
        scores = RegionScores(segmenter, regions)(copies)
        torch.testing.assert_close(scores, (segmenter(copies) * regions).sum((2, 3)))


def test_default_layer_and_modes(segmenter):
    assert segmenter_layer(segmenter, None) is dict(segmenter.named_modules())["net.encoder.backbone.stages.3"]
    segmenter.train()
    maps = explain_segmenter(segmenter, torch.rand(1, 3, 64, 64))
    assert maps.shape == (1, 64, 64) and float(maps.min()) >= 0 and float(maps.max()) <= 1
    assert segmenter.training and all(m.training for m in segmenter.modules())
    segmenter.eval()


def test_errors(segmenter):
    images = torch.rand(1, 3, 64, 64)
    with pytest.raises(UnknownNameError, match="did you mean"):
        explain_segmenter(segmenter, images, layer="net.encoder.backbone.stages.33")
    with pytest.raises(ShapeError, match=r"mask must be \(B, H, W\)"):
        explain_segmenter(segmenter, images, mask=torch.ones(1, 32, 32, dtype=torch.bool))
    plain = torch.nn.Conv2d(3, 1, 3, padding=1)
    with pytest.raises(ValueError, match="declares no cam_layer"):
        explain_segmenter(plain, images)
    with pytest.raises(ValueError, match="classes|head"):
        explain_segmenter(segmenter, images, "cam")


def test_every_registered_method_maps_a_segmenter_region_except_the_head_readouts():
    import warnings

    from medcam.attribution_segmentation import CLASSIFIER_HEAD_METHODS
    from medcam.registry import get_registry

    torch.manual_seed(0)
    seg = medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4}, "num_classes": 2,
                                  "preprocess": {"size": [32, 32]}}).eval()
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    for name in get_registry("attributions").list():
        if name in CLASSIFIER_HEAD_METHODS:
            with pytest.raises((ValueError, TypeError), match=name):
                explain_segmenter(seg, images, name, threshold=0.0)
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            maps = explain_segmenter(seg, images, name, threshold=0.0)   # noisy copies (SS-CAM) are not refused
        assert maps.shape == (2, 32, 32), name
        assert float(maps.min()) >= 0.0 and float(maps.max()) <= 1.0 + 1e-6, name
    with pytest.raises(ImageValueError, match="outside"):                 # the caller's images are checked
        explain_segmenter(seg, images * 255, "gradcam")
