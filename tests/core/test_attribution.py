"""The attribution protocol and explain() (medcam/attribution.py); its helpers are in test_attribution_inputs.py.

The core is tested with methods defined here (no CAM plugin needed): ``ActMean``
(channel mean of the activations, no gradients) and ``GradTimesAct``
(``sum_k g^k * A^k``, gradients).
"""
from __future__ import annotations

import gc

import pytest
import torch
from torch import Tensor, nn

import medcam
from medcam.attribution import Attribution, AttributionContext, explain
from medcam.errors import ShapeError, SpecError
from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import backbones


class ActMean(Attribution):
    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations().mean(dim=1, keepdim=True)
        return acts.expand(-1, ctx.targets.shape[1], -1, -1)


class GradTimesAct(Attribution):
    uses_gradients = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        return (ctx.gradients() * ctx.require_activations()[:, None]).sum(dim=2)


class Rescore(Attribution):
    """Re-runs the model from the layer with its own activations: the logits must not change."""

    extra_passes = True

    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        index = torch.arange(acts.shape[0])
        self.rescored = ctx.logits_with_activations(acts, index)
        return acts.mean(dim=1, keepdim=True).expand(-1, ctx.targets.shape[1], -1, -1)


def tiny(width: int = 4, size: int = 64, **spec) -> medcam.MedcamModel:
    return medcam.build_model({"backbone": {"name": "tiny_cnn", "width": width}, "num_classes": 3,
                               "preprocess": {"size": [size, size]}, **spec}).eval()


@pytest.fixture
def model() -> medcam.MedcamModel:
    return tiny()


@pytest.fixture
def images() -> Tensor:
    return torch.rand(2, 3, 64, 64)


def _no_hooks(module: nn.Module) -> bool:
    return all(not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
               for m in module.modules())


# ---------------------------------------------------------------------- explain
def test_explain_shapes_range_and_device(model, images):
    for method in (ActMean(), GradTimesAct()):
        maps = explain(model, images, method)
        assert maps.shape == (2, 64, 64) and maps.dtype == torch.float32
        assert maps.device == next(model.parameters()).device
        assert float(maps.amin()) == 0.0 and float(maps.amax()) == 1.0
        assert not maps.requires_grad
        assert explain(model, images, method, raw=True).shape == (2, 2, 2)          # level 3 at stride 32
        assert explain(model, images, method, layer=1, raw=True).shape == (2, 8, 8)
        assert explain(model, images, method, target="all").shape == (2, 3, 64, 64)
        assert explain(model, images, method, target=[[0, 2], [1, 1]]).shape == (2, 2, 64, 64)


def test_details_report_targets_logits_and_layer(model, images):
    result = explain(model, images, GradTimesAct(), details=True)
    logits = model(images).logits
    assert result.targets.tolist() == logits.argmax(1, keepdim=True).tolist()
    torch.testing.assert_close(result.logits, logits.detach())
    assert result.layer == "level 3 (backbone.stages.3)"
    hooked = explain(model, images, GradTimesAct(), layer="backbone.stages.2.0", details=True)
    assert hooked.layer == "backbone.stages.2.0"


def test_target_errors_raise_before_the_forward_pass(model, images):
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(ShapeError, match="never silently truncated"):
            explain(model, images, GradTimesAct(), target=[0, 1, 2])
        with pytest.raises(ValueError, match="out of range"):
            explain(model, images, GradTimesAct(), target=[0, 7])
    finally:
        handle.remove()
    assert not calls


@pytest.mark.parametrize("bad,match", [
    (torch.rand(3, 64, 64), "add the batch dimension"),
    (torch.rand(2, 1, 64, 64), "1 channels but the model expects in_chans=3"),
    (torch.zeros(2, 3, 64, 64, dtype=torch.uint8), "floating point"),
    ([[0.0]], "must be a torch.Tensor"),
])
def test_non_image_input_is_a_shape_error(model, bad, match):
    with pytest.raises(ShapeError, match=match):
        explain(model, bad, GradTimesAct())


def test_differentiable_maps_reach_the_backbone_weights(model, images):
    maps = explain(model, images, GradTimesAct(), differentiable=True)
    assert maps.requires_grad
    (maps * torch.rand_like(maps)).sum().backward()
    grad = model.backbone.stem[0].weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_all_paths_give_the_same_map(model, images):
    """No-graph fast path (last level), graph path (differentiable), hook on the producing module."""
    fast = explain(model, images, GradTimesAct(), raw=True)
    graph = explain(model, images, GradTimesAct(), raw=True, differentiable=True)
    hooked = explain(model, images, GradTimesAct(), raw=True, layer="backbone.stages.3.1")
    torch.testing.assert_close(graph.detach(), fast)
    torch.testing.assert_close(hooked, fast)


def test_rescoring_from_the_layer_reproduces_the_logits(model, images):
    for layer in (3, 2, "backbone.stages.2.0"):
        method = Rescore()
        result = method.run(model, images, layer=layer)
        torch.testing.assert_close(method.rescored, result.logits, rtol=1e-4, atol=1e-5)


def test_modes_and_requires_grad_are_restored(images):
    model = tiny()
    model.train()
    model.backbone.stages[0].eval()                       # a mixed state must come back as it was
    for p in model.backbone.parameters():
        p.requires_grad_(False)                           # frozen backbone: the input carries the graph
    running = model.backbone.stem[1].running_mean.clone()
    modes = [m.training for m in model.modules()]
    flags = [p.requires_grad for p in model.parameters()]
    explain(model, images, GradTimesAct())
    explain(model, images, GradTimesAct(), layer="backbone.stages.2.0", differentiable=True)
    with pytest.raises(ValueError):
        explain(model, images, GradTimesAct(), target=[0, 9])
    assert [m.training for m in model.modules()] == modes
    assert [p.requires_grad for p in model.parameters()] == flags
    assert torch.equal(model.backbone.stem[1].running_mean, running)   # explained in eval mode
    explain(model, images, ActMean(), eval_mode=False)                 # keeps train mode: BN stats move
    assert not torch.equal(model.backbone.stem[1].running_mean, running)


def test_gradients_work_under_no_grad_and_inference_mode(model, images):
    expected = explain(model, images, GradTimesAct())
    with torch.no_grad():
        torch.testing.assert_close(explain(model, images, GradTimesAct()), expected)
    with torch.inference_mode():
        torch.testing.assert_close(explain(model, images.clone(), GradTimesAct()), expected)


class _Twice(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.conv(torch.relu(self.conv(x)[:, :3])).mean(dim=(2, 3)))


def test_plain_module_with_a_layer_name_and_hook_errors(images):
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                        nn.Linear(4, 2)).eval()
    maps = explain(net, images, GradTimesAct(), layer="1")
    assert maps.shape == (2, 64, 64)
    with pytest.raises(ValueError, match="pass layer="):
        explain(net, images, GradTimesAct())
    with pytest.raises(ShapeError, match=r"outputs \(2, 4\).*\(B, C, h, w\)"):
        explain(net, images, GradTimesAct(), layer="3")
    with pytest.raises(ValueError, match="out of range: the model has 2 classes"):
        explain(net, images, GradTimesAct(), layer="1", target=5)      # raised after the forward pass
    with pytest.raises(ValueError, match="ran 2 times"):
        explain(_Twice(), images, GradTimesAct(), layer="conv")
    assert _no_hooks(net)


class _TokenNet(nn.Module):
    """A token model: patch embedding, a token mixer on (B, N, C), exposed as a (B, C, h, w) map."""

    def __init__(self, in_chans: int = 3):
        super().__init__()
        self.embed = nn.Conv2d(in_chans, 8, 8, stride=8)
        self.mixer = nn.Sequential(nn.LayerNorm(8), nn.Linear(8, 8))
        self.feature_info = FeatureInfo([FeatureLevel(8, 8, "mixer")])

    def forward(self, x):
        maps = self.embed(x)
        b, c, h, w = maps.shape
        tokens = self.mixer(maps.flatten(2).transpose(1, 2))
        return [tokens.transpose(1, 2).reshape(b, c, h, w)]


def test_token_backbones_work_through_their_maps(images):
    backbones.register(lambda in_chans=3: _TokenNet(in_chans), name="attribution_test_tokens")
    try:
        model = medcam.build_model({"backbone": "attribution_test_tokens", "num_classes": 2,
                                    "preprocess": {"size": [64, 64]}}).eval()
        assert explain(model, images, GradTimesAct(), raw=True).shape == (2, 8, 8)
        same = explain(model, images, GradTimesAct(), layer="backbone.mixer", raw=True)   # the level, not tokens
        torch.testing.assert_close(same, explain(model, images, GradTimesAct(), raw=True))
        with pytest.raises(ShapeError, match=r"outputs \(2, 64, 8\)"):
            explain(model, images, GradTimesAct(), layer="backbone.mixer.1")
        assert _no_hooks(model)
    finally:
        backbones.unregister("attribution_test_tokens")


def test_from_output_reuses_a_forward_pass(model, images):
    expected = explain(model, images, GradTimesAct(), target=[1, 2])
    out = model(images, return_features=True)
    result = GradTimesAct().from_output(out, target=[1, 2], size=(64, 64), model=model)
    assert result.maps.requires_grad
    torch.testing.assert_close(result.maps.detach(), expected)
    with pytest.raises(ValueError, match="return_features=True"):
        GradTimesAct().from_output(model(images), size=(64, 64))
    with pytest.raises(ValueError, match="re-runs the model"):
        Rescore().from_output(out, size=(64, 64))


def test_explain_builds_methods_by_name_and_spec(model, images):
    by_name = explain(model, images, "gradcam")
    by_spec = explain(model, images, {"name": "gradcam"})
    torch.testing.assert_close(by_name, by_spec)
    with pytest.raises(SpecError, match="cannot be applied"):
        explain(model, images, GradTimesAct(), batch_size=4)


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if issubclass(type(obj), torch.Tensor))


@pytest.mark.slow
def test_no_growth_over_a_thousand_calls():
    model = tiny(width=4, size=32)
    images = torch.rand(2, 3, 32, 32)
    variants = [(GradTimesAct(), None, False), (GradTimesAct(), "backbone.stages.2.0", False),
                (ActMean(), None, False), (GradTimesAct(), None, True)]
    for method, layer, differentiable in variants:          # warm-up (lazy caches)
        explain(model, images, method, layer=layer, differentiable=differentiable)
    before = _live_tensors()
    for i in range(1000):
        method, layer, differentiable = variants[i % len(variants)]
        maps = explain(model, images, method, layer=layer, differentiable=differentiable)
        if differentiable:
            maps.sum().backward()
    del maps  # the last result (and the graph it holds) is the caller's
    model.zero_grad(set_to_none=True)
    assert _live_tensors() <= before
    assert _no_hooks(model)
    assert not nn.modules.module._global_forward_hooks and not nn.modules.module._global_backward_hooks
