"""The stdin/stdout JSON-lines service: one answer per request line, malformed lines answered with fail."""
from __future__ import annotations

import io
import json

import pytest

from medcam.inference.pipeline import Explainer
from medcam.inference.serve import handle_request, serve


@pytest.fixture(scope="module")
def explainer(trained_checkpoint):
    return Explainer.from_checkpoint(trained_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def image(synthetic_busi):
    return synthetic_busi / "benign" / "benign (1).png"


def test_request_writes_pngs_to_its_destination(explainer, image, tmp_path):
    line = json.dumps({"img_path": str(image), "destination_path": str(tmp_path / "dest"), "id": "r1"})
    record = handle_request(explainer, line, default_out=str(tmp_path / "default"))
    assert record["result"] == "ok" and record["id"] == "r1" and record["image"] == str(image)
    assert record["overlay_path"].startswith(str(tmp_path / "dest" / "benign (1)_overlay_"))
    assert not (tmp_path / "default").exists()
    record = handle_request(explainer, json.dumps({"img_path": str(image)}), default_out=str(tmp_path / "default"))
    assert record["saliency_path"].startswith(str(tmp_path / "default" / "benign (1)_saliency_"))


def test_request_options(explainer, image, tmp_path):
    line = json.dumps({"img_path": str(image), "method": "layercam", "target": "normal", "threshold": 1.0})
    record = handle_request(explainer, line, default_out=None)
    assert record["method"] == "layercam" and record["target"] == "normal" and record["boxes"] == []
    assert record["saliency_path"] is None  # no destination anywhere: nothing written


@pytest.mark.parametrize("line, reason", [
    ("{not json", "malformed request: not valid JSON"),
    ("[1, 2]", "malformed request: expected a JSON object"),
    ("{}", "'img_path' (a file path string) is required"),
    ('{"img_path": 3}', "'img_path' (a file path string) is required"),
    ('{"img_pth": "a.png"}', "unknown key 'img_pth'; did you mean 'img_path'?"),
    ('{"img_path": "a.png", "destination_path": 5}', "'destination_path' must be a folder path string"),
    ('{"img_path": "a.png", "threshold": "high"}', "'threshold' must be a number in [0, 1], got 'high'"),
    ('{"img_path": "a.png", "mask_threshold": 2}', "'mask_threshold' must be a number in [0, 1], got 2"),
    ('{"img_path": "a.png", "target": [1]}', "'target' must be a class name or index"),
])
def test_malformed_requests_get_fail_answers(explainer, line, reason, schema):
    import jsonschema

    record = handle_request(explainer, line, default_out=None)
    assert record["result"] == "fail" and reason in record["error"], record
    jsonschema.validate(record, schema)


def test_bad_values_fail_without_stopping(explainer, image, tmp_path, schema):
    import jsonschema

    for request, reason in (({"img_path": str(tmp_path / "gone.png"), "id": 3}, "image file not found"),
                            ({"img_path": str(image), "method": "gradcma"}, "did you mean 'gradcam'"),
                            ({"img_path": str(image), "target": "bengin"}, "did you mean 'benign'")):
        record = handle_request(explainer, json.dumps(request), default_out=None)
        assert record["result"] == "fail" and reason in record["error"], record
        jsonschema.validate(record, schema)
    assert record.get("id") is None


def test_serve_answers_every_line_in_order(explainer, image, tmp_path, schema):
    import jsonschema

    requests = [json.dumps({"img_path": str(image), "destination_path": str(tmp_path), "id": 1}), "",
                "garbage", json.dumps({"img_path": str(tmp_path / "nope.png"), "id": 3}), "   "]
    out = io.StringIO()
    answered = serve(explainer, io.StringIO("\n".join(requests) + "\n"), out, default_out=None)
    lines = out.getvalue().splitlines()
    assert answered == 3 and len(lines) == 3
    answers = [json.loads(line) for line in lines]
    assert [a["result"] for a in answers] == ["ok", "fail", "fail"]
    assert answers[0]["id"] == 1 and answers[2]["id"] == 3 and "id" not in answers[1]
    for answer in answers:
        jsonschema.validate(answer, schema)


def test_request_lines_cut_overlong_lines_at_the_limit():
    from medcam.inference.serve import request_lines

    text = "a" * 5 + "\n" + "b" * 6 + "\n" + "c" * 23 + "\n" + "d" * 4
    assert list(request_lines(io.StringIO(text), limit=6)) == ["aaaaa\n", "bbbbbb\n", None, "dddd"]
@pytest.fixture
def dental_checkpoint(tmp_path):
    """A 2-class model with folders 1/3 shown as the screener's verdicts, biased to 'Healthy Patient'."""
    import torch

    import medcam

    model = medcam.build_model({"name": "tiny_classifier", "class_names": ["1", "3"], "preprocess": {"size": 32},
                                "display_names": {"1": "Healthy Patient", "3": "Patient with Osteoporosis"}})
    with torch.no_grad():
        model.head.fc.bias.copy_(torch.tensor([20.0, -20.0]))
    return medcam.save(model, tmp_path / "dental.pt")


def test_dental_protocol_answers_byte_for_byte(dental_checkpoint, image, tmp_path, monkeypatch):
    import shutil

    from medcam.inference import pipeline
    from test_protocols import DOCUMENTED_ANSWER, FAIL_ANSWER

    monkeypatch.setattr(pipeline, "timestamp", lambda: "20240212162822")
    scan = tmp_path / "scans" / "BrunoScholles-Radiography.png"
    scan.parent.mkdir()
    shutil.copy(image, scan)
    outputs = tmp_path / "gigacandanga_exec" / "outputs"
    requests = [f'{{"img_path": "{scan}","destination_path": "{outputs}"}}', '{"img_path": "missing.png"}', "oops"]
    out, err = io.StringIO(), io.StringIO()
    serve(Explainer.from_checkpoint(dental_checkpoint), io.StringIO("\n".join(requests) + "\n"), out,
          default_out=str(tmp_path / "default"), protocol="dental", stderr=err)
    expected_ok = DOCUMENTED_ANSWER.replace("/d01/scholles/gigasistemica/gigacandanga_exec/outputs", str(outputs))
    assert out.getvalue() == expected_ok + "\n" + FAIL_ANSWER + "\n" + FAIL_ANSWER + "\n"
    assert (outputs / "BrunoScholles-Radiography_saliency_20240212162822.png").is_file()
    assert (outputs / "BrunoScholles-Radiography_overlay_20240212162822.png").is_file()
    reasons = [line for line in err.getvalue().splitlines() if ": fail: " in line]  # warnings may come too
    assert len(reasons) == 2 and "missing.png: image file not found" in reasons[0]
    assert "malformed request: not valid JSON" in reasons[1]


def test_dental_protocol_through_the_cli(dental_checkpoint, image, tmp_path, monkeypatch, cli):
    import shutil
    import sys

    scan = tmp_path / "x.png"
    shutil.copy(image, scan)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({"img_path": str(scan),
                                                              "destination_path": str(tmp_path)}) + "\n"))
    code, out, _ = cli("explain", str(dental_checkpoint), "--serve", "--protocol", "dental")
    answer = json.loads(out)
    assert code == 0 and list(answer) == ["result", "diagnosis", "saliency_img_path", "overlay_img_path"]
    assert answer["diagnosis"] == "Healthy Patient" and answer["saliency_img_path"].startswith(str(tmp_path / "x_saliency_"))
    code, _, err = cli("explain", str(dental_checkpoint), str(scan), "--protocol", "dental")
    assert code == 2 and "--protocol dental is the answer format of --serve" in err
