from __future__ import annotations

import logging

import pytest
import torch
from medcam_data_trees import noise_image, rect_mask, save_png

from medcam.data.base import MedcamDataset, Record, collate
from medcam.data.preprocess import preprocess_image
from medcam.errors import DataError


def _files(tmp_path, n=6, h=20, w=30):
    return [str(save_png(tmp_path / f"img ({i}).png", noise_image(h, w, seed=i))) for i in range(n)]


def test_item_contract_and_box_scaling(tmp_path):
    paths = _files(tmp_path, 2)
    recs = [Record(paths[0], 1, boxes=((100.0, 50.0, 300.0, 150.0),), box_labels=(1,), box_reference=(200, 300)),
            Record(paths[1], 0)]
    ds = MedcamDataset(recs, ["a", "b"], preprocess={"in_chans": 1, "preprocess": {"size": [10, 15]}})
    item = ds[0]
    assert set(item) == {"image", "label", "boxes", "box_labels", "path", "index"}
    assert item["image"].shape == (1, 10, 15) and item["image"].dtype == torch.float32
    assert item["label"] == 1 and item["path"] == paths[0] and item["index"] == 0
    # reference 300x200 -> file 30x20 -> input 15x10: a factor 1/20
    assert item["boxes"].tolist() == [[5.0, 2.5, 15.0, 7.5]] and item["box_labels"].tolist() == [1]
    assert ds[1]["boxes"].shape == (0, 4) and ds.annotated() == [0]


def test_dataset_items_equal_single_image_preprocessing(tmp_path):
    paths = _files(tmp_path, 2, h=23, w=41)
    spec = {"in_chans": 3, "preprocess": {"size": 16, "resize": "pad"}}
    ds = MedcamDataset([Record(p, 0) for p in paths], ["a"], preprocess=spec)
    for i, p in enumerate(paths):
        assert torch.equal(ds[i]["image"], preprocess_image(p, spec).image[0])


def test_collate_stacks_and_keeps_boxes_as_a_list(tmp_path):
    paths = _files(tmp_path, 3)
    masks = [str(save_png(tmp_path / f"m{i}.png", rect_mask(20, 30, (0, 0, 5 * (i + 1), 5)))) for i in range(3)]
    ds = MedcamDataset([Record(p, i % 2, masks=(m,)) for i, (p, m) in enumerate(zip(paths, masks))], ["a", "b"],
                       has_masks=True, boxes_from_mask=True, preprocess={"size": [20, 30]})
    batch = collate([ds[i] for i in range(3)])
    assert batch["image"].shape == (3, 3, 20, 30) and batch["label"].tolist() == [0, 1, 0]
    assert batch["label"].dtype == torch.int64 and batch["mask"].dtype == torch.bool
    assert [b.tolist() for b in batch["boxes"]] == [[[0, 0, 5, 5]], [[0, 0, 10, 5]], [[0, 0, 15, 5]]]
    assert batch["index"].tolist() == [0, 1, 2] and batch["path"] == paths


def test_multilabel_items_and_targets(tmp_path):
    paths = _files(tmp_path, 3)
    ds = MedcamDataset([Record(paths[0], (0, 2)), Record(paths[1], ()), Record(paths[2], (1,))], ["x", "y", "z"],
                       multilabel=True, preprocess={"size": 8})
    assert ds[0]["label"].tolist() == [1.0, 0.0, 1.0] and ds[1]["label"].sum() == 0
    assert ds.targets.tolist() == [[1, 0, 1], [0, 0, 0], [0, 1, 0]]
    assert ds.class_counts() == {"x": 1, "y": 1, "z": 1}
    assert collate([ds[0], ds[1]])["label"].shape == (2, 3)


def test_collate_rejects_mixed_sizes_and_keys():
    a = {"image": torch.zeros(1, 4, 4), "label": 0, "path": "a"}
    with pytest.raises(DataError, match="differ in size"):
        collate([a, {**a, "image": torch.zeros(1, 5, 4)}])
    with pytest.raises(DataError, match="different keys"):
        collate([a, {**a, "mask": torch.zeros(4, 4, dtype=torch.bool)}])


def test_bad_labels_are_rejected(tmp_path):
    paths = _files(tmp_path, 1)
    with pytest.raises(DataError, match="label 3 is not a class index in 0..1"):
        MedcamDataset([Record(paths[0], 3)], ["a", "b"])


def _truncate(path: str) -> None:
    data = open(path, "rb").read()
    open(path, "wb").write(data[: len(data) // 2])


def test_corrupt_image_raises_naming_the_file_or_is_replaced_when_skipping(tmp_path, caplog):
    paths = _files(tmp_path, 3)
    _truncate(paths[1])
    strict = MedcamDataset([Record(p, 0) for p in paths], ["a"], preprocess={"size": 8})
    with pytest.raises(DataError, match=r"img \(1\).png: corrupt image data"):
        strict[1]
    lenient = MedcamDataset([Record(p, 0) for p in paths], ["a"], preprocess={"size": 8}, on_error="skip")
    with caplog.at_level(logging.WARNING, logger="medcam.data"):
        item = lenient[1]
    assert item["path"] == paths[2] and "img (1).png: corrupt image data" in caplog.text


def test_full_check_drops_corrupt_files_at_construction(tmp_path, caplog):
    paths = _files(tmp_path, 3)
    _truncate(paths[0])
    with caplog.at_level(logging.WARNING, logger="medcam.data"):
        ds = MedcamDataset([Record(p, 0) for p in paths], ["a"], check="full", on_error="skip")
    assert ds.paths == paths[1:] and "(skipped)" in caplog.text
    with pytest.raises(DataError, match="corrupt"):
        MedcamDataset([Record(p, 0) for p in paths], ["a"], check="full")
    with pytest.raises(DataError, match="check: expected one of header, full, none, got 'ful'; did you mean 'full'"):
        MedcamDataset([Record(p, 0) for p in paths], ["a"], check="ful")


def test_fixed_splits_are_kept_and_the_rest_carved(tmp_path):
    paths = _files(tmp_path, 12)
    recs = [Record(p, i % 2, split="test" if i < 2 else "train") for i, p in enumerate(paths)]
    ds = MedcamDataset(recs, ["a", "b"], check="none")
    parts = ds.splits(val=0.2, test=0.5, seed=0)
    assert parts["test"] == [0, 1] and len(parts["val"]) == 2 and len(parts["train"]) == 8
    folds = ds.folds(5, seed=0)
    assert all(f["test"] == [0, 1] for f in folds)
    assert sorted(i for f in folds for i in f["val"]) == list(range(2, 12))
    with pytest.raises(DataError, match="leaves nothing to train on"):
        MedcamDataset([Record(p, 0) for p in paths], ["a"], check="none").splits(val=0.5, test=0.5)


def test_subset_and_random_crop_augmentation(tmp_path):
    paths = _files(tmp_path, 4, h=24, w=24)
    ds = MedcamDataset([Record(p, i % 2) for i, p in enumerate(paths)], ["a", "b"],
                       preprocess={"size": 16, "resize_to": 20})
    sub = ds.subset([3, 1], augment={"random_crop": True})
    assert len(sub) == 2 and sub.paths == [paths[3], paths[1]] and sub.targets.tolist() == [1, 1]
    torch.manual_seed(0)
    crops = {tuple(sub[0]["image"][0, 0, :3].tolist()) for _ in range(6)}
    assert len(crops) > 1  # random windows in training
    assert torch.equal(ds[3]["image"], ds[3]["image"]) and ds.augment is None  # centred and fixed otherwise
    with pytest.raises(DataError, match="out of range"):
        ds.subset([7])


def test_huge_image_with_mask_and_reference_boxes_is_reduced_consistently(tmp_path):
    """An image above medcam.limits.REDUCE_ABOVE_PIXELS is read reduced; its mask is reduced alike and
    boxes given on the original keep their place: the item is what preprocess_image gives."""
    h, w = 4200, 4100
    image = save_png(tmp_path / "huge.png", (rect_mask(h, w, (2000, 1000, 3000, 2000)) * 200).astype("uint8"))
    mask = save_png(tmp_path / "huge_mask.png", rect_mask(h, w, (2000, 1000, 3000, 2000)))
    small = save_png(tmp_path / "small.png", noise_image(40, 40, seed=1))
    spec = {"in_chans": 1, "preprocess": {"size": 64}}
    recs = [Record(str(image), 0, masks=(str(mask),), boxes=((2000.0, 1000.0, 3000.0, 2000.0),), box_labels=(0,)),
            Record(str(small), 1, masks=(str(save_png(tmp_path / "small_mask.png", rect_mask(40, 40))),))]
    ds = MedcamDataset(recs, ["a", "b"], has_masks=True, preprocess=spec, check="full")
    item = ds[0]
    assert torch.equal(item["image"], preprocess_image(image, spec).image[0])
    expected = torch.tensor([2000 * 64 / w, 1000 * 64 / h, 3000 * 64 / w, 2000 * 64 / h])
    torch.testing.assert_close(item["boxes"][0], expected, atol=0.6, rtol=0)
    rows, cols = item["mask"].nonzero().unbind(1)
    assert abs(int(cols.min()) - expected[0]) <= 1 and abs(int(rows.max()) + 1 - expected[3]) <= 1


def test_collate_of_items_with_only_image_and_label():
    """A user's own data set of ``{"image", "label"}`` items (the documented minimum) batches: no "path" needed."""
    items = [{"image": torch.full((3, 4, 4), float(i)), "label": torch.tensor(i % 2)} for i in range(3)]
    batch = collate(items)
    assert set(batch) == {"image", "label"}
    assert batch["image"].shape == (3, 3, 4, 4) and batch["label"].tolist() == [0, 1, 0]
