"""ROAD (medcam.faithfulness.road): the removal sets against NumPy percentiles, the values against a
NumPy evaluation, and against pytorch-grad-cam's ROAD metrics (same model, maps, targets; noise 0)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from medcam.faithfulness.imputation import linear_impute
from medcam.faithfulness.perturb import removal_count, road_removal


@pytest.mark.parametrize("fraction", [0.1, 0.3, 0.55, 0.9])
@pytest.mark.parametrize("size", [8, 7])
def test_removal_sets_of_distinct_values_follow_numpy_percentiles(fraction, size):
    maps = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0))
    for i in range(3):
        m = maps[i].numpy().astype(np.float64)
        morf = m >= np.percentile(m, 100 * (1 - fraction))
        lerf = m <= np.percentile(m, 100 * fraction)
        np.testing.assert_array_equal(road_removal(maps, fraction, True)[i].numpy(), morf)
        np.testing.assert_array_equal(road_removal(maps, fraction, False)[i].numpy(), lerf)
    assert removal_count(64, 0.25, True) == 16 and removal_count(64, 0.1, True) == 7   # ceil(0.9 * 63) = 57


def test_ties_remove_exactly_the_count_at_random():
    """A map that is zero on 3/4 of the image: MoRF 50% removes the 16 positive pixels and 16 of the zeros."""
    maps = torch.zeros(1, 8, 8)
    maps[0, :2] = torch.linspace(0.1, 1.0, 16).view(2, 8)
    first = road_removal(maps, 0.5, True, torch.Generator().manual_seed(0))[0]
    assert int(first.sum()) == removal_count(64, 0.5, True) == 32
    assert bool(first[:2].all())
    second = road_removal(maps, 0.5, True, torch.Generator().manual_seed(1))[0]
    assert not torch.equal(first, second)                   # which zeros go is drawn at random


def test_values_equal_a_numpy_evaluation(model, batch):
    images, maps, targets = batch
    fractions = [0.25, 0.5]
    result = medcam.build_metric({"name": "road", "fractions": fractions, "noise": 0.0, "score": "logit"}).run(
        model, images, maps, target=targets)

    def score(x: np.ndarray, t: int) -> float:
        with torch.no_grad():
            return float(model(torch.from_numpy(x[None]).float()).logits[0, t])

    for i, t in enumerate(targets):
        x, m = images[i].double().numpy(), maps[i].double().numpy()
        base = score(x, t)
        morf = [score(linear_impute(x, m >= np.percentile(m, 100 * (1 - f))), t) - base for f in fractions]
        lerf = [score(linear_impute(x, m <= np.percentile(m, 100 * f)), t) - base for f in fractions]
        np.testing.assert_allclose(result.curves[i].numpy(), morf + lerf, rtol=1e-4, atol=1e-5)
        assert float(result.values["morf"][i]) == pytest.approx(np.mean(morf), rel=1e-4, abs=1e-5)
        assert float(result.values["lerf"][i]) == pytest.approx(np.mean(lerf), rel=1e-4, abs=1e-5)
        assert float(result.scores[i]) == pytest.approx((np.mean(lerf) - np.mean(morf)) / 2, rel=1e-4, abs=1e-5)


@pytest.mark.slow
def test_equal_to_pytorch_grad_cam(grad_cam_road, model, batch):
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from faithfulness_probes import LogitsView

    images, maps, targets = batch
    view = LogitsView(model).eval()
    cam_targets = [ClassifierOutputTarget(t) for t in targets]
    cams = maps.numpy()
    percentiles = [20, 50, 90]                   # grad-cam keeps pixels below the percentile: removes 1 - p
    fractions = [1 - p / 100 for p in percentiles]
    metric = medcam.build_metric({"name": "road", "fractions": fractions, "noise": 0.0, "score": "logit"})
    ours = metric.run(model, images, maps, target=targets)
    morf = grad_cam_road.ROADMostRelevantFirstAverage(percentiles)(images, cams, cam_targets, view)
    lerf = grad_cam_road.ROADLeastRelevantFirstAverage(percentiles)(images, cams, cam_targets, view)
    combined = grad_cam_road.ROADCombined(percentiles)(images, cams, cam_targets, view)
    np.testing.assert_allclose(ours.values["morf"].numpy(), morf, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.values["lerf"].numpy(), lerf, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(ours.values["road"].numpy(), combined, rtol=1e-4, atol=1e-5)
    single = grad_cam_road.ROADMostRelevantFirst(percentile=80)(images, cams, cam_targets, view)
    ours = medcam.build_metric({"name": "road", "order": "morf", "fractions": [0.2], "noise": 0.0,
                                "score": "logit"}).run(model, images, maps, target=targets)
    np.testing.assert_allclose(ours.scores.numpy(), single, rtol=1e-4, atol=1e-5)
    assert list(ours.values) == ["morf", "road", "lerf"]


def test_noise_is_seeded(model, batch):
    images, maps, targets = batch
    spec = {"name": "road", "fractions": [0.5], "noise": 0.05, "seed": 3}
    first = medcam.build_metric(spec)(model, images, maps, target=targets)
    again = medcam.build_metric(spec)(model, images, maps, target=targets)
    other = medcam.build_metric({**spec, "seed": 4})(model, images, maps, target=targets)
    assert torch.equal(first, again) and not torch.equal(first, other)


def test_errors():
    with pytest.raises(ValueError, match="order"):
        medcam.build_metric({"name": "road", "order": "both"})
    with pytest.raises(medcam.errors.SpecError, match=r"fractions in \(0, 1\)"):
        medcam.build_metric({"name": "road", "fractions": [0.5, 1.0]})
    with pytest.raises(ValueError, match="noise"):
        medcam.build_metric({"name": "road", "noise": -1.0})
