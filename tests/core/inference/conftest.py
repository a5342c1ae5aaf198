"""Checkpoints for the explain tests: a classifier trained by ``medcam train`` and a segmenter.

Both are made once per test session, without real data: a tiny_cnn classifier
trained 1 epoch through the real ``medcam train`` command on the generated
BUSI-layout folder ``synthetic_busi`` (``tests/conftest.py``), and a tiny U-Net
segmenter built and saved with ``medcam.save`` (its weights do not matter for these tests).
"""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def trained_checkpoint(synthetic_busi, tmp_path_factory) -> Path:
    """``best.pt`` of a 1-epoch ``medcam train`` run (tiny_cnn width 4, 32 x 32 input, classes normal/benign/malignant)."""
    from medcam.cli import main

    root = tmp_path_factory.mktemp("train")
    spec = root / "tiny.yaml"
    spec.write_text("backbone: {name: tiny_cnn, width: 4}\nnum_classes: 3\npreprocess: {size: 32}\n")
    out = root / "run"
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):  # keep the run's report out of the tests' captured output
            main(["train", str(spec), "--data", str(synthetic_busi), "--epochs", "1", "--batch-size", "4",
                  "--out", str(out), "--quiet", "--json", "--val", "0.25", "--test", "0.25"])
    except SystemExit as stop:
        assert not stop.code, f"medcam train failed with exit status {stop.code}"
    assert json.loads(printed.getvalue())["split"] == {"train": 6, "val": 3, "test": 3}
    path = out / "best.pt"
    assert path.is_file()
    return path


@pytest.fixture(scope="session")
def segmenter_checkpoint(tmp_path_factory) -> Path:
    """A tiny U-Net (tiny_cnn encoder, width 4) at 64 x 64, saved with medcam.save."""
    import torch

    import medcam

    torch.manual_seed(0)
    seg = medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4},
                                  "preprocess": {"size": 64}})
    return medcam.save(seg, tmp_path_factory.mktemp("seg") / "seg.pt")


@pytest.fixture(scope="session")
def schema() -> dict:
    """docs/explain.schema.json, checked as a Draft 2020-12 schema."""
    jsonschema = pytest.importorskip("jsonschema")
    path = Path(__file__).resolve().parents[3] / "docs" / "explain.schema.json"
    loaded = json.loads(path.read_text())
    jsonschema.Draft202012Validator.check_schema(loaded)
    return loaded


@pytest.fixture()
def corrupt_png():
    """``corrupt_png(path)`` writes a file that starts like a PNG and then stops (Pillow cannot decode it)."""

    def write(path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10")
        return path

    return write
