"""foreground_control and bas: values against a direct computation, and where their gradients go."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import medcam
from medcam.errors import SpecError

from wsol_models import warm_batchnorm


def _setup(loss: dict, train: bool = False):
    spec = {"backbone": {"name": "tiny_cnn", "width": 8}, "head": {"name": "fpm", "hidden": 16},
            "num_classes": 3, "loss": [loss], "preprocess": {"size": 64}}
    model = warm_batchnorm(medcam.build_model(spec))
    model.train(train)
    loss_fn = medcam.build_loss(model.spec, num_classes=3)
    x = torch.rand(4, 3, 64, 64)
    y = torch.tensor([0, 1, 2, 1])
    return model, loss_fn, x, y


def _masked_scores(model, fmap, mask, y):
    """The re-score computed directly (no frozen_call): later stages + classification branch."""
    head = model.head
    later = model.backbone.forward_from(fmap * mask, head.fpm_level)
    return head.classifier(later[head.cls_level - head.fpm_level - 1]).mean(dim=(2, 3)).gather(1, y[:, None])[:, 0]


def test_foreground_control_value():
    model, loss_fn, x, y = _setup({"name": "foreground_control"})
    out = model(x, y)
    _, logs = loss_fn(out, {"image": x, "label": y}, model)
    m = out.maps["foreground"]
    fmap = out.aux["fpm_features"]
    with torch.no_grad():
        s_fg = _masked_scores(model, fmap, torch.clamp(2 * m - 1, min=0), y)
        s = out.logits.gather(1, y[:, None])[:, 0]
        ce1 = F.cross_entropy(out.logits, y)
        ce2 = F.cross_entropy(out.aux["score_2"], y)
        fg = (1.5 * torch.clamp(0.5 - s_fg / (s + 1e-8), min=0)).mean()
        area = 1.2 * m.flatten(1).mean(1).mean()
    assert logs["foreground_control.ce"] == pytest.approx(float(ce1), rel=1e-5)
    assert logs["foreground_control.ce_2"] == pytest.approx(0.5 * float(ce2), rel=1e-5)
    assert logs["foreground_control.foreground"] == pytest.approx(float(fg), rel=1e-4, abs=1e-6)
    assert logs["foreground_control.area"] == pytest.approx(float(area), rel=1e-5)
    assert logs["total"] == pytest.approx(float(ce1 + 0.5 * ce2 + fg + area), rel=1e-5)


def test_bas_value_and_zero_where_background_wins():
    model, loss_fn, x, y = _setup({"name": "bas", "area_weight": 0.7})
    out = model(x, y)
    terms = loss_fn.parts[0](out, {"image": x, "label": y}, model)
    with torch.no_grad():
        s_bg = _masked_scores(model, out.aux["fpm_features"], 1 - out.maps["foreground"], y)
        s = out.logits.gather(1, y[:, None])[:, 0]
        ratio = torch.where(s_bg >= s, torch.zeros_like(s), s_bg / (s + 1e-8))
    assert float(terms["background"].detach()) == pytest.approx(float(ratio.mean()), rel=1e-4, abs=1e-7)
    assert float(terms["area"].detach()) == pytest.approx(0.7 * float(out.maps["foreground"].detach().mean()), rel=1e-5)


def test_frozen_term_trains_the_map_not_the_rescoring_weights():
    # target_ratio 10 keeps the hinge active for every image, so the term has a gradient
    model, loss_fn, x, y = _setup({"name": "foreground_control", "target_ratio": 10.0}, train=True)
    out = model(x, y)
    terms = loss_fn.parts[0](out, {"image": x, "label": y}, model)
    assert float(terms["foreground"].detach()) > 0
    terms["foreground"].backward()
    head, backbone = model.head, model.backbone

    def norm(module):
        grads = [p.grad.abs().sum() for p in module.parameters() if p.grad is not None]
        return float(sum(grads)) if grads else 0.0

    assert norm(head.classifier) == 0.0                    # the re-run classification branch
    assert norm(backbone.stages[3]) == 0.0                 # the re-run last stage
    for branch in (head.loc_a, head.loc_b, head.loc_d):    # M's parameters
        assert norm(branch) > 0
    assert norm(backbone.stages[0]) > 0                    # M depends on F, which depends on the early stages


def test_rescore_does_not_touch_batchnorm_statistics():
    model, loss_fn, x, y = _setup({"name": "foreground_control"}, train=True)
    out = model(x, y)
    before = model.backbone.stages[3][0][1].running_mean.clone()
    loss_fn(out, {"image": x, "label": y}, model)
    assert torch.equal(before, model.backbone.stages[3][0][1].running_mean)


def test_balanced_class_weights_reach_both_cross_entropies():
    model, loss_fn, x, y = _setup({"name": "foreground_control", "class_weights": "balanced"})
    out = model(x, y)
    with pytest.raises(RuntimeError, match="set_class_counts"):
        loss_fn(out, {"image": x, "label": y}, model)
    loss_fn.set_class_counts([10, 5, 1])
    _, logs = loss_fn(out, {"image": x, "label": y}, model)
    weight = torch.tensor([16 / 30, 16 / 15, 16 / 3])
    expected = float(F.cross_entropy(out.logits.detach(), y, weight=weight))
    assert logs["foreground_control.ce"] == pytest.approx(expected, rel=1e-5)


def test_errors():
    with pytest.raises(SpecError, match="single-label"):
        medcam.build_loss([{"name": "foreground_control"}], num_classes=3, multilabel=True)
    model = medcam.build_model({"name": "tiny_classifier", "num_classes": 3})
    loss_fn = medcam.build_loss([{"name": "bas"}], num_classes=3)
    x, y = torch.rand(2, 3, 64, 64), torch.tensor([0, 1])
    with pytest.raises(SpecError, match="needs the 'fpm' head"):
        loss_fn(model(x), {"image": x, "label": y}, model)
    with pytest.raises(SpecError, match="fg_weight"):
        medcam.build_loss([{"name": "foreground_control", "fg_weight": -1.0}], num_classes=3)
