"""Cascading model randomisation (medcam.faithfulness.randomization): layer order, the untouched model,
a NumPy/SciPy evaluation of the similarities, and Quantus's MPRT on the same model, method and seed."""
from __future__ import annotations

import copy

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

import medcam
from medcam.faithfulness.randomization import _stage_indices, randomizable_layers

METHOD = {"name": "hirescam", "layer": 2}     # signed maps at stride 16: 4 x 4 at 64 px, rarely constant


@pytest.fixture
def model():
    from faithfulness_probes import tiny_model

    return tiny_model(size=64)


@pytest.fixture
def batch():
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(9))
    return images, None, [0, 2, 1]


def test_layers_run_from_the_output_to_the_input(model):
    layers = randomizable_layers(model)
    assert layers[0] == "head.fc" and layers[-1] == "backbone.stem.0"
    assert all(hasattr(dict(model.named_modules())[n], "reset_parameters") for n in layers)


def test_stage_selection():
    assert _stage_indices(10, None) == list(range(10))
    assert _stage_indices(10, 4) == [2, 4, 7, 9]      # evenly spaced, ending at the fully randomised model
    assert _stage_indices(3, 5) == [0, 1, 2]


def test_similarities_equal_a_reference_and_the_model_is_untouched(model, batch):
    images, _, targets = batch
    before = copy.deepcopy(model.state_dict())
    metric = medcam.build_metric({"name": "model_randomization", "stages": 3, "seed": 7})
    result = metric.run(model, images, target=targets, method=METHOD)
    for key, value in model.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert result.curves.shape == (3, 3) and len(result.steps) == 3
    assert result.steps[-1] == "backbone.stem.0"
    # the reference: randomise a copy layer by layer (reset_parameters after manual_seed(7)) by hand
    original = medcam.explain(model, images, METHOD, target=targets)
    copy_ = copy.deepcopy(model)
    modules = dict(copy_.named_modules())
    layers = randomizable_layers(model)
    picks = _stage_indices(len(layers), 3)
    expected = []
    for index, name in enumerate(layers):
        torch.manual_seed(7)
        modules[name].reset_parameters()
        if index in picks:
            maps = medcam.explain(copy_, images, METHOD, target=targets)
            expected.append([scipy.stats.spearmanr(original[i].numpy().ravel(), maps[i].numpy().ravel())[0]
                             for i in range(3)])
    expected = np.asarray(expected).T                                      # (B, stages)
    np.testing.assert_allclose(result.curves.numpy(), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.values["spearman"].numpy(), np.nanmean(expected, axis=1), rtol=1e-5,
                               atol=1e-6)


def test_caller_random_state_is_kept(model, batch):
    images, _, targets = batch
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    medcam.build_metric({"name": "model_randomization", "stages": 1})(model, images, target=targets,
                                                                     method=METHOD)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.slow
def test_equal_to_quantus_mprt(model, batch):
    """Quantus re-seeds with ``seed + 1`` before each reset_parameters(): medcam's seed 43 = Quantus's 42."""
    quantus = pytest.importorskip("quantus")
    from faithfulness_probes import LogitsView

    images, _, targets = batch

    def explain(model: nn.Module, inputs: np.ndarray, targets: np.ndarray, **_: object) -> np.ndarray:
        maps = medcam.explain(model.model, torch.as_tensor(inputs), METHOD, target=[int(t) for t in targets])
        return maps[:, None].numpy()

    a_batch = medcam.explain(model, images, METHOD, target=targets)[:, None].numpy()
    mprt = quantus.MPRT(layer_order="top_down", seed=42, abs=False, normalise=False, disable_warnings=True)
    theirs = mprt(model=LogitsView(model).eval(), x_batch=images.numpy(), y_batch=np.asarray(targets),
                  a_batch=a_batch, explain_func=explain, device="cpu", channel_first=True)
    ours = medcam.build_metric({"name": "model_randomization", "seed": 43}).run(model, images, target=targets,
                                                                               method=METHOD)
    layers = [k for k in theirs if k != "original"]
    assert [k.removeprefix("model.") for k in layers] == ours.steps
    np.testing.assert_allclose(ours.curves.numpy(), np.asarray([theirs[k] for k in layers]).T, rtol=1e-5,
                               atol=1e-6)


def test_independent_order_and_last_reduction(model, batch):
    images, _, targets = batch
    last = medcam.build_metric({"name": "model_randomization", "reduce": "last", "stages": 2}).run(
        model, images, target=targets, method=METHOD)
    torch.testing.assert_close(last.values["spearman"], last.curves[:, -1], equal_nan=True)
    independent = medcam.build_metric({"name": "model_randomization", "order": "independent", "stages": 2}).run(
        model, images, target=targets, method=METHOD)
    # independent: the last stage randomises only the stem, so the maps stay closer than after a full cascade
    assert float(independent.curves[:, -1].nanmean()) > float(last.curves[:, -1].nanmean())


def test_errors(model, batch):
    images, _, targets = batch
    with pytest.raises(ValueError, match="needs method"):
        medcam.build_metric("model_randomization")(model, images, target=targets)
    with pytest.raises(ValueError, match="order"):
        medcam.build_metric({"name": "model_randomization", "order": "bottom_up"})
    with pytest.raises(ValueError, match="stages"):
        medcam.build_metric({"name": "model_randomization", "stages": 0})
