"""The result record, its text form, and docs/explain.schema.json (which must not be vacuous)."""
from __future__ import annotations

import copy

import pytest
import torch

from medcam.inference.record import RECORD_KEYS, fail_record, format_row, ok_record, summary_line


def _ok(**changes):
    record = ok_record(image="a/b (1).png", diagnosis="benign",
                       probabilities={"normal": 0.1234567, "benign": 0.8, "malignant": 0.0765433}, method="gradcam",
                       target="benign", boxes=torch.tensor([[1.0, 2.0, 30.4, 40.6]]), box_source="attribution",
                       attribution_boxes=torch.tensor([[1.0, 2.0, 30.4, 40.6]]), image_size=(268, 320),
                       box_threshold=0.5,
                       saliency_path="out/b (1)_saliency_20260101000000.png",
                       overlay_path="out/b (1)_overlay_20260101000000.png")
    record.update(changes)
    return record


def test_ok_record_fields():
    record = _ok()
    assert tuple(record) == RECORD_KEYS
    assert record["boxes"] == [[1, 2, 30, 41]] and all(isinstance(v, int) for v in record["boxes"][0])
    assert record["probabilities"]["normal"] == 0.123457
    assert record["image_size"] == [268, 320] and record["error"] is None and record["mask_path"] is None


def test_fail_record_fields():
    record = fail_record("x.png", "x.png: corrupt image data\n(truncated)", method="gradcam")
    assert tuple(record) == RECORD_KEYS
    assert record["result"] == "fail" and record["error"] == "x.png: corrupt image data (truncated)"
    assert record["boxes"] == [] and record["diagnosis"] is None and record["method"] == "gradcam"


def test_records_validate_against_the_schema(schema):
    import jsonschema

    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid(_ok())
    assert validator.is_valid(_ok(mask_path="out/m_mask_20260101000000.png", box_source="segmenter", boxes=[]))
    assert validator.is_valid(_ok(saliency_path=None, overlay_path=None))  # the web app writes no PNGs
    assert validator.is_valid(_ok(ground_truth={"source": "b (1)_mask.png", "boxes": [[1, 2, 3, 4]], "labels": [""]}))
    assert validator.is_valid(fail_record("x.png", "empty file"))
    assert validator.is_valid({**fail_record(None, "malformed request: not valid JSON"), "id": 7})


@pytest.mark.parametrize("change", [
    {"result": "maybe"},
    {"error": "should be null when ok"},
    {"boxes": [[1, 2, 3]]},
    {"boxes": [[1, 2, 3, 4.5]]},
    {"probabilities": {"benign": 1.5}},
    {"overlay_path": "out/overlay.jpg"},
    {"box_source": "guess"},
    {"extra": 1},
    {"box_threshold": None},
    {"ground_truth": {"source": "x.csv", "boxes": [[1, 2, 3]], "labels": []}},
])
def test_schema_rejects_wrong_ok_records(schema, change):
    import jsonschema

    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(_ok(**change), schema)


def test_schema_rejects_inconsistent_fail_records(schema):
    import jsonschema

    record = fail_record("x.png", "empty file")
    for key, value in (("diagnosis", "benign"), ("error", None), ("boxes", [[0, 0, 1, 1]])):
        bad = copy.deepcopy(record)
        bad[key] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(bad, schema)
    missing = copy.deepcopy(record)
    del missing["error"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(missing, schema)


def test_text_rows():
    row = format_row(_ok())
    assert row.startswith("ok    a/b (1).png  benign 0.800  1 box (attribution)")
    assert row.endswith("out/b (1)_overlay_20260101000000.png")
    assert format_row(fail_record("x.png", "empty file")) == "fail  x.png  error: empty file"
    assert summary_line([_ok(), fail_record("x", "y"), _ok()]) == "# 3 images: 2 ok, 1 failed"
