from __future__ import annotations

import pytest
import torch
from medcam_data_trees import noise_image, save_png

from medcam.data.wsol import WSOLList, read_box_list
from medcam.errors import DataError


def _sr_layout(root):
    """SR seed layout: train/ and val/ class folders, test_list.txt 'path;ClassName', test_gt.txt 'name w h;boxes'."""
    for cls in ("Atelectasis", "Effusion"):
        for i in range(2):
            save_png(root / "train" / cls / f"{cls}_{i}.png", noise_image(32, 32, seed=i))
            save_png(root / "val" / cls / f"{cls} {i}.png", noise_image(32, 32, seed=10 + i))
    (root / "test_list.txt").write_text("Atelectasis/Atelectasis 0.png;Atelectasis\nEffusion/Effusion 1.png;Effusion\n"
                                        "Effusion/Effusion 0.png;Effusion\n")
    # boxes drawn on 1024 x 1024 originals; the files are 32 x 32
    (root / "test_gt.txt").write_text("Atelectasis/Atelectasis 0.png 1024 1024;128 256 512 768\n"
                                      "Effusion/Effusion 1.png 1024 1024 ; 0 0 1024 512\n"
                                      "Effusion/Effusion 0.png 1024 1024; 32 32 64 64 512 512 1024 1024\n")
    return root


def test_sr_named_format_with_class_name_labels(tmp_path):
    ds = WSOLList(_sr_layout(tmp_path / "nih"), preprocess={"size": 32})
    assert ds.class_names == ["Atelectasis", "Effusion"]
    parts = ds.splits(seed=0)
    assert len(parts["test"]) == 3 and len(parts["train"]) + len(parts["val"]) == 4
    first = ds[0]
    assert first["path"].endswith("val/Atelectasis/Atelectasis 0.png") and first["label"] == 0
    assert first["boxes"].tolist() == [[4.0, 8.0, 16.0, 24.0]] and first["box_labels"].tolist() == [0]
    assert ds[2]["boxes"].tolist() == [[1.0, 1.0, 2.0, 2.0], [16.0, 16.0, 32.0, 32.0]]


def test_bas_cub_aligned_format_with_index_labels(tmp_path):
    root = tmp_path / "cub"
    save_png(root / "test" / "001.Albatross" / "a.png", noise_image(40, 50, seed=0))
    save_png(root / "test" / "002.Auklet" / "b.png", noise_image(20, 25, seed=1))
    (root / "test_list.txt").write_text("001.Albatross/a.png;0\n002.Auklet/b.png;1\n")
    (root / "test_gt.txt").write_text("10.0 4.0 30.0 20.0 80 100\n0.0 0.0 25.0 20.0 20 25\n")  # x0 y0 x1 y1 h w
    ds = WSOLList(root, preprocess={"size": [20, 25]}, train_dir=None)
    assert ds.class_names == ["001.Albatross", "002.Auklet"]
    assert ds[0]["boxes"].tolist() == [[2.5, 1.0, 7.5, 5.0]]  # 100x80 reference -> 25x20 input
    assert ds[1]["boxes"].tolist() == [[0.0, 0.0, 25.0, 20.0]]
    (root / "test_gt.txt").write_text("10.0 4.0 30.0 20.0 80 100\n")
    with pytest.raises(DataError, match="1 box lines for 2 listed images"):
        WSOLList(root, train_dir=None)


def test_imagenet_style_lines_with_backslashes_and_inclusive_corners(tmp_path):
    path = tmp_path / "val_gt.txt"
    path.write_text("n01\\\\ILSVRC2012_val_00000001.JPEG 500 375 ; 111 108 441 193 2 69 437 207\n")
    fmt, entries = read_box_list(path)
    assert fmt == "named" and entries == [("n01/ILSVRC2012_val_00000001.JPEG", (375.0, 500.0),
                                           [(111.0, 108.0, 441.0, 193.0), (2.0, 69.0, 437.0, 207.0)])]
    root = tmp_path / "inet"
    save_png(root / "val" / "n01" / "ILSVRC2012_val_00000001.JPEG.png", noise_image(75, 100, seed=0))
    (root / "val_list.txt").write_text("n01/ILSVRC2012_val_00000001.JPEG.png;0\n")
    (root / "val_gt.txt").write_text("n01\\\\ILSVRC2012_val_00000001.JPEG.png 500 375 ; 0 0 499 374\n")
    ds = WSOLList(root, image_list="val_list.txt", box_list="val_gt.txt", box_end="inclusive",
                  preprocess={"size": [75, 100]})
    assert torch.allclose(ds[0]["boxes"], torch.tensor([[0.0, 0.0, 100.0, 75.0]]))


@pytest.mark.parametrize("gt, message", [
    ("a.png 10 10; 1 2 3\n", "3 box values after ';'"),
    ("a.png 10 10; 1 2 3 4\n1 2 3 4 5 6\n", "mixes the named"),
    ("1 2 3 4 5\n", r"5 values \(need 'x0 y0 x1 y1 h w'\)"),
    ("a.png 10 10; 5 2 3 4\n", "x1 < x0"),
])
def test_bad_box_lines_name_the_line(tmp_path, gt, message):
    (tmp_path / "gt.txt").write_text(gt)
    with pytest.raises(DataError, match=message) as err:
        read_box_list(tmp_path / "gt.txt")
    assert "gt.txt:" in str(err.value)


def test_unknown_class_and_missing_boxes(tmp_path):
    root = _sr_layout(tmp_path / "nih")
    (root / "test_list.txt").write_text("Atelectasis/Atelectasis 0.png;Atelectasi\n")
    with pytest.raises(DataError, match=r"test_list.txt:1: unknown class 'Atelectasi'; did you mean 'Atelectasis'"):
        WSOLList(root, class_names=["Atelectasis", "Effusion"])
    (root / "test_list.txt").write_text("Atelectasis/Atelectasis 1.png;Atelectasis\n")
    with pytest.raises(DataError, match="no boxes for listed image Atelectasis/Atelectasis 1.png"):
        WSOLList(root)
    (root / "test_list.txt").write_text("Nowhere/x.png;Effusion\n")
    with pytest.raises(DataError, match="listed image 'Nowhere/x.png' not found"):
        WSOLList(root)
