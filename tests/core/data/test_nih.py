from __future__ import annotations

import csv
import logging

import pytest
import torch
from medcam_data_trees import NIH_ROWS, write_nih

from medcam.data.nih import NIH_LABELS, NIHChestXray
from medcam.errors import DataError


def _index(ds, name):
    return next(i for i, p in enumerate(ds.paths) if p.endswith(name))


def test_multilabel_task_reads_the_release_files(nih_tree):
    ds = NIHChestXray(nih_tree, preprocess={"in_chans": 1, "preprocess": {"size": 64}})
    assert ds.multilabel and ds.class_names == list(NIH_LABELS) and len(ds) == len(NIH_ROWS)
    assert ds[_index(ds, "00000001_000.png")]["label"].sum() == 0  # No Finding -> all zeros
    item = ds[_index(ds, "00000002_000.png")]
    assert item["label"].nonzero().flatten().tolist() == [NIH_LABELS.index("Effusion"), NIH_LABELS.index("Infiltration")]
    # [x, y, w, h] in 1024-px originals -> (x, y, x+w, y+h) * 64/1024; "Infiltrate" is "Infiltration"
    assert item["boxes"].tolist() == [[32.0, 16.0, 48.0, 24.0], [0.0, 0.0, 8.0, 64.0]]
    assert item["box_labels"].tolist() == [NIH_LABELS.index("Infiltration"), NIH_LABELS.index("Effusion")]
    assert item["image"].shape == (1, 64, 64) and "mask" not in item
    assert sorted(ds.paths[i].rsplit("/", 1)[1] for i in ds.annotated()) == ["00000002_000.png", "00000003_000.png"]
    assert {ds.paths[0].split("/")[-3], ds.paths[-1].split("/")[-3]} == {"images_001", "images_002"}


def test_official_lists_fix_the_test_split_and_val_is_carved_by_patient(nih_tree):
    ds = NIHChestXray(nih_tree)
    parts = ds.splits(val=0.3, seed=0)
    test_names = sorted(ds.paths[i].rsplit("/", 1)[1] for i in parts["test"])
    assert test_names == ["00000003_000.png", "00000004_000.png", "00000006_000.png", "00000007_000.png"]
    a, b = _index(ds, "00000001_000.png"), _index(ds, "00000001_001.png")  # one patient, two images
    assert [a in p for p in parts.values()] == [b in p for p in parts.values()]
    assert len(parts["val"]) >= 2 and len(parts["train"]) >= 4


def test_without_lists_splits_are_patient_wise(tmp_path):
    ds = NIHChestXray(write_nih(tmp_path / "n", lists=False))
    assert all(r.split is None for r in ds.records)
    for seed in range(4):
        parts = ds.splits(val=0.25, test=0.25, seed=seed)
        owner = {}
        for name, idx in parts.items():
            for i in idx:
                assert owner.setdefault(ds.groups[i], name) == name


def test_class_subset_task_keeps_single_label_images(nih_tree):
    ds = NIHChestXray(nih_tree, task="effusion_pneumothorax", preprocess={"size": 32})
    assert ds.class_names == ["No Finding", "Effusion", "Pneumothorax"] and not ds.multilabel
    assert ds.class_counts() == {"No Finding": 4, "Effusion": 2, "Pneumothorax": 3}
    item = ds[_index(ds, "00000003_000.png")]
    assert item["label"] == 2 and item["box_labels"].tolist() == [2]
    expected = torch.tensor([[100.5, 200.25, 400.5, 600.25]]) * 32 / 1024
    assert torch.allclose(item["boxes"], expected)
    same = NIHChestXray(nih_tree, task=["no finding", "Effusion", "pneumothorax"])
    assert same.paths == ds.paths


def test_multilabel_over_a_subset_and_aliases(nih_tree):
    ds = NIHChestXray(nih_tree, task=["Infiltrate", "Effusion"], multilabel=True)
    assert ds.class_names == ["Infiltration", "Effusion"]
    assert ds.class_counts() == {"Infiltration": 2, "Effusion": 4}
    # kept: any of the task's findings, plus No Finding; the three Pneumothorax-only images are left out
    kept = sorted(p.rsplit("/", 1)[1] for p in ds.paths)
    expected = sorted(n for n, f, _ in NIH_ROWS if f == "No Finding" or {"Infiltration", "Effusion"} & set(f.split("|")))
    assert kept == expected and len(kept) == len(NIH_ROWS) - 3
    every = NIHChestXray(nih_tree, task=["Infiltrate", "Effusion"], multilabel=True, other_findings="negative")
    assert len(every) == len(NIH_ROWS) and every.class_counts() == ds.class_counts()


def test_multilabel_form_of_a_named_task_keeps_multi_finding_images(nih_tree):
    single = NIHChestXray(nih_tree, task="effusion")
    multi = NIHChestXray(nih_tree, task="effusion", multilabel=True)
    assert single.class_counts() == {"No Finding": 4, "Effusion": 2}  # Effusion|Infiltration etc. are dropped
    assert multi.class_names == ["Effusion"] and multi.class_counts() == {"Effusion": 4}
    assert len(multi) == 4 + 4  # four Effusion images (two with other findings too) and four No Finding
    assert multi[_index(multi, "00000001_000.png")]["label"].tolist() == [0.0]


@pytest.mark.parametrize("kwargs, message", [
    ({"task": "efusion"}, "unknown NIH task 'efusion'; did you mean 'effusion'"),
    ({"task": ["No Finding", "Efusion"]}, "unknown finding 'Efusion'; did you mean 'Effusion'"),
    ({"task": ["No Finding"], "multilabel": True}, "needs at least one finding besides 'No Finding'"),
    ({"task": ["No Finding", "Subcutaneous Emphysema"]},
     "unknown finding 'Subcutaneous Emphysema': Subcutaneous Emphysema is a label of the Ottawa set"),
    ({"task": ["No Finding", "SubcuEmphysema"]}, "not a ChestX-ray14 finding"),
    ({"task": "effusion", "multilabel": True, "other_findings": "keep"}, "other_findings: expected drop or negative"),
    ({"task": ["Effusion"]}, "at least 2 classes"),
])
def test_task_errors(nih_tree, kwargs, message):
    with pytest.raises(DataError, match=message):
        NIHChestXray(nih_tree, **kwargs)


def test_unknown_finding_in_the_label_file_is_named(tmp_path, caplog):
    rows = NIH_ROWS[:3] + [("00000099_000.png", "Effusoin", 99)]
    root = write_nih(tmp_path / "n", rows=rows, lists=False)
    with pytest.raises(DataError, match=r"Data_Entry_2017.csv:5: unknown finding 'Effusoin'; did you mean 'Effusion'"):
        NIHChestXray(root)
    with caplog.at_level(logging.WARNING, logger="medcam.data"):
        assert len(NIHChestXray(root, on_error="skip")) == 3


def test_missing_images_are_counted_and_named(nih_tree, caplog):
    (nih_tree / "images_002" / "images" / "00000011_000.png").unlink()
    with pytest.raises(DataError, match=r"1 of 12 listed images not found .*00000011_000.png"):
        NIHChestXray(nih_tree)
    with caplog.at_level(logging.WARNING, logger="medcam.data"):
        assert len(NIHChestXray(nih_tree, on_error="skip")) == 11
    assert "not found" in caplog.text


def test_v2020_label_file_and_missing_label_file(tmp_path):
    ds = NIHChestXray(write_nih(tmp_path / "n", version="v2020"))
    assert len(ds) == len(NIH_ROWS)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=r"no Data_Entry_2017\*.csv label file"):
        NIHChestXray(tmp_path / "empty")


@pytest.mark.data
def test_real_nih_sample(nih_dir):
    ds = NIHChestXray(nih_dir, preprocess={"size": 256})
    assert len(ds) == 621 and len(ds.annotated()) == 12
    i = ds.annotated()[0]
    name = ds.paths[i].rsplit("/", 1)[1]
    with open(nih_dir / "BBox_List_2017.csv", newline="") as fh:
        rows = [r for r in csv.reader(fh) if r and r[0] == name]
    x, y, w, h = (float(v) for v in rows[0][2:6])
    assert torch.allclose(ds[i]["boxes"][0], torch.tensor([x, y, x + w, y + h]) / 4, atol=1e-4)  # 256 / 1024
    parts = ds.splits(seed=0)
    assert not {ds.groups[j] for j in parts["train"]} & {ds.groups[j] for j in parts["test"]}
    task = NIHChestXray(nih_dir, task="effusion_pneumothorax", check="none")
    assert task.class_counts() == {"No Finding": 100, "Effusion": 12, "Pneumothorax": 27}
    multi = NIHChestXray(nih_dir, task="effusion_pneumothorax", multilabel=True, check="none")
    assert multi.class_counts() == {"Effusion": 82, "Pneumothorax": 44}  # every image with either finding
    with open(next(nih_dir.glob("Data_Entry_2017*.csv")), newline="") as fh:
        findings = [set(r["Finding Labels"].split("|")) for r in csv.DictReader(fh)]
    assert len(multi) == sum(bool(f & {"Effusion", "Pneumothorax"}) or f == {"No Finding"} for f in findings)
