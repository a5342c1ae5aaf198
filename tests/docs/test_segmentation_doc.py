"""docs/segmentation.md, "Training a segmenter": the documented spec, the example script, and real BUSI."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from medcam.spec_segmenter import resolve_segmenter_spec, spec_kind

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "segmentation.md"
SPEC = REPO / "examples" / "unet_spec.yaml"


def _documented_spec() -> str:
    blocks = re.findall(r"```yaml\n# file: unet_spec.yaml\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1, "docs/segmentation.md should hold one '# file: unet_spec.yaml' block"
    return blocks[0]


def test_the_documented_spec_is_the_example_file_and_a_unet_on_a_registered_backbone():
    assert _documented_spec() == SPEC.read_text(encoding="utf-8")
    assert spec_kind(str(SPEC)) == "segmenter"
    spec = resolve_segmenter_spec(str(SPEC))
    assert spec["segmenter"]["name"] == "unet" and spec["segmenter"]["encoder"]["name"] == "tiny_cnn"
    assert [p["name"] for p in spec["loss"]] == ["dice", "mask_bce"]


@pytest.mark.slow
def test_the_example_script_trains_and_reports_held_out_dice(synthetic_busi, tmp_path):
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: unet\nencoder: {name: tiny_cnn, width: 4}\nin_chans: 1\npreprocess: {size: 32}\n"
                    "train: {batch_size: 4}\n")
    done = subprocess.run([sys.executable, str(REPO / "examples" / "train_segmenter_busi.py"), "--data",
                           str(synthetic_busi), "--spec", str(spec), "--epochs", "1", "--out", str(tmp_path / "run"),
                           "--json"], capture_output=True, text=True, timeout=900,
                          env={"OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    assert result["kind"] == "segmenter" and result["split"] == "test" and 0 <= result["metrics"]["dice"] <= 1
    assert (tmp_path / "run" / "best.pt").is_file() and (tmp_path / "run" / "metrics.jsonl").is_file()


@pytest.mark.data
@pytest.mark.slow
def test_real_busi_eval_scores_the_held_out_split_of_the_training_run(busi_dir, tmp_path, cli):
    spec = tmp_path / "small.yaml"
    spec.write_text("name: unet\nencoder: {name: tiny_cnn, width: 4}\nin_chans: 1\npreprocess: {size: 32}\n")
    code, text, err = cli("train", spec, "--data", busi_dir, "--epochs", "1", "--groups", "near_duplicates",
                          "--out", tmp_path / "run", "--json", "--threads", "1")
    assert code == 0, err
    # the split examples/ and docs/segmentation.md report: 437 / 94 / 93, grouped by near-duplicates
    assert json.loads(text)["split"] == {"train": 437, "val": 94, "test": 93}
    code, text, _ = cli("eval", tmp_path / "run" / "best.pt", "--data", busi_dir, "--json")
    metrics = json.loads(text)["metrics"]
    assert metrics["n"] == 93 and metrics["n_with_mask"] == 77 and metrics["per_class"]["normal"]["n"] == 16
