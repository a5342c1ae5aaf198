"""Smoke test of the whole localization benchmark on a tiny generated BUSI-layout folder.

Four tiny models (plain CE, the lesion-box attention loss, the FPM head with
foreground control from scratch and from the CE model's backbone) are trained
for one epoch at 32 px; every registered
method and the baselines are scored; two runs must write identical numbers.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from medcam.bench.run import OUTPUT_FILES, run_benchmark
from medcam.errors import CheckpointError

pytestmark = pytest.mark.slow

TINY = {"name": "tiny_cnn", "width": 4}
SPEC = {
    "name": "smoke",
    "seed": 3,
    "size": 32,
    "data": {"dataset": "busi", "val": 0.25, "test": 0.3, "split_seed": 1, "groups": None, "augment": "flip"},
    "train": {"epochs": 1, "batch_size": 8, "lr": 0.01},
    "eval": {"batch_size": 4, "gallery": 3, "exclude_methods": ["scorecam", "sscam", "iscam", "sess"]},
    "faithfulness": {"images": 3, "metrics": [{"name": "deletion", "steps": 4}, "average_drop", "pointing_game",
                                              {"name": "road", "fractions": [0.5]},
                                              {"name": "model_randomization", "stages": 1}]},
    "models": [
        {"key": "tiny_ce", "label": "tiny CE", "spec": {"backbone": TINY, "loss": ["ce"]}},
        # a preset that names its class names (BUSI's), with a smaller backbone
        {"key": "tiny_attention", "spec": {"name": "resnet18_lesion_attention", "backbone": TINY}},
        {"key": "tiny_wsol", "spec": {
            "backbone": TINY, "head": {"name": "fpm", "hidden": 8, "stats": "image"},
            "loss": ["foreground_control"], "attribution": {"name": "fpm", "key": "foreground"}}},
        # starts from tiny_ce's trained backbone; a vanishing lr keeps its weights there for the test
        {"key": "tiny_wsol_from_ce", "init_from": "tiny_ce", "train": {"lr": 1e-9}, "spec": {
            "backbone": TINY, "head": {"name": "fpm", "hidden": 8, "stats": "image"},
            "loss": ["foreground_control"]}},
    ],
}


@pytest.fixture(scope="module")
def busi_tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from medcam.data.synthetic import write_busi_folder

    return write_busi_folder(tmp_path_factory.mktemp("busi_tiny"), (6, 10, 10), size=40, seed=0)


def _numbers(record: dict) -> list[dict]:
    """Every row without the timing column."""
    return [{k: v for k, v in row.items() if k != "time_ms"} for row in record["rows"]]


@pytest.fixture(scope="module")
def two_runs(busi_tiny: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict, Path]:
    out_a = tmp_path_factory.mktemp("bench_a")
    out_b = tmp_path_factory.mktemp("bench_b")
    a = run_benchmark(SPEC, busi_tiny, out_a, progress=False, threads=1)
    b = run_benchmark(SPEC, busi_tiny, out_b, progress=False, threads=1)
    return a, b, out_a


def test_outputs_and_rows(two_runs: tuple[dict, dict, Path]) -> None:
    record, _, out = two_runs
    for name in OUTPUT_FILES:
        assert (out / name).is_file(), name
    rows = record["rows"]
    baselines = [r["method"] for r in rows if r["kind"] == "baseline"]
    assert baselines == ["center_box", "center_gaussian", "random_map"]
    by_model = {m["key"]: m for m in record["models"]}
    assert set(by_model) == {"tiny_ce", "tiny_attention", "tiny_wsol", "tiny_wsol_from_ce"}
    ce = by_model["tiny_ce"]
    # every registered method but the excluded one was tried; CAM applies to a linear head, FPM does not
    assert "cam" in ce["methods"] and "gradcam" in ce["methods"] and "random" in ce["methods"]
    assert "scorecam" not in ce["methods"] and "scorecam" not in ce["not_applicable"]
    assert "fpm" in ce["not_applicable"] and "output.maps" in ce["not_applicable"]["fpm"]
    wsol = by_model["tiny_wsol"]
    assert "fpm" in wsol["methods"] and "fpm(key=foreground)" in wsol["methods"]
    assert "cam" in wsol["methods"] and "cam" not in wsol["not_applicable"]  # the fpm head is a ClassMapHead
    n_lesion = record["data"]["held_out"]["n_lesion"]
    assert 0 < n_lesion < record["data"]["held_out"]["n_images"]  # generated normals have no lesion
    for row in rows:
        assert 0.0 <= row["max_box_acc_v2"] <= 100.0 and 0.0 <= row["pxap"] <= 100.0
        assert 0.0 <= row["mean_iou"] <= 1.0
        assert 0.0 <= row["box_acc_v2_at_val_tau"] <= 100.0 and 0.0 <= row["val_max_box_acc_v2"] <= 100.0
        if row["kind"] == "method":
            assert 0.0 <= row["accuracy"] <= 1.0
        else:
            assert row["accuracy"] is None
    heldout = (out / "heldout_test.txt").read_text().splitlines()
    assert len(heldout) == record["data"]["held_out"]["n_images"]
    assert all(p.split("/")[0] in ("normal", "benign", "malignant") for p in heldout)
    saved = json.loads((out / "localization.json").read_text())
    assert saved["spec"]["models"][0]["key"] == "tiny_ce" and saved["environment"]["packages"]["torch"]
    text = (out / "localization.md").read_text()
    assert "| baseline | center_box |" in text and "tiny CE" in text


def test_init_from_starts_from_the_earlier_models_backbone(two_runs: tuple[dict, dict, Path]) -> None:
    import medcam

    record, _, out = two_runs
    by_model = {m["key"]: m for m in record["models"]}
    assert by_model["tiny_wsol_from_ce"]["init_from"] == "tiny_ce" and by_model["tiny_wsol"]["init_from"] is None
    assert by_model["tiny_wsol_from_ce"]["model_spec"]["backbone"]["checkpoint_path"] == by_model["tiny_ce"]["checkpoint"]
    ce, scratch, started = (medcam.load(out / "models" / key / "last.pt").backbone.state_dict()
                            for key in ("tiny_ce", "tiny_wsol", "tiny_wsol_from_ce"))
    convs = [k for k in ce if k.endswith(".weight") and ce[k].dim() == 4]
    assert convs and all(torch.allclose(started[k], ce[k], atol=1e-6) for k in convs)
    assert not all(torch.allclose(scratch[k], ce[k], atol=1e-2) for k in convs)


def test_faithfulness_table(two_runs: tuple[dict, dict, Path]) -> None:
    record, _, out = two_runs
    rows = record["faithfulness_rows"]
    ce = {r["method"]: r for r in rows if r["model"] == "tiny_ce"}
    assert set(ce) >= {"gradcam", "cam", "center_box", "center_gaussian", "random_map"}
    assert ce["random_map"]["kind"] == "baseline" and ce["gradcam"]["kind"] == "method"
    keys = {c["key"] for c in record["faithfulness"]["columns"]}
    assert keys == {"deletion(steps=4)", "average_drop", "pointing_game", "road(fractions=[0.5])",
                    "model_randomization(stages=1)", "model_randomization(stages=1).ssim"}
    gradcam, floor = ce["gradcam"]["values"], ce["random_map"]["values"]
    assert 0.0 <= gradcam["deletion(steps=4)"] <= 1.0 and 0.0 <= gradcam["pointing_game"] <= 100.0
    assert gradcam["model_randomization(stages=1).ssim"] is not None
    assert floor["model_randomization(stages=1)"] is None       # baselines have no method to recompute
    assert floor["deletion(steps=4)"] is not None
    assert record["models"][0]["faithfulness"]["n_images"] == 3
    text = (out / "localization.md").read_text()
    assert "## Faithfulness and sanity" in text and "| tiny CE | random_map (baseline) |" in text


def test_two_runs_give_identical_numbers(two_runs: tuple[dict, dict, Path]) -> None:
    a, b, _ = two_runs
    assert _numbers(a) == _numbers(b)
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in a["faithfulness_rows"]]
    assert strip == [{k: v for k, v in r.items() if k != "time_s"} for r in b["faithfulness_rows"]]
    assert [m["weights_sha256"] for m in a["models"]] == [m["weights_sha256"] for m in b["models"]]
    assert a["data"]["held_out"]["sha256"] == b["data"]["held_out"]["sha256"]


def test_existing_run_needs_checkpoints_or_overwrite(two_runs: tuple[dict, dict, Path], busi_tiny: Path) -> None:
    a, _, out = two_runs
    with pytest.raises(CheckpointError, match="--checkpoints"):
        run_benchmark(SPEC, busi_tiny, out, models=["tiny_ce"], progress=False, threads=1)
    again = run_benchmark(SPEC, busi_tiny, out, models=["tiny_ce"], checkpoints=out / "models", progress=False,
                          threads=1)
    assert not again["models"][0]["trained"]
    assert _numbers(again) == [r for r in _numbers(a) if r["model"] in (None, "tiny_ce")]
    with pytest.raises(CheckpointError, match="other settings"):
        run_benchmark(SPEC, busi_tiny, out, models=["tiny_ce"], checkpoints=out / "models", epochs=2,
                      progress=False, threads=1)
