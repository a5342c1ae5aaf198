"""``medcam.bench.evaluate``: entries, the ChestX-ray8 tables by hand, box-only and mask data, errors."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.bench.evaluate import (box_threshold_of, chestxray_tables, entries_of, evaluate_localization,
                                   format_evaluation, resolve_methods)
from medcam.bench.localize import HeldOut
from medcam.errors import AttributionError, DataError, UnknownNameError

TINY = {"name": "tiny_cnn", "width": 4}


def _held(masks: torch.Tensor | None) -> HeldOut:
    boxes = [torch.tensor([[0.0, 0, 4, 4], [4.0, 4, 8, 8], [1.0, 1, 3, 3]]), torch.zeros(0, 4),
             torch.tensor([[2.0, 2, 6, 6]])]
    box_labels = [torch.tensor([1, 2, 1]), torch.zeros(0, dtype=torch.long), torch.tensor([0])]
    return HeldOut(torch.rand(3, 3, 8, 8), torch.tensor([1, 0, 0]), masks, boxes, ["a.png", "b.png", "c.png"],
                   box_labels)


def test_entries_are_image_and_class_pairs() -> None:
    e = entries_of(_held(None))
    assert e.index == [0, 0, 2] and e.classes.tolist() == [1, 2, 0]
    assert e.boxes[0].tolist() == [[0, 0, 4, 4], [1, 1, 3, 3]] and e.boxes[1].tolist() == [[4, 4, 8, 8]]


def test_entries_with_masks_skip_images_whose_mask_is_empty() -> None:
    masks = torch.zeros(3, 8, 8, dtype=torch.bool)
    masks[0, 1:3, 1:3] = True
    e = entries_of(_held(masks))
    assert e.index == [0, 0]


def _block(*rect: int) -> torch.Tensor:
    m = torch.zeros(10, 10)
    x0, y0, x1, y1 = rect
    m[y0:y1, x0:x1] = 1.0
    return m


def test_chestxray_tables_match_a_hand_computation() -> None:
    # entry 1: map block = box (2, 2, 6, 6) at both levels 60 and 180 (two identical predicted boxes);
    #   GT (2, 2, 6, 8): IoU = 16 / 24 = 0.667, IoBB = 16 / 16 = 1
    # entry 2: map block (0, 0, 2, 2), GT (4, 4, 8, 8): no overlap
    maps = torch.stack([_block(2, 2, 6, 6), _block(0, 0, 2, 2)])
    gt = [torch.tensor([[2.0, 2, 6, 8]]), torch.tensor([[4.0, 4, 8, 8]])]
    t = chestxray_tables(maps, gt, ["Mass", "Nodule"])
    iou, iobb = t["iou"], t["iobb"]
    assert list(iou["Mass"]["acc"]) == ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7"]
    assert list(iobb["Mass"]["acc"]) == ["0.1", "0.25", "0.5", "0.75", "0.9"]
    for t_, found in zip(iou["Mass"]["acc"], [1, 1, 1, 1, 1, 1, 0]):   # 0.667 > T except T = 0.7
        assert iou["Mass"]["acc"][t_] == found
        assert iou["Mass"]["afp"][t_] == (0 if found else 2)           # both predicted boxes unmatched at 0.7
    assert all(v == 1 for v in iobb["Mass"]["acc"].values()) and all(v == 0 for v in iobb["Mass"]["afp"].values())
    assert all(v == 0 for v in iou["Nodule"]["acc"].values()) and all(v == 2 for v in iou["Nodule"]["afp"].values())
    assert iou["all"]["acc"]["0.5"] == 0.5 and iou["all"]["afp"]["0.7"] == 2.0
    assert iou["all"]["boxes"] == 2 and iou["all"]["images"] == 2


def _box_only_data(n: int = 6) -> list[dict]:
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        boxes = torch.tensor([[4.0, 4, 20, 20]]) if i % 3 else torch.zeros(0, 4)
        items.append({"image": torch.rand(3, 32, 32, generator=g), "label": i % 2, "boxes": boxes,
                      "box_labels": torch.full((boxes.shape[0],), 1, dtype=torch.long), "path": f"im{i}.png"})
    return items


def test_box_only_data_get_the_nih_and_sr_readouts() -> None:
    model = medcam.build_model({"backbone": TINY, "num_classes": 2, "class_names": ["No Finding", "Mass"],
                                "preprocess": {"size": 32}})
    r = evaluate_localization(model, _box_only_data(), batch_size=2)
    assert r["ground_truth"] == "boxes" and r["n_images"] == 6 and r["n_entries"] == 4
    assert r["classes"] == {"Mass": 4} and list(r["methods"]) == ["gradcam"]
    row = r["methods"]["gradcam"]
    assert row["pxap"] is None and 0 <= row["max_box_acc_v2"] <= 100 and row["n_images"] == 4
    assert row["sr"]["threshold"] == 0.83 and row["sr"]["n"] == 4 and set(row["sr"]["per_class"]) == {"Mass"}
    assert row["chestxray8"]["iobb"]["Mass"]["boxes"] == 4
    text = format_evaluation(r)
    assert "MaxBoxAccV2" in text and "PxAP" not in text and "T(IoBB)" in text and "threshold 0.83" in text


def test_mask_data_get_pxap_and_no_chestxray_table() -> None:
    model = medcam.build_model({"backbone": TINY, "num_classes": 2, "preprocess": {"size": 32}})
    items = _box_only_data()
    for it in items:
        it["mask"] = torch.zeros(32, 32, dtype=torch.bool)
        for x0, y0, x1, y1 in it["boxes"].long().tolist():
            it["mask"][y0:y1, x0:x1] = True
    r = evaluate_localization(model, items, batch_size=2, target="predicted")
    row = r["methods"]["gradcam"]
    assert r["ground_truth"] == "masks" and r["target"] == "predicted"
    assert 0 <= row["pxap"] <= 100 and "chestxray8" not in row and "sr" not in row


def test_head_declares_its_box_threshold() -> None:
    wsol = medcam.build_model({"backbone": TINY, "num_classes": 2, "preprocess": {"size": 32},
                               "head": {"name": "fpm", "hidden": 8, "box_threshold": 0.6, "stats": "image"},
                               "attribution": {"name": "fpm", "key": "foreground"}})
    assert box_threshold_of(wsol) == 0.6
    assert box_threshold_of(medcam.build_model({"backbone": TINY, "num_classes": 2})) is None
    r = evaluate_localization(wsol, _box_only_data(), batch_size=2)
    assert list(r["methods"]) == ["fpm(key=foreground)", "gradcam"]   # the model's own map first, then Grad-CAM
    assert r["methods"]["fpm(key=foreground)"]["sr"]["threshold"] == 0.6


def test_faithfulness_rows_next_to_the_localization() -> None:
    model = medcam.build_model({"backbone": TINY, "num_classes": 2, "preprocess": {"size": 32}})
    r = evaluate_localization(model, _box_only_data(), batch_size=2, faithfulness=True, faithfulness_images=3)
    f = r["faithfulness"]
    assert f["n_images"] == 3 and set(f["rows"]) == {"gradcam", "random_map"}
    deletion = [c["key"] for c in f["columns"] if c["metric"].startswith("deletion")][0]
    assert 0.0 <= f["rows"]["gradcam"][deletion] <= 1.0
    assert "Faithfulness and sanity (first 3 scored entries)" in format_evaluation(r)


def test_bad_methods_and_data_are_refused() -> None:
    model = medcam.build_model({"backbone": TINY, "num_classes": 2, "preprocess": {"size": 32}})
    with pytest.raises(UnknownNameError, match="did you mean 'gradcam'"):
        resolve_methods(model, ["gradcma"])
    wsol_only = ["fpm"]  # the FPM readout needs a foreground-map head
    with pytest.raises(AttributionError, match="does not apply"):
        evaluate_localization(model, _box_only_data(), methods=wsol_only, batch_size=2)
    nothing = [dict(it, boxes=torch.zeros(0, 4), box_labels=torch.zeros(0, dtype=torch.long))
               for it in _box_only_data()]
    with pytest.raises(DataError, match="no image has a lesion mask or boxes"):
        evaluate_localization(model, nothing, batch_size=2)
    with pytest.raises(DataError, match="--target"):
        evaluate_localization(model, _box_only_data(), target="predicted_class")
