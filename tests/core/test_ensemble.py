"""Fold ensembles: mean logits, exact CAM, Grad-CAM by hand, save/load, explain, errors."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.ensemble import MedcamEnsemble, ensemble_of
from medcam.errors import CheckpointError, SpecError

SPEC = {"name": "tiny_classifier", "num_classes": 3, "class_names": ["a", "b", "c"], "preprocess": {"size": 64}}


@pytest.fixture(scope="module")
def members():
    out = []
    for seed in range(3):
        torch.manual_seed(seed)
        out.append(medcam.build_model(SPEC).eval())
    return out


@pytest.fixture(scope="module")
def ensemble(members):
    return ensemble_of(members)


def test_logits_are_the_members_mean_and_members_are_views(members, ensemble):
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        expected = torch.stack([m(x).logits for m in members]).mean(0)
        assert torch.allclose(ensemble(x).logits, expected, atol=1e-6)
        assert torch.allclose(ensemble.member(1)(x).logits, members[1](x).logits, atol=1e-6)
    assert ensemble.size == 3 and ensemble.feature_info.channels() == [48, 96, 192, 384]
    assert isinstance(ensemble, medcam.MedcamModel) and ensemble.spec["ensemble"] == {"members": 3}


def test_cam_of_the_ensemble_is_the_mean_of_the_members_cams(members, ensemble):
    x = torch.rand(2, 3, 64, 64)
    cam = medcam.explain(ensemble, x, "cam", target=2, raw=True)
    expected = torch.stack([medcam.explain(m, x, "cam", target=2, raw=True) for m in members]).mean(0)
    assert torch.allclose(cam, expected, atol=1e-5)


def test_gradcam_of_the_ensemble_adds_the_members_weighted_sums_before_the_relu(members, ensemble):
    x = torch.rand(2, 3, 64, 64)
    sums = []
    for m in members:  # by hand: S_m = sum_c mean_hw(dz/dA_c) A_c, with z the ensemble's (mean) logit
        feats = m.forward_features(x)
        acts = feats[-1].detach().requires_grad_(True)
        score = m.head(feats[:-1] + [acts]).logits[:, 1].sum() / len(members)
        (grad,) = torch.autograd.grad(score, acts)
        sums.append((grad.mean((2, 3), keepdim=True) * acts).sum(1).detach())
    expected = torch.relu(torch.stack(sums).sum(0))
    got = medcam.explain(ensemble, x, "gradcam", target=1, raw=True)
    assert torch.allclose(got, expected, atol=1e-5)


def test_save_load_build_and_explain_like_one_model(ensemble, tmp_path):
    from medcam.inference import Explainer

    path = medcam.save(ensemble, tmp_path / "model.pt")
    loaded = medcam.load(path)
    assert isinstance(loaded, MedcamEnsemble) and loaded.spec == ensemble.spec
    assert isinstance(medcam.build_model(loaded.spec), MedcamEnsemble)
    record = Explainer.from_checkpoint(path).run(torch.rand(70, 90, 3).numpy())
    assert record["result"] == "ok" and record["diagnosis"] in ("a", "b", "c") and record["image_size"] == [70, 90]


def test_errors(members):
    with pytest.raises(CheckpointError, match="at least 2 models"):
        ensemble_of(members[:1])
    other = medcam.build_model({**SPEC, "preprocess": {"size": 32}})
    with pytest.raises(CheckpointError, match="model 2 has another spec than model 1 .*preprocess"):
        ensemble_of([members[0], other])
    with pytest.raises(SpecError, match="ensemble.members is 2 but 3 models"):
        MedcamEnsemble({**members[0].spec, "ensemble": {"members": 2}}, members)
