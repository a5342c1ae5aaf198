"""The fpm head: shapes at any input size, the SR/BAS equations, ablation switches, frozen re-score."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy import stats

import medcam
from medcam.errors import SpecError

from wsol_models import warm_batchnorm


def _model(size: int = 64, **head):
    """tiny_cnn + fpm head with batch-norm statistics set from one batch (``warm_batchnorm``)."""
    spec = {"backbone": {"name": "tiny_cnn", "width": 8}, "head": {"name": "fpm", "hidden": 16, **head},
            "num_classes": 3, "preprocess": {"size": size}}
    return warm_batchnorm(medcam.build_model(spec))


def _np_minmax(a: np.ndarray) -> np.ndarray:
    return (a - a.min()) / (a.max() - a.min() + 1e-10)


@pytest.mark.parametrize("size", [(64, 64), (96, 160), (32, 32)])
def test_shapes_at_any_input_size(size):
    model = _model().eval()
    h, w = size
    out = model(torch.rand(2, 3, h, w))
    assert out.logits.shape == (2, 3)
    assert out.maps["fpm"].shape == (2, 3, h // 16, w // 16)      # fpm_level -2: stride 16
    assert out.maps["foreground"].shape == (2, 1, h // 16, w // 16)
    assert out.aux["class_maps"].shape == (2, 3, h // 32, w // 32)
    assert out.aux["score_2"].shape == (2, 3)
    assert float(out.logits.detach().min()) >= 0  # the branch ends with a ReLU
    fpm = out.maps["fpm"].detach()
    assert float(fpm.min()) >= 0 and float(fpm.max()) <= 1


def test_equations_against_a_numpy_reference():
    model = _model().eval()
    head = model.head
    x = torch.rand(2, 3, 64, 64)
    y = torch.tensor([2, 0])
    with torch.no_grad():
        feats = model.forward_features(x)
        out = head(feats, labels=y)
        fmap = feats[head.fpm_level]
        m_a = torch.sigmoid(head.loc_a[0](fmap)).numpy()
    att = np.stack([_np_minmax(m_a[b, int(y[b])]) for b in range(2)])[:, None]   # (B, 1, h, w)
    mu, sd = att.mean(), att.std(ddof=1)
    g = np.stack([_np_minmax(stats.norm.pdf(att[b], mu, sd)) for b in range(2)])
    t = np.stack([_np_minmax(stats.t.pdf(att[b], 5.0)) for b in range(2)])
    with torch.no_grad():
        m_b = torch.sigmoid(head.loc_b[0](fmap * torch.from_numpy(g).float())).numpy()
        m_d = torch.sigmoid(head.loc_d[0](fmap * torch.from_numpy(t).float())).numpy()
    total = m_a + m_b + m_d
    fpm = np.stack([[_np_minmax(total[b, c]) for c in range(3)] for b in range(2)])
    m = np.stack([fpm[b, int(y[b])] for b in range(2)])[:, None]
    assert np.allclose(out.maps["fpm"].numpy(), fpm, atol=1e-5)
    assert np.allclose(out.maps["foreground"].numpy(), m, atol=1e-5)
    a = out.aux["class_maps"]
    pooled = F.avg_pool2d(torch.from_numpy(m).float(), 2)          # BAS: AvgPool2d(2) between the levels
    assert torch.allclose(out.aux["score_2"], (a * pooled).mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(out.logits, a.mean(dim=(2, 3)))


def test_bas_ablation_is_plain_sigmoid_map():
    model = _model(modulation="none", fusion=False).eval()
    assert not hasattr(model.head, "loc_b")
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        out = model.head(feats, labels=torch.tensor([1, 1]))
        m_a = torch.sigmoid(model.head.loc_a[0](feats[model.head.fpm_level]))
    assert torch.allclose(out.maps["fpm"], m_a)
    assert torch.allclose(out.maps["foreground"], m_a[:, 1:2])
    fused = _model(modulation="none", fusion=True).eval()
    fused.load_state_dict(model.state_dict())
    with torch.no_grad():
        fpm = fused(x, torch.tensor([1, 1])).maps["fpm"]
    assert torch.allclose(fpm.flatten(2).amax(2), torch.ones(2, 3), atol=1e-5)  # per-class min-max


def test_without_labels_the_map_averages_the_top_k_classes():
    model = _model(top_k=2).eval()
    with torch.no_grad():
        out = model(torch.rand(3, 3, 64, 64))
    top = out.logits.topk(2, dim=1).indices
    expected = torch.stack([out.maps["fpm"][b, top[b]].mean(0) for b in range(3)])[:, None]
    assert torch.allclose(out.maps["foreground"], expected, atol=1e-6)


def test_image_stats_make_maps_batch_independent():
    x = torch.rand(3, 3, 64, 64)
    y = torch.tensor([0, 1, 2])
    gaps = {}
    for stats_mode in ("image", "batch"):
        model = _model(stats=stats_mode).eval()
        with torch.no_grad():
            together = model(x, y).maps["fpm"][0]
            alone = model(x[:1], y[:1]).maps["fpm"][0]
        gaps[stats_mode] = float((together - alone).abs().max())
    assert gaps["image"] < 1e-3 < 1e-2 < gaps["batch"]  # float noise vs the batch's Gaussian statistics


def test_rescore_reproduces_the_logits_and_is_frozen():
    model = _model().eval()
    x = torch.rand(2, 3, 64, 64)
    feats = model.forward_features(x)
    out = model.head(feats)
    fmap = feats[model.head.fpm_level].detach().requires_grad_(True)
    frozen = model.head.rescore(model.backbone, fmap)
    assert torch.allclose(frozen, out.logits, atol=1e-5)
    frozen.sum().backward()
    assert fmap.grad is not None and fmap.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.parameters())
    live = model.head.rescore(model.backbone, fmap, frozen=False)
    live.sum().backward()
    assert model.head.classifier[0].weight.grad is not None


def test_same_level_needs_no_forward_from_and_boxes():
    model = _model(fpm_level=-1, cls_level=-1).eval()
    out = model(torch.rand(2, 3, 64, 64))
    assert out.maps["fpm"].shape[-2:] == out.aux["class_maps"].shape[-2:]
    fmap = model.forward_features(torch.rand(2, 3, 64, 64))[-1]
    assert model.head.rescore(model.backbone, fmap).shape == (2, 3)
    boxes = model.head.boxes(out, (64, 64))
    assert len(boxes) == 2 and all(b.shape == (1, 4) for b in boxes)
    with pytest.raises(KeyError, match="no 'cams'"):
        model.head.boxes(out, (64, 64), key="cams")


def test_fpm_attribution_reads_the_foreground_map():
    model = _model(top_k=1).eval()
    x = torch.rand(2, 3, 64, 64)
    maps = medcam.explain(model, x, {"name": "fpm", "key": "foreground"})
    assert maps.shape == (2, 64, 64)
    per_class = medcam.explain(model, x, "fpm", target=[0, 2])
    assert per_class.shape == (2, 64, 64)


@pytest.mark.parametrize("head, match", [
    ({"fpm_level": -1, "cls_level": -2}, "comes after"),
    ({"modulation": "nonlinaer"}, "did you mean 'nonlinear'"),
    ({"stats": "global"}, "batch, image"),
    ({"fpm_level": 7}, "out of range"),
    ({"top_k": 0}, "top_k"),
    ({"box_threshold": 1.5}, "box_threshold"),
    ({"class_activation": "softpls"}, "did you mean 'softplus'"),
])
def test_bad_parameters(head, match):
    with pytest.raises(SpecError, match=match):
        _model(**head)


@pytest.mark.slow
def test_vmamba_wsol_builds_without_arguments_forward_and_backward_at_224():
    model = medcam.build_model("vmamba_wsol")
    assert model.spec["backbone"]["name"] == "vmamba_tiny_sr" and model.spec["head"]["name"] == "fpm"
    x = torch.rand(2, 3, 224, 224)
    out = model(x, torch.tensor([0, 5]), return_features=True)
    assert out.logits.shape == (2, 8)
    assert out.maps["fpm"].shape == (2, 8, 14, 14) and out.maps["foreground"].shape == (2, 1, 14, 14)
    loss = medcam.build_loss(model.spec, num_classes=8)
    total, logs = loss(out, {"image": x, "label": torch.tensor([0, 5])}, model)
    assert np.isfinite(logs["total"]) and set(logs) >= {"foreground_control.foreground", "foreground_control.area"}
    total.backward()
    assert model.head.loc_a[0].weight.grad.abs().sum() > 0
    assert model.backbone.patch_embed[0].weight.grad.abs().sum() > 0


def test_checkpoint_round_trip(tmp_path):
    model = _model(modulation="none", top_k=2)
    medcam.save(model, tmp_path / "fpm.pt")
    loaded = medcam.load(tmp_path / "fpm.pt")
    assert loaded.spec["head"] == model.spec["head"] and loaded.spec["head"]["modulation"] == "none"
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        a, b = model(x), loaded(x)
    assert torch.allclose(a.logits, b.logits) and torch.allclose(a.maps["foreground"], b.maps["foreground"])


def test_softplus_class_maps_keep_a_gradient_where_relu_maps_are_dead():
    grads = {}
    for activation in ("relu", "softplus"):
        torch.manual_seed(0)
        model = _model(class_activation=activation).train()
        last = model.head.classifier[4]
        with torch.no_grad():
            last.bias.fill_(-10.0)                                    # every class map negative before the activation
        out = model(torch.rand(4, 3, 64, 64))
        F.cross_entropy(out.logits, torch.tensor([0, 1, 2, 0])).backward()
        grads[activation] = float(last.weight.grad.abs().sum())
        assert float(out.logits.detach().min()) >= 0                # both keep the maps non-negative
    assert grads["relu"] == 0.0                                       # dead: logit 0, no gradient, never recovers
    assert grads["softplus"] > 0.0
