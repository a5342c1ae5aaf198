from __future__ import annotations

import logging

import pytest
from medcam_data_trees import noise_image, save_png

from medcam.data.folder import ImageFolder
from medcam.errors import DataError


def _tree(root, layout):
    for split, classes in layout.items():
        for cls, n in classes.items():
            for i in range(n):
                base = root / split if split else root
                save_png(base / cls / f"{cls} {i}.png", noise_image(12, 12, seed=i))
    return root


def test_flat_class_folders_sorted_and_split_by_the_library(tmp_path):
    root = _tree(tmp_path / "d", {"": {"normal": 10, "effusion": 6}})
    save_png(root / "effusion" / "nested" / "deep.png", noise_image(12, 12, seed=9))  # any depth counts
    (root / "normal" / "notes.txt").write_text("not an image")
    ds = ImageFolder(root, preprocess={"size": 8})
    assert ds.class_names == ["effusion", "normal"] and ds.class_counts() == {"effusion": 7, "normal": 10}
    parts = ds.splits(val=0.2, test=0.2, seed=0)
    assert sum(len(p) for p in parts.values()) == 17 and all(parts.values())
    assert ds[0]["image"].shape == (3, 8, 8)


def test_split_folders_fix_the_splits(tmp_path):
    root = _tree(tmp_path / "d", {"train": {"a": 4, "b": 4}, "val": {"a": 1, "b": 1}, "test": {"a": 2, "b": 2}})
    ds = ImageFolder(root)
    parts = ds.splits(seed=0)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [8, 2, 4]
    assert all("/test/" in ds.paths[i] for i in parts["test"])


def test_unknown_class_folder_is_an_error_or_skipped(tmp_path, caplog):
    root = _tree(tmp_path / "d", {"": {"normal": 2, "benign": 2, "bengin": 1}})
    with pytest.raises(DataError, match=r"bengin: unknown class folder 'bengin'; did you mean 'benign'\?"):
        ImageFolder(root, class_names=["normal", "benign"])
    with caplog.at_level(logging.WARNING, logger="medcam.data"):
        ds = ImageFolder(root, class_names=["normal", "benign"], on_error="skip")
    assert len(ds) == 4 and ds.class_names == ["normal", "benign"] and "bengin" in caplog.text
    assert len(ImageFolder(root, class_names=["normal", "benign"], exclude=["bengin"])) == 4


def test_images_outside_class_folders_and_missing_root(tmp_path):
    root = _tree(tmp_path / "d", {"": {"a": 2}})
    save_png(root / "stray.png", noise_image(8, 8, seed=0))
    with pytest.raises(DataError, match="stray.png: image outside the class folders"):
        ImageFolder(root)
    with pytest.raises(DataError, match="data folder not found"):
        ImageFolder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no class folders"):
        ImageFolder(tmp_path / "empty")


def test_mask_files_in_class_folders_are_flagged(tmp_path, caplog):
    root = _tree(tmp_path / "d", {"": {"a": 1}})
    save_png(root / "a" / "a 0_mask.png", noise_image(12, 12, seed=0))
    with caplog.at_level(logging.WARNING, logger="medcam.data"):
        ImageFolder(root)
    assert "look like masks" in caplog.text and "'busi'" in caplog.text


def test_corrupt_and_empty_images_are_named(tmp_path):
    root = _tree(tmp_path / "d", {"": {"a": 2}})
    (root / "a" / "empty (1).png").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty \(1\).png: empty file"):
        ImageFolder(root)
    assert len(ImageFolder(root, on_error="skip")) == 2
