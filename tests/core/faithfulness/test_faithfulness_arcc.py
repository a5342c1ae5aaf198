"""Complexity, Coherency, ADCC and ARCC (medcam.faithfulness.arcc): NumPy evaluations of Poppi et al.'s
definitions and pytorch-grad-cam's ARCC on the same model, maps and targets."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from medcam.faithfulness.arcc import harmonic_mean

METHOD = {"name": "gradcam", "layer": 1}      # stride 8: 4 x 4 maps at 32 px


def test_complexity_and_coherency_equal_numpy(model, batch):
    images, maps, targets = batch
    got = medcam.build_metric("complexity")(maps=maps)
    np.testing.assert_allclose(got.numpy(), np.abs(maps.numpy()).reshape(3, -1).mean(1), rtol=1e-6)
    coherency = medcam.build_metric("coherency")(model, images, maps, target=targets, method=METHOD)
    again = medcam.explain(model, images * maps[:, None], METHOD, target=targets).double().numpy()
    for i in range(3):
        r = np.corrcoef(again[i].ravel(), maps[i].double().numpy().ravel())[0, 1]
        assert float(coherency[i]) == pytest.approx((r + 1) / 2, abs=1e-6)


def test_adcc_is_the_harmonic_mean_of_its_parts(model, batch):
    images, maps, targets = batch
    result = medcam.build_metric("adcc").run(model, images, maps, target=targets, method=METHOD)
    coh, com, drop = (result.values[k].double().numpy() for k in ("coherency", "complexity", "average_drop"))
    expected = 3 / (1 / coh + 1 / (1 - com) + 1 / (1 - drop / 100))
    np.testing.assert_allclose(result.scores.numpy(), expected, rtol=1e-5)


def test_harmonic_mean_by_hand():
    # 3 / (1/0.5 + 1/1 + 1/0.25) = 3 / 7; a zero term gives 0
    got = harmonic_mean(torch.tensor([0.5, 0.5]), torch.tensor([1.0, 1.0]), torch.tensor([0.25, 0.0]))
    torch.testing.assert_close(got, torch.tensor([3 / 7, 0.0], dtype=torch.float64))


@pytest.mark.slow
def test_arcc_equals_pytorch_grad_cam(grad_cam_road, model, batch):
    """Same maps in, grad-cam's GradCAM vs medcam's gradcam for the coherency maps: equal but for the
    resize (cv2 INTER_LINEAR vs torch bilinear, within 1e-3), hence the tolerance. Logit scores (grad-cam's
    CAM and ROAD share one target; medcam's Grad-CAM explains the logit). The maps have distinct values
    (Grad-CAM plus a small ramp), so both remove the same pixels (docs/attribution.md: ties)."""
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.metrics.arcc import ARCC
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from faithfulness_probes import LogitsView

    images, _, targets = batch
    maps = medcam.explain(model, images, METHOD, target=targets)
    maps = (maps + 1e-3 * torch.linspace(0, 1, maps[0].numel()).view_as(maps[0])).clamp(0, 1)
    view = LogitsView(model).eval()
    with GradCAM(model=view, target_layers=[model.backbone.stages[1]]) as base:
        theirs = ARCC(base)(images, maps.numpy(), [ClassifierOutputTarget(t) for t in targets], view)
    ours = medcam.build_metric({"name": "arcc", "noise": 0.0, "score": "logit"}).run(
        model, images, maps, target=targets, method=METHOD)
    np.testing.assert_allclose(ours.scores.numpy(), theirs, rtol=0, atol=5e-3)
    assert int((ours.scores > 0.05).sum()) >= 2
