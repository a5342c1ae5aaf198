"""The faithfulness table (medcam.bench.faithfulness): metric columns, per-method means, the summary that
``medcam eval`` can print, and the markdown table."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.bench.faithfulness import (faithfulness_markdown, faithfulness_summary, format_faithfulness,
                                       metric_columns, resolve_metrics, score_faithfulness)
from medcam.bench.localize import compute_maps, load_heldout
from medcam.data.synthetic import SyntheticLesions
from medcam.errors import SpecError

TINY = {"name": "tiny_cnn", "width": 4}
METRICS = [{"name": "deletion", "steps": 4}, "pointing_game", {"name": "model_randomization", "stages": 1}]


@pytest.fixture(scope="module")
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return medcam.build_model({"backbone": TINY, "num_classes": 3}).eval()


def test_columns_and_labels():
    resolved = resolve_metrics(METRICS)
    assert [label for label, _ in resolved] == ["deletion(steps=4)", "pointing_game", "model_randomization(stages=1)"]
    columns = metric_columns(resolved)
    assert [c["key"] for c in columns] == ["deletion(steps=4)", "pointing_game", "model_randomization(stages=1)",
                                           "model_randomization(stages=1).ssim"]
    assert columns[0]["title"] == "deletion(steps=4) AUC ↓" and columns[1]["higher_is_better"]
    with pytest.raises(SpecError, match="listed twice"):
        resolve_metrics(["pointing_game", {"name": "pointing_game"}])


def test_means_equal_the_metrics_run_on_all_images(model):
    held = load_heldout(SyntheticLesions((1, 3, 2), size=48, seed=0), batch_size=4)
    idx = held.lesion
    images, targets, regions = held.images[idx], held.labels[idx], held.masks[idx]
    maps, _ = compute_maps(model, {"name": "gradcam"}, images, targets, batch_size=2)
    got = score_faithfulness(model, images, maps, targets, regions, resolve_metrics(METRICS), method="gradcam",
                             batch_size=2)
    deletion = medcam.build_metric({"name": "deletion", "steps": 4})(model, images, maps, target=targets)
    assert got["deletion(steps=4)"] == pytest.approx(float(deletion.double().mean()), rel=1e-5)
    pointing = medcam.build_metric("pointing_game")(maps=maps, regions=regions)
    assert got["pointing_game"] == pytest.approx(float(pointing.double().mean()))
    without = score_faithfulness(model, images, maps, targets, None, resolve_metrics(METRICS), batch_size=2)
    assert without["pointing_game"] is None and without["model_randomization(stages=1)"] is None


def test_summary_and_tables(model):
    data = SyntheticLesions((1, 3, 2), size=48, seed=0)
    summary = faithfulness_summary(model, data, methods=["gradcam", "layercam"], metrics=METRICS, images=3,
                                   batch_size=2)
    assert summary["n_images"] == 3 and list(summary["rows"]) == ["gradcam", "layercam", "random_map"]
    assert summary["rows"]["random_map"]["model_randomization(stages=1)"] is None
    text = format_faithfulness(summary)
    assert "random map (floor)" in text and "deletion(steps=4) AUC ↓" in text
    rows = [{"model_label": "m", "method": k, "kind": "baseline" if k == "random_map" else "method", "values": v}
            for k, v in summary["rows"].items()]
    table = faithfulness_markdown(rows, summary["columns"])
    assert table.count("\n") == 2 + 3 and "random_map (baseline)" in table
    none = faithfulness_summary(model, SyntheticLesions((2, 0, 0), size=48, seed=0), metrics=METRICS)
    assert none["n_images"] == 0 and "nothing to score" in format_faithfulness(none)
