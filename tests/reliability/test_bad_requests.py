"""Bad requests to ``medcam explain --serve``: every line gets exactly one answer, a fail record saying what
is wrong, and the service goes on; no line (too long, too deep, not UTF-8) stops it or fills memory."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from medcam.inference.serve import handle_request, serve
from medcam.limits import MAX_REQUEST_CHARS

from _reliability import write_png

LINES = [
    pytest.param("{not json", "not valid JSON", id="not-json"),
    pytest.param("[1, 2]", "expected a JSON object", id="json-array"),
    pytest.param("{}", "'img_path' (a file path string) is required", id="no-img-path"),
    pytest.param('{"img_pth": "a.png"}', "did you mean 'img_path'", id="misspelled-key"),
    pytest.param('{"img_path": "a.png", "threshold": NaN}', "'threshold' must be a number in [0, 1]", id="nan-threshold"),
    pytest.param('{"img_path": "a.png", "threshold": 1e999}', "'threshold' must be a number in [0, 1]",
                 id="infinite-threshold"),
    pytest.param('{"img_path": "a.png", "method": true}', "'method' must be a name", id="bool-method"),
    pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="deeply-nested-json"),
    pytest.param('{"img_path": "a.png", "img_path": 5}', "'img_path' (a file path string) is required",
                 id="duplicate-key"),
]


@pytest.mark.parametrize("line, fragment", LINES)
def test_malformed_line_gets_one_fail_answer(explainer, line, fragment):
    record = handle_request(explainer, line, default_out=None)
    assert record["result"] == "fail" and fragment in record["error"], record["error"]


def test_bad_requests_about_files_and_options(explainer, tmp_path):
    image = write_png(tmp_path / "scan.png", 80, 96)
    blocker = tmp_path / "taken"
    blocker.write_text("a file")
    cases = [({"img_path": str(tmp_path / "gone.png")}, "image file not found"),
             ({"img_path": str(tmp_path)}, "is a folder"),
             ({"img_path": str(image), "method": "gradcma"}, "did you mean 'gradcam'"),
             ({"img_path": str(image), "target": "bengin"}, "did you mean 'benign'"),
             ({"img_path": str(image), "target": 7}, "out of range"),
             ({"img_path": str(image), "destination_path": str(blocker)}, "is a file, not a folder")]
    for request, fragment in cases:
        record = handle_request(explainer, json.dumps({**request, "id": "x"}), default_out=None)
        assert record["result"] == "fail" and fragment in record["error"], (request, record["error"])
        assert record["id"] == "x"


def test_an_overlong_line_is_answered_and_skipped_without_holding_it(explainer, tmp_path):
    image = write_png(tmp_path / "scan.png", 80, 96)
    huge = json.dumps({"img_path": str(image), "id": "x" * (3 * MAX_REQUEST_CHARS)})
    good = json.dumps({"img_path": str(image), "id": 2})
    out = io.StringIO()
    answered = serve(explainer, io.StringIO(huge + "\n" + good + "\n"), out, default_out=None)
    answers = [json.loads(line) for line in out.getvalue().splitlines()]
    assert answered == 2 and len(answers) == 2
    assert answers[0]["result"] == "fail" and "longer than" in answers[0]["error"]
    assert answers[1]["result"] == "ok" and answers[1]["id"] == 2


def test_the_service_survives_invalid_utf8_and_a_missing_final_newline(cli, tiny_checkpoint, tmp_path):
    image = write_png(tmp_path / "scan.png", 80, 96)
    stdin = (b'{"img_path": "\xff\xfe.png"}\n' + json.dumps({"img_path": str(image), "id": 2}).encode())
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}  # what a UTF-8 locale gives: strict decoding
    proc = subprocess.run([sys.executable, "-m", "medcam", "explain", str(tiny_checkpoint), "--serve",
                           "--out", str(tmp_path / "out")], input=stdin, capture_output=True, timeout=300, env=env)
    answers = [json.loads(line) for line in proc.stdout.decode().splitlines()]
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert [a["result"] for a in answers] == ["fail", "ok"]
    assert "image file not found" in answers[0]["error"]
