"""``medcam explain`` through the real entry point (medcam/cli/explain_commands.py).

The checkpoint is trained by ``medcam train`` (conftest); the BUSI test runs
on real images from ../shared/data/busi and skips when they are absent.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image


PNG = re.compile(r"^(?P<stem>.+)_(?P<kind>saliency|overlay|mask|segmap)_(?P<stamp>\d{14})(_\d+)?\.png$")


@pytest.mark.data
def test_busi_images_with_a_corrupt_file(busi_dir, trained_checkpoint, tmp_path, corrupt_png, schema, cli):
    import jsonschema

    images = [sorted(p for p in (busi_dir / c).glob("*.png") if "_mask" not in p.name)[0]
              for c in ("benign", "malignant", "normal")]
    corrupt = corrupt_png(tmp_path / "broken scan.png")
    out = tmp_path / "out"
    code, text, _ = cli("explain", trained_checkpoint, images[0], corrupt, *images[1:], "--json",
                        "--out", out, "--quiet")
    assert code == 1, "some images failed: exit status 1"
    records = [json.loads(line) for line in text.splitlines()]
    assert [r["result"] for r in records] == ["ok", "fail", "ok", "ok"]
    for record in records:
        jsonschema.validate(record, schema)
    assert records[1]["image"] == str(corrupt) and "broken scan.png: not a readable image" in records[1]["error"]
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 6  # saliency + overlay for each ok image, nothing for the corrupt one
    for path, record in zip([images[0], *images[1:]], [records[0], *records[2:]]):
        with Image.open(path) as original:
            width, height = original.size
        assert record["image"] == str(path) and record["image_size"] == [height, width]
        assert set(record["probabilities"]) == {"normal", "benign", "malignant"}
        assert abs(sum(record["probabilities"].values()) - 1) < 1e-4
        for key, kind in (("saliency_path", "saliency"), ("overlay_path", "overlay")):
            match = PNG.match(Path(record[key]).name)
            assert match and match["stem"] == path.stem and match["kind"] == kind
            with Image.open(record[key]) as png:
                assert png.size == (width, height)
        for x0, y0, x1, y1 in record["boxes"]:
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_folder_table_and_exit_status(synthetic_busi, trained_checkpoint, tmp_path, cli):
    code, text, err = cli("explain", trained_checkpoint, synthetic_busi, "--exclude", "*_mask*",
                          "--out", tmp_path / "out")
    assert code == 0, err
    lines = text.splitlines()
    assert lines[-1] == f"# 12 images: 12 ok, 0 failed; pictures in {tmp_path / 'out'}"
    rows = [line for line in lines if line.startswith("ok    ")]
    assert len(rows) == 12 and "benign (1).png" in rows[0]
    assert "explain:" not in err  # stderr is not a terminal here: no redrawn bar (medcam.progress.show_bar)
    assert len(list((tmp_path / "out").iterdir())) == 24


def test_segmenter_and_overrides(synthetic_busi, trained_checkpoint, segmenter_checkpoint, tmp_path, cli):
    image = synthetic_busi / "malignant" / "malignant (2).png"
    code, text, err = cli("explain", trained_checkpoint, image, "--segmenter", segmenter_checkpoint, "--json",
                          "--out", tmp_path, "--method", "xgradcam", "--target", "benign", "--rolling-ball", "180",
                          "--resize", "pad", "--size", "48", "--grey", "--mask-threshold", "0",
                          "--segmenter-method", "gradcam++")
    assert code == 0, err
    record = json.loads(text)
    assert record["method"] == "xgradcam" and record["target"] == "benign"
    assert record["box_source"] == "segmenter" and record["boxes"] == [[0, 0, 40, 40]]
    assert PNG.match(Path(record["mask_path"]).name)["kind"] == "mask"
    assert record["segmenter_method"] == "gradcam++"
    assert PNG.match(Path(record["segmenter_map_path"]).name)["kind"] == "segmap"


def test_segmenter_method_without_a_learned_segmenter_is_a_usage_error(synthetic_busi, trained_checkpoint, cli):
    image = synthetic_busi / "malignant" / "malignant (2).png"
    code, _, err = cli("explain", trained_checkpoint, image, "--segmenter-method", "gradcam")
    assert code == 2 and "segmenter_method needs a segmenter (--segmenter)" in err
    code, _, err = cli("explain", trained_checkpoint, image, "--segmenter", "lung_fields", "--segmenter-method", "gradcam")
    assert code == 2 and "'lung_fields' has no learned layers" in err


@pytest.mark.parametrize("args, message", [
    ([], "give one or more IMAGE files or folders"),
    (["--serve", "x.png"], "--serve reads requests from stdin: give no IMAGE arguments"),
    (["{empty}"], "no image files found in"),
    (["{image}", "--method", "gradcma"], "did you mean 'gradcam'"),
    (["{image}", "--target", "bengin"], "did you mean 'benign'"),
    (["{image}", "--target", "9"], "target class 9 is out of range"),
    (["{image}", "--size", "big"], "--size: expected HEIGHT[,WIDTH]"),
    (["{image}", "--resize-to", "8"], "preprocess.resize_to: [8, 8] is smaller than size"),
    (["{image}", "--threshold", "2"], "Invalid value for '--threshold'"),
])
def test_usage_errors_exit_2(trained_checkpoint, synthetic_busi, tmp_path, args, message, cli):
    (tmp_path / "empty").mkdir()
    values = {"empty": tmp_path / "empty", "image": synthetic_busi / "benign" / "benign (1).png"}
    filled = [a.format(**values) for a in args]
    code, text, err = cli("explain", trained_checkpoint, *filled, "--out", tmp_path / "out")
    assert code == 2 and message in err, err
    assert text == "" and not (tmp_path / "out").exists()


def test_bad_checkpoints_are_one_line_errors(segmenter_checkpoint, synthetic_busi, tmp_path, cli):
    image = synthetic_busi / "benign" / "benign (1).png"
    code, _, err = cli("explain", segmenter_checkpoint, image)
    assert code == 2 and err.startswith("error: ") and "pass segmenter checkpoints with --segmenter" in err
    assert len(err.strip().splitlines()) == 1
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    code, _, err = cli("explain", junk, image)
    assert code == 2 and "not a medcam checkpoint" in err
    code, _, err = cli("explain", tmp_path / "missing.pt", image)
    assert code == 2 and "does not exist" in err


def test_serve_through_main(trained_checkpoint, synthetic_busi, tmp_path, monkeypatch, cli):
    import io

    image = synthetic_busi / "normal" / "normal (3).png"
    lines = [json.dumps({"img_path": str(image), "destination_path": str(tmp_path / "d")}), "oops"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    code, text, _ = cli("explain", trained_checkpoint, "--serve", "--out", tmp_path / "default")
    answers = [json.loads(line) for line in text.splitlines()]
    assert code == 0 and [a["result"] for a in answers] == ["ok", "fail"]
    assert answers[0]["overlay_path"].startswith(str(tmp_path / "d" / "normal (3)_overlay_"))


@pytest.mark.slow
def test_serve_over_a_pipe_answers_each_line_at_once(trained_checkpoint, synthetic_busi, tmp_path):
    """A real process: each answer arrives before the next request is sent (flushed per line)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "medcam", "explain", str(trained_checkpoint), "--serve", "--out", str(tmp_path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)
    try:
        answers = []
        for request in (json.dumps({"img_path": str(synthetic_busi / "benign" / "benign (2).png"), "id": 1}),
                        "this is not json",
                        json.dumps({"img_path": str(tmp_path / "missing.png"), "id": 3})):
            proc.stdin.write(request + "\n")
            proc.stdin.flush()
            answers.append(json.loads(proc.stdout.readline()))  # blocks until this request's answer
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stdout.close()
        proc.stderr.close()
    assert [a["result"] for a in answers] == ["ok", "fail", "fail"]
    assert answers[0]["id"] == 1 and answers[2]["id"] == 3
    assert "malformed request" in answers[1]["error"] and "image file not found" in answers[2]["error"]
    assert Path(answers[0]["saliency_path"]).is_file()


def test_commands_are_listed(cli):
    code, text, _ = cli("--help")
    assert code == 0 and "explain" in text and "app" in text
