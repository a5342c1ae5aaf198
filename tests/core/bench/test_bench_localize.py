"""Per-model evaluation: which methods apply, maps per image, scores against the one-shot metrics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from medcam.bench.localize import (HeldOut, at_thresholds, candidate_methods, classify, compute_maps, load_heldout,
                                   format_localization, localization_summary, method_label, probe_method,
                                   score_maps)
from medcam.data.synthetic import SyntheticLesions
from medcam.bench.baselines import center_gaussian_maps
from medcam.metrics import max_box_acc, max_box_acc_v2, pxap
from medcam.registry import attributions

TINY = {"name": "tiny_cnn", "width": 4}


@pytest.fixture(scope="module")
def held() -> HeldOut:
    return load_heldout(SyntheticLesions((2, 3, 3), size=48, seed=0), batch_size=3)


@pytest.fixture(scope="module")
def linear_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return medcam.build_model({"backbone": TINY, "num_classes": 3}).eval()


@pytest.fixture(scope="module")
def fpm_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return medcam.build_model({"backbone": TINY, "head": {"name": "fpm", "hidden": 8, "stats": "image"},
                               "num_classes": 3, "attribution": {"name": "fpm", "key": "foreground"}}).eval()


def test_heldout_lesion_index_skips_empty_masks(held: HeldOut) -> None:
    assert len(held) == 8 and held.size == (48, 48)
    normal = [i for i in range(8) if int(held.labels[i]) == 0]
    assert len(normal) == 2 and not set(normal) & set(held.lesion)
    assert len(held.lesion) == 6 and all(held.boxes[i].shape[0] >= 1 for i in held.lesion)


def test_method_label() -> None:
    assert method_label({"name": "gradcam", "layer": None}, {"name": "gradcam", "layer": None}) == "gradcam"
    assert method_label({"name": "fpm", "key": "foreground"}, {"name": "fpm", "key": "fpm"}) == "fpm(key=foreground)"
    assert method_label({"name": "scorecam", "progress": False}, {"name": "scorecam", "progress": True}) == "scorecam"


def test_candidate_methods(linear_model, fpm_model) -> None:
    labels = [label for label, _ in candidate_methods(linear_model, "all", ["scorecam"])]
    assert labels == [n for n in attributions.list() if n != "scorecam"]
    wsol = dict(candidate_methods(fpm_model, "all", []))
    assert "fpm(key=foreground)" in wsol and wsol["fpm(key=foreground)"]["key"] == "foreground"
    assert wsol["scorecam"]["progress"] is False          # the benchmark shows its own progress
    chosen = candidate_methods(linear_model, ["gradcam", {"name": "random", "mode": "noise"}], [])
    assert [label for label, _ in chosen] == ["gradcam", "random(mode=noise)"]


def test_probe_reports_why_a_method_does_not_apply(held, linear_model, fpm_model) -> None:
    x, t = held.images[held.lesion[:2]], held.labels[held.lesion[:2]]
    assert probe_method(linear_model, {"name": "gradcam"}, x, t) is None
    assert "output.maps" in probe_method(linear_model, {"name": "fpm", "key": "fpm"}, x, t)
    assert probe_method(fpm_model, {"name": "cam", "layer": None}, x, t) is None  # fpm: a ClassMapHead
    assert probe_method(fpm_model, {"name": "fpm", "key": "foreground"}, x, t) is None


def test_maps_do_not_depend_on_the_batch(held, linear_model) -> None:
    x, t = held.images[held.lesion], held.labels[held.lesion]
    together, seconds = compute_maps(linear_model, {"name": "gradcam"}, x, t, batch_size=6)
    alone, _ = compute_maps(linear_model, {"name": "gradcam"}, x, t, batch_size=1)
    assert together.shape == (6, 48, 48) and seconds >= 0
    assert torch.allclose(together, alone, atol=1e-5)
    assert together.min() >= 0 and together.max() <= 1


def test_scores_equal_the_one_shot_metrics(held) -> None:
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(len(held.lesion), 48, 48, generator=g)
    correct = torch.tensor([True, False] * 4)
    s = score_maps(maps, held, held.lesion, correct, interval=0.01)
    boxes = [held.boxes[i] for i in held.lesion]
    assert s["max_box_acc_v2"] == max_box_acc_v2(maps, boxes)["value"]
    assert s["gt_known_loc"] == max_box_acc(maps, boxes)["value"]
    assert s["pxap"] == pytest.approx(pxap(maps, held.masks[held.lesion]))
    assert s["n_images"] == 6 and 0 <= s["top1_loc"] <= s["gt_known_loc"]
    perfect = score_maps(held.masks[held.lesion].float(), held, held.lesion, None, interval=0.01)
    assert perfect["pxap"] == pytest.approx(100.0) and perfect["pixel_iou"] == pytest.approx(1.0)


def test_at_thresholds_reads_test_curves_at_validation_optima() -> None:
    taus = np.array([0.0, 0.5])

    def curves(a: list, b: list) -> dict:
        return {"thresholds": taus, "all": {d: np.array(a) for d in ("0.3", "0.5", "0.7")},
                "largest": {d: np.array(b) for d in ("0.3", "0.5", "0.7")}}

    test = {"curves": curves([10.0, 40.0], [5.0, 20.0])}
    val = {"curves": curves([90.0, 10.0], [1.0, 2.0])}
    out = at_thresholds(test, val)
    assert out["box_acc_v2_at_val_tau"] == 10.0 and out["gt_known_loc_at_val_tau"] == 20.0
    assert out["val_tau"]["box_acc_v2"]["0.5"] == 0.0 and out["val_tau"]["gt_known_loc"] == 0.5


def test_classify(held, linear_model) -> None:
    out = classify(linear_model, held, ["normal", "benign", "malignant"], batch_size=3)
    with torch.no_grad():
        pred = linear_model(held.images).logits.argmax(1)
    assert torch.equal(out["pred"], pred)
    assert out["metrics"]["accuracy"] == pytest.approx(float((pred == held.labels).float().mean()))


def test_localization_summary_scores_the_method_and_the_floor(held, linear_model) -> None:
    data = SyntheticLesions((2, 3, 3), size=48, seed=0)
    summary = localization_summary(linear_model, data, methods=["gradcam", {"name": "random", "seed": 3}], batch_size=4)
    assert summary["methods"] == ["gradcam", "random(seed=3)"] and summary["n_images"] == len(held.lesion) == 6
    assert list(summary["rows"]) == ["gradcam", "random(seed=3)", "center_gaussian"]
    images, targets = held.images[held.lesion], held.labels[held.lesion]
    maps, _ = compute_maps(linear_model, {"name": "gradcam"}, images, targets, batch_size=4)
    boxes = [held.boxes[i] for i in held.lesion]
    assert summary["rows"]["gradcam"]["max_box_acc_v2"] == max_box_acc_v2(maps, boxes)["value"]
    floor = center_gaussian_maps(6, (48, 48))
    assert summary["rows"]["center_gaussian"]["pxap"] == pytest.approx(pxap(floor, held.masks[held.lesion]))
    assert linear_model.training is False
    text = format_localization(summary)
    assert "centre Gaussian (floor)" in text and "MaxBoxAccV2" in text
    assert f"{summary['rows']['gradcam']['max_box_acc_v2']:.1f}" in text.splitlines()[1]


def test_localization_summary_names_changed_parameters_and_handles_no_lesions(linear_model) -> None:
    no_lesions = SyntheticLesions((3, 0, 0), size=48, seed=0)
    summary = localization_summary(linear_model, no_lesions, methods=[{"name": "gradcam++"}])
    assert summary == {"methods": ["gradcam++"], "n_images": 0, "rows": {}}
    assert "nothing to localize" in format_localization(summary)


def test_box_only_regions_are_the_union_of_the_boxes() -> None:
    from medcam.bench.localize import box_regions

    boxes = [torch.tensor([[0.0, 0, 2, 2], [3.0, 3, 4, 5]]), torch.zeros(0, 4)]
    held = HeldOut(torch.rand(2, 3, 6, 6), torch.tensor([1, 0]), None, boxes, ["a", "b"])
    r = held.regions([0, 1])
    expected = torch.zeros(2, 6, 6, dtype=torch.bool)
    expected[0, 0:2, 0:2] = True
    expected[0, 3:5, 3:4] = True
    assert torch.equal(r, expected) and torch.equal(box_regions(boxes, (6, 6)), expected)
    assert held.lesion == [0]
