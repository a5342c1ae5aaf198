"""attention_box: the Grad-CAM term has a gradient that moves the CAM into the region; values and schedule."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import medcam
from medcam.errors import SpecError

from wsol_models import warm_batchnorm


def _model(num_classes: int = 2, multilabel: bool = False, **loss):
    spec = {"backbone": {"name": "tiny_cnn", "width": 8}, "head": {"name": "linear", "level": -2},
            "num_classes": num_classes, "multilabel": multilabel, "preprocess": {"size": 64},
            "loss": [{"name": "attention_box", "source": "boxes", **loss}]}
    model = warm_batchnorm(medcam.build_model(spec))
    loss_fn = medcam.build_loss(model.spec, num_classes=num_classes, multilabel=multilabel)
    return model, loss_fn


def _gradcam(model, x, target, level):
    """Grad-CAM by hand: ReLU(sum_k mean(dy/dA_k) A_k) at ``level``, bilinear to the input."""
    feats = model.forward_features(x)
    acts = feats[level]
    logits = model.head(feats).logits
    (grads,) = torch.autograd.grad(logits.gather(1, target[:, None]).sum(), acts)
    cam = F.relu((grads.mean(dim=(2, 3), keepdim=True) * acts).sum(1, keepdim=True))
    return F.interpolate(cam, size=x.shape[-2:], mode="bilinear", align_corners=False)[:, 0]


LEFT = [torch.tensor([[0.0, 0.0, 24.0, 64.0]])] * 4   # the allowed region: the left 24 columns


def test_energy_value_matches_a_hand_computed_gradcam():
    model, loss_fn = _model(rules={"1": "inside"}, lam=0.0)
    x = torch.rand(4, 3, 64, 64)
    y = torch.tensor([1, 0, 1, 1])
    batch = {"image": x, "label": y, "boxes": LEFT}
    out = model(x, y, return_features=True)
    terms = loss_fn.parts[0](out, batch, model)
    cam = _gradcam(model, x, y, model.head.level).detach()
    outside = 1 - cam[:, :, :24].sum((1, 2)) / (cam.sum((1, 2)) + 1e-8)
    expected = (outside * (y == 1).float()).sum() / 4     # no rule for class 0: no term, still /B
    assert float(terms["attention"].detach()) == pytest.approx(float(expected), rel=1e-4)
    assert float(terms["ce"].detach()) == 0.0


def test_a_map_with_no_positive_energy_costs_one_not_zero():
    _, loss_fn = _model(rules={"1": "inside"}, lam=0.0)
    allowed = torch.zeros(3, 8, 8, dtype=torch.bool)
    allowed[:, :, :4] = True
    cams = torch.stack([-torch.ones(8, 8), torch.zeros(8, 8), torch.ones(8, 8)])
    cams[2, :, 4:] = -5.0                                           # all positive energy inside the region
    losses = loss_fn.parts[0].pair_losses(cams, allowed)
    assert losses.tolist() == pytest.approx([1.0, 1.0, 0.0])


def test_ratio_mode_is_the_seeds_pixel_fraction_in_the_sharp_limit():
    model, loss_fn = _model(rules={"0": "lower", "1": "upper"}, mode="ratio", thresh=0.3, sharpness=1e6, lam=0.0)
    x = torch.rand(2, 3, 64, 64)
    y = torch.tensor([0, 1])
    boxes = [torch.tensor([[8.0, 8.0, 56.0, 40.0]])] * 2
    out = model(x, y, return_features=True)
    value = float(loss_fn.parts[0](out, {"image": x, "label": y, "boxes": boxes}, model)["attention"].detach())
    cam = _gradcam(model, x, y, model.head.level).detach()
    cam = (cam - cam.amin((1, 2), keepdim=True)) / (cam.amax((1, 2), keepdim=True) - cam.amin((1, 2), keepdim=True))
    lower = cam[0, 24:40, 8:56]   # rows [y0 + h/2, y1): the seed's effusion region
    upper = cam[1, 8:24, 8:56]    # rows [y0, y0 + h/2): pneumothorax
    expected = ((1 - (lower > 0.3).float().mean()) + (1 - (upper > 0.3).float().mean())) / 2
    assert value == pytest.approx(float(expected), abs=2e-3)


def test_attention_gradient_moves_the_cam_into_the_region():
    torch.manual_seed(1)
    model, loss_fn = _model(rules={"0": "inside", "1": "inside"}, lam=0.0)
    model.train()
    x = torch.rand(4, 3, 64, 64)
    y = torch.tensor([0, 1, 0, 1])
    batch = {"image": x, "label": y, "boxes": LEFT}

    def outside_energy() -> float:
        model.eval()
        cam = _gradcam(model, x, y, model.head.level).detach()
        model.train()
        return float((cam[:, :, 24:].sum((1, 2)) / cam.sum((1, 2))).mean())

    before = outside_energy()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for step in range(5):
        optimizer.zero_grad()
        total, logs = loss_fn(model(x, y, return_features=True), batch, model)
        total.backward()
        if step == 0:
            grads = [p.grad.abs().sum() for p in model.parameters() if p.grad is not None]
            assert grads and float(sum(grads)) > 0       # lambda = 0: the gradient is the attention term's
        optimizer.step()
    after = outside_energy()
    print(f"out-of-region Grad-CAM energy: {before:.3f} -> {after:.3f}")
    assert after < before - 0.1, (before, after)


def test_lambda_schedule_and_pure_ce():
    _, loss_fn = _model(adaptive=True, lam_min=0.2, lam_rate=0.023)
    part = loss_fn.parts[0]
    assert part.lambda_at(0) == 1.0 and part.lambda_at(10) == pytest.approx(0.77) and part.lambda_at(40) == 0.2
    with pytest.raises(SpecError, match="batch\\['epoch'\\]"):
        part.lambda_at(None)
    model, loss_fn = _model(lam=1.0)
    x, y = torch.rand(2, 3, 64, 64), torch.tensor([0, 1])
    out = model(x, y, return_features=True)
    _, logs = loss_fn(out, {"image": x, "label": y, "boxes": LEFT[:2]}, model)
    assert logs["attention_box.attention"] == 0.0
    assert logs["attention_box.ce"] == pytest.approx(float(F.cross_entropy(out.logits.detach(), y)), rel=1e-5)


def test_predicted_target_and_multilabel():
    model, loss_fn = _model(rules={"0": "inside"}, target="predicted", lam=0.0)
    x, y = torch.rand(2, 3, 64, 64), torch.tensor([0, 0])
    out = model(x, y, return_features=True)
    value = float(loss_fn.parts[0](out, {"image": x, "label": y, "boxes": LEFT[:2]}, model)["attention"].detach())
    cam = _gradcam(model, x, out.logits.detach().argmax(1), model.head.level).detach()
    assert value == pytest.approx(float((1 - cam[:, :, :24].sum((1, 2)) / (cam.sum((1, 2)) + 1e-8)).mean()), rel=1e-4)

    model, loss_fn = _model(num_classes=3, multilabel=True, rules={"0": "inside", "2": "outside"}, lam=0.0)
    x = torch.rand(2, 3, 64, 64)
    y = torch.tensor([[1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])   # image 1: only an unruled class
    out = model(x, y, return_features=True)
    value = float(loss_fn.parts[0](out, {"image": x, "label": y, "boxes": LEFT[:2]}, model)["attention"].detach())
    c0 = _gradcam(model, x[:1], torch.tensor([0]), model.head.level).detach()
    c2 = _gradcam(model, x[:1], torch.tensor([2]), model.head.level).detach()
    # allowed: inside the box for class 0, outside it for class 2; a map without positive energy costs 1
    expected = ((1 - c0[:, :, :24].sum() / (c0.sum() + 1e-8)) + (1 - c2[:, :, 24:].sum() / (c2.sum() + 1e-8))) / 2 / 2
    assert value == pytest.approx(float(expected), rel=1e-4)
    with pytest.raises(SpecError, match="single-label"):
        _model(num_classes=3, multilabel=True, target="predicted")


def test_declares_features_and_errors():
    model, loss_fn = _model(rules={"1": "inside"})
    assert loss_fn.needs_features
    x, y = torch.rand(2, 3, 64, 64), torch.tensor([1, 1])
    with pytest.raises(SpecError, match="return_features=True"):
        loss_fn(model(x, y), {"image": x, "label": y, "boxes": LEFT[:2]}, model)
    model, loss_fn = _model(rules={"Effusion": "inside"})
    with pytest.raises(SpecError, match="'Effusion' is not a class of this model"):
        loss_fn(model(x, y, return_features=True), {"image": x, "label": y, "boxes": LEFT[:2]}, model)
    for bad, match in (({"mode": "energie"}, "did you mean 'energy'"), ({"lam": 1.5}, "lam"),
                       ({"method": "scorecam"}, "re-runs the model"), ({"thresh": 1.0}, "thresh"),
                       ({"rules": {"1": "middle"}}, "unknown rule")):
        with pytest.raises(SpecError, match=match):
            _model(**bad)
