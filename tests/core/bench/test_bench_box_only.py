"""The localization benchmark on box-only data (a WSOL list: SR's test_list.txt / test_gt.txt), and
``medcam eval --localization`` of its model giving the same numbers through the same code path."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from medcam.bench.run import run_benchmark

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def wsol_list(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Synthetic lesions as a WSOL list: train/<class>/ folders, and test/ images listed with their mask's box."""
    from medcam.data.synthetic import write_busi_folder

    busi = write_busi_folder(tmp_path_factory.mktemp("busi"), (6, 10, 10), size=40, seed=0)
    root = tmp_path_factory.mktemp("wsol")
    listed, boxes = [], []
    for cls in ("normal", "benign", "malignant"):
        for i in range(1, {"normal": 6, "benign": 10, "malignant": 10}[cls] + 1):
            name = f"{cls} ({i}).png"
            image = Image.open(busi / cls / name)
            test = cls != "normal" and i > 6
            (root / ("test" if test else "train") / cls).mkdir(parents=True, exist_ok=True)
            image.save(root / ("test" if test else "train") / cls / name)
            if test:
                mask = np.asarray(Image.open(busi / cls / f"{cls} ({i})_mask.png")) > 0
                ys, xs = np.nonzero(mask)
                listed.append(f"{cls}/{name};{cls}")
                boxes.append(f"{cls}/{name} 40 40;{xs.min()} {ys.min()} {xs.max() + 1} {ys.max() + 1}")
    (root / "test_list.txt").write_text("\n".join(listed) + "\n")
    (root / "test_gt.txt").write_text("\n".join(boxes) + "\n")
    return root


def test_bench_scores_box_only_data_and_eval_agrees(wsol_list: Path, tmp_path: Path, cli) -> None:
    spec = {"name": "boxes", "seed": 0, "size": 32,
            "data": {"dataset": "wsol_list", "val": 0.25, "groups": None, "augment": "none"},
            "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
            "eval": {"methods": ["gradcam"], "batch_size": 4, "gallery": 2},
            "faithfulness": {"images": 3, "metrics": ["pointing_game"]},
            "models": [{"key": "tiny", "spec": {"backbone": {"name": "tiny_cnn", "width": 4}}}]}
    record = run_benchmark(spec, wsol_list, tmp_path / "out", progress=False, threads=1)
    assert record["data"]["held_out"]["n_lesion"] == 8          # the 8 listed images, all with a box
    # the training images of a box-only set have no boxes: the baseline fitted on them is said, not run
    assert "center_box" in record["baselines_not_applicable"] and "center_box" not in record["baselines"]
    assert set(record["baselines"]) == {"center_gaussian", "random_map"}
    row = record["models"][0]["methods"]["gradcam"]
    assert row["pxap"] is None and row["pixel_iou"] is None and 0 <= row["max_box_acc_v2"] <= 100
    pointing = record["models"][0]["faithfulness"]["rows"]["gradcam"]["values"]["pointing_game"]
    assert 0.0 <= pointing <= 100.0                              # the boxes are the pointing game's regions (%)
    code, text, err = cli("eval", tmp_path / "out" / "models" / "tiny" / "best.pt", "--data", wsol_list,
                          "--localization", "--method", "gradcam", "--batch-size", 4, "--json", "--quiet")
    assert code == 0, err
    mine = json.loads(text)
    assert mine["split"] == "test" and mine["ground_truth"] == "boxes" and mine["n_entries"] == 8
    for key in ("max_box_acc_v2", "gt_known_loc", "top1_loc", "mean_iou"):
        assert mine["methods"]["gradcam"][key] == pytest.approx(row[key], abs=1e-9), key
    assert mine["methods"]["gradcam"]["sr"]["n"] == 8
