"""``medcam eval --localization`` through the real entry function: BUSI-layout and NIH-layout data, the
benchmark's numbers, faithfulness, and one-line errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import medcam
from medcam.data.synthetic import write_busi_folder

TINY = {"name": "tiny_cnn", "width": 4}
#: Columns the benchmark and ``medcam eval --localization`` both report.
SHARED = ("max_box_acc_v2", "pxap", "gt_known_loc", "max_box_acc", "top1_loc", "mean_iou", "pixel_iou")


@pytest.fixture(scope="module")
def busi(tmp_path_factory) -> Path:
    return write_busi_folder(tmp_path_factory.mktemp("data") / "busi", [4, 8, 8], size=40, seed=0)


@pytest.fixture(scope="module")
def bench_run(busi: Path, tmp_path_factory) -> tuple[dict, Path]:
    """A one-model localization benchmark (gradcam) on the BUSI-layout folder: its record and output folder."""
    from medcam.bench.run import run_benchmark

    spec = {"name": "eval_parity", "seed": 0, "size": 32,
            "data": {"dataset": "busi", "val": 0.25, "test": 0.3, "split_seed": 2, "groups": None,
                     "augment": "none"},
            "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
            "eval": {"methods": ["gradcam", "layercam"], "batch_size": 4, "gallery": 0, "val_threshold": False},
            "faithfulness": {"metrics": []},
            "models": [{"key": "tiny", "spec": {"backbone": TINY}}]}
    out = tmp_path_factory.mktemp("bench")
    return run_benchmark(spec, busi, out, progress=False, threads=1), out


@pytest.mark.slow
def test_eval_prints_the_benchmarks_numbers_on_busi_layout_data(busi, bench_run, cli) -> None:
    record, out = bench_run
    ckpt = out / "models" / "tiny" / "best.pt"
    code, text, err = cli("eval", ckpt, "--data", busi, "--localization", "--method", "gradcam", "--method",
                          "layercam", "--batch-size", 4, "--json", "--quiet")
    assert code == 0, err
    mine = json.loads(text)
    bench = record["models"][0]["methods"]
    assert mine["split"] == "test" and mine["n_annotated"] == record["data"]["held_out"]["n_lesion"]
    for method in ("gradcam", "layercam"):
        for key in SHARED:
            assert mine["methods"][method][key] == pytest.approx(bench[method][key], abs=1e-9), (method, key)
    # the text report prints the same values
    code, text, _ = cli("eval", ckpt, "--data", busi, "--localization", "--method", "gradcam", "--batch-size", 4,
                        "--quiet")
    row = next(line for line in text.splitlines() if line.strip().startswith("gradcam"))
    assert row.split()[1:] == [f"{bench['gradcam'][k]:.1f}" for k in ("max_box_acc_v2", "max_box_acc",
                                                                      "gt_known_loc", "top1_loc", "pxap")] + \
        [f"{bench['gradcam']['mean_iou']:.3f}"]


@pytest.fixture(scope="module")
def checkpoint(busi: Path, tmp_path_factory) -> Path:
    """An untrained tiny model with BUSI's classes, saved (its maps need no training to be scored)."""
    model = medcam.build_model({"backbone": TINY, "class_names": ["normal", "benign", "malignant"],
                                "preprocess": {"size": 32}})
    return medcam.save(model, tmp_path_factory.mktemp("ckpt") / "tiny.pt")


def test_localization_report_and_faithfulness(busi, checkpoint, cli) -> None:
    code, text, err = cli("eval", checkpoint, "--data", busi, "--localization", "--faithfulness", "--target",
                          "predicted", "--quiet")
    assert code == 0, err
    assert "16 scored (8 benign, 8 malignant) on the 16 of 20 images with lesion masks" in text
    assert "maps for the image's predicted class" in text
    for title in ("MaxBoxAccV2", "MaxBoxAcc", "GT-known Loc", "PxAP", "mean IoU"):
        assert title in text
    assert "Faithfulness and sanity (first 16 scored entries)" in text and "random map (floor)" in text


def _nih_eval(cli, root: Path, tmp_path: Path, size: int) -> tuple[Path, dict]:
    """An untrained multi-label tiny model with the 14 NIH findings, saved; its ``--localization --json`` on ``root``."""
    from medcam.data.nih import NIH_LABELS

    model = medcam.build_model({"backbone": TINY, "class_names": list(NIH_LABELS), "multilabel": True,
                                "preprocess": {"size": size}})
    ckpt = medcam.save(model, tmp_path / "nih.pt")
    code, text, err = cli("eval", ckpt, "--data", root, "--localization", "--json", "--quiet")
    assert code == 0, err
    return ckpt, json.loads(text)


def test_nih_layout_gets_the_chestxray8_tables(tmp_path, cli) -> None:
    import numpy as np
    from PIL import Image

    root = tmp_path / "nih"
    (root / "images_001" / "images").mkdir(parents=True)
    rows = [("00000001_000.png", "No Finding"), ("00000002_000.png", "Effusion|Infiltration"),
            ("00000003_000.png", "Pneumothorax"), ("00000004_000.png", "Mass")]
    lines = ["Image Index,Finding Labels,Follow-up #,Patient ID"]
    rng = np.random.default_rng(0)
    for i, (name, findings) in enumerate(rows):
        lines.append(f"{name},{findings},0,{i}")
        Image.fromarray(rng.integers(0, 256, (64, 64), dtype=np.uint8)).save(root / "images_001" / "images" / name)
    (root / "Data_Entry_2017.csv").write_text("\n".join(lines) + "\n")
    (root / "BBox_List_2017.csv").write_text("Image Index,Finding Label,Bbox [x,y,w,h],,,\n"
                                             "00000002_000.png,Infiltrate,512,256,256,128\n"
                                             "00000002_000.png,Effusion,0,0,128,1024\n"
                                             "00000003_000.png,Pneumothorax,100,200,300,400\n")
    ckpt, r = _nih_eval(cli, root, tmp_path, 32)
    assert r["split"] == "all" and r["ground_truth"] == "boxes" and r["n_entries"] == 3
    assert r["classes"] == {"Effusion": 1, "Infiltration": 1, "Pneumothorax": 1}
    row = r["methods"]["gradcam"]
    assert row["pxap"] is None and row["sr"]["threshold"] == 0.83 and row["sr"]["n"] == 3
    assert set(row["chestxray8"]["iou"]) == {"Effusion", "Infiltration", "Pneumothorax", "all"}
    assert row["chestxray8"]["iobb"]["all"]["boxes"] == 3
    code, text, _ = cli("eval", ckpt, "--data", root, "--localization", "--quiet")
    assert "ChestX-ray8 table, T(IoU)" in text and "ChestX-ray8 table, T(IoBB)" in text
    assert "accuracy at IoU > 0.1 with threshold 0.83" in text


def test_bad_input_gets_one_line(busi, checkpoint, tmp_path, cli) -> None:
    plain = tmp_path / "plain"
    for cls in ("benign", "malignant", "normal"):
        (plain / cls).mkdir(parents=True)
        for f in sorted((busi / cls).glob(f"{cls} (*).png"))[:2]:   # the images, not their masks
            (plain / cls / f.name).write_bytes(f.read_bytes())
    sorted_names = medcam.build_model({"backbone": TINY, "class_names": ["benign", "malignant", "normal"],
                                       "preprocess": {"size": 32}})   # image folders sort their classes
    code, _, err = cli("eval", medcam.save(sorted_names, tmp_path / "sorted.pt"), "--data", plain,
                       "--localization", "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "no image in the 'all' split has a lesion mask or boxes" in err and "--localization needs" in err
    code, _, err = cli("eval", checkpoint, "--data", busi, "--localization", "--method", "gradcma", "--quiet")
    assert code == 2 and len(err.strip().splitlines()) == 1 and "did you mean 'gradcam'" in err
    code, _, err = cli("eval", checkpoint, "--data", busi, "--method", "gradcam")
    assert code == 2 and "--method applies to --localization" in err


@pytest.mark.data
def test_real_nih_sample_boxed_images(nih_dir, tmp_path, cli) -> None:
    """The 12 images of ../shared/data/nih_sample with official boxes, one finding each."""
    _, r = _nih_eval(cli, nih_dir, tmp_path, 64)
    assert r["n_images"] == 621 and r["n_annotated"] == 12 and r["n_entries"] == 12
    assert r["classes"] == {"Atelectasis": 1, "Cardiomegaly": 3, "Infiltration": 1, "Mass": 1, "Nodule": 3,
                            "Pneumonia": 3}
    tables = r["methods"]["gradcam"]["chestxray8"]
    assert tables["iou"]["all"]["boxes"] == 12 and tables["iobb"]["Cardiomegaly"]["images"] == 3
