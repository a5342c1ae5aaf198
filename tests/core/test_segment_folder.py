"""``medcam segment``: a segmenter's masks of a data set as an images/ + masks/ folder (pseudo-labels)."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from medcam.data import MaskFolder
from medcam.errors import DataError, OutputError
from medcam.segment_folder import write_mask_folder
from medcam.segmenter_source import open_segmenter


def _class_folder(root, radiograph, n=3):
    """An imagefolder layout of synthetic radiographs: root/normal/chest_i.png."""
    (root / "normal").mkdir(parents=True)
    truths = {}
    for i in range(n):
        image, truth = radiograph(96, 112, seed=i)
        Image.fromarray((image * 255).round().astype(np.uint8)).save(root / "normal" / f"chest_{i}.png")
        truths[f"chest_{i}"] = truth
    return truths


def test_cli_writes_a_mask_folder_that_medcam_reads(radiograph, tmp_path, cli):
    truths = _class_folder(tmp_path / "data", radiograph)
    out = tmp_path / "pseudo"
    code, text, err = cli("segment", "lung_fields", "--data", tmp_path / "data", "--out", out, "--json", "--quiet")
    assert code == 0, err
    summary = json.loads(text)
    assert summary["images"] == 3 and summary["empty"] == 0 and 0.15 < summary["mean_fraction"] < 0.4
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"chest_{i}.png" for i in range(3)]
    for name, truth in truths.items():
        mask = np.asarray(Image.open(out / "masks" / f"{name}.png"))
        assert mask.shape == truth.shape and set(np.unique(mask)) == {0, 255}
        inter, union = ((mask > 0) & truth).sum(), ((mask > 0) | truth).sum()
        assert inter / union > 0.75
    data = MaskFolder(out)
    assert len(data) == 3 and all(len(r.masks) == 1 for r in data.records)
    code, _, err = cli("segment", "lung_fields", "--data", tmp_path / "data", "--out", out)
    assert code == 2 and "masks/ already holds files" in err


def test_duplicate_names_and_bad_out(radiograph, tmp_path):
    seg = open_segmenter("lung_fields")
    image, _ = radiograph(64, 64)
    paths = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / sub / "same.png")
        paths.append(str(tmp_path / sub / "same.png"))
    with pytest.raises(DataError, match="two images are named 'same'"):
        write_mask_folder(seg, paths, tmp_path / "out", progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="is a file, not a folder"):
        write_mask_folder(seg, paths[:1], tmp_path / "file", progress=False)
