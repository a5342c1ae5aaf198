"""docs/coming_from.md: every block marked for CI runs, as written, on the shared data.

The page marks runnable regions ``<!-- ci: NAME --> ... <!-- /ci -->``. In a
region, a ``yaml`` block whose first line is ``# file: NAME`` is written to
that file, and every line of a ``bash`` block is a command, run in order in a
fresh folder with ``../shared/data`` pointing at the real shared data and the
``medcam`` and ``python`` of this environment first on the PATH. Each region
then gets checks of what its text promises. The commands run with one CPU
thread (``OMP_NUM_THREADS=1``): their small convolutions gain little from
more, and on a shared CPU extra threads spin (on the shared development
machine the four sections took 20 minutes with PyTorch's default threads at a
load average near 9, and 2.8 minutes with one thread at a load near 6; not the
same moment, so the ratio is rough).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "coming_from.md"
REGION = re.compile(r"<!-- ci: (\w+) -->(.*?)<!-- /ci -->", re.S)
FENCE = re.compile(r"```(\w+)\n(.*?)```", re.S)
SECTIONS = ("attention", "dental", "siim", "busi")


def _regions() -> dict[str, list[tuple[str, str]]]:
    return {m.group(1): FENCE.findall(m.group(2)) for m in REGION.finditer(DOC.read_text(encoding="utf-8"))}


def _files(blocks: list[tuple[str, str]]) -> dict[str, str]:
    out = {}
    for lang, body in blocks:
        first = body.splitlines()[0] if body.strip() else ""
        if lang == "yaml" and first.startswith("# file: "):
            out[first[len("# file: "):].strip()] = body
    return out


def _commands(blocks: list[tuple[str, str]]) -> list[str]:
    return [line.strip() for lang, body in blocks if lang == "bash" for line in body.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def test_the_page_marks_every_section_and_its_specs_resolve():
    from medcam.spec import resolve_model_spec

    regions = _regions()
    assert tuple(regions) == SECTIONS
    for name, blocks in regions.items():
        assert _commands(blocks), name
        for file, text in _files(blocks).items():
            spec = yaml.safe_load(text)
            spec.setdefault("num_classes", 2)  # medcam train sets it from the data
            names = (spec.get("display_names") or {})
            if isinstance(names, dict):
                spec["class_names"] = list(names) or None
                spec["num_classes"] = len(names) or 2
            resolve_model_spec(spec)


def _run_section(name: str, shared: Path, cwd: Path) -> list[str]:
    """Write the section's files, run its commands; returns each command's stdout."""
    blocks = _regions()[name]
    for file, text in _files(blocks).items():
        (cwd / file).write_text(text, encoding="utf-8")
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
           "TQDM_DISABLE": "1", "OMP_NUM_THREADS": "1"}
    outputs = []
    for command in _commands(blocks):
        command = command.replace("../shared/data", str(shared))
        done = subprocess.run(["bash", "-c", command], cwd=cwd, env=env, capture_output=True, text=True,
                              timeout=3600)
        assert done.returncode == 0, f"{command}\nexit {done.returncode}\n{done.stderr[-3000:]}"
        outputs.append(done.stdout)
    return outputs


@pytest.mark.slow
@pytest.mark.data
def test_attention_section(busi_dir, nih_dir, tmp_path):
    outputs = _run_section("attention", nih_dir.parent, tmp_path)
    assert outputs[-1].split("\n")[:2] == ['"attention_box.lambda": 1.0', '"attention_box.lambda": 0.977']
    run = tmp_path / "runs" / "resnet50_nih_effusion_pneumothorax_la0.5a_t0.3"
    assert (run / "summary_resnet50_nih_effusion_pneumothorax_la0.5a_t0.3.txt").is_file()
    (loss,) = json.loads((run / "results.json").read_text())["spec"]["loss"]
    assert loss["segmenter"] == "lung_fields" and loss["rules"] == {"Effusion": "lower", "Pneumothorax": "upper"}
    assert (loss["mode"], loss["target"], loss["adaptive"]) == ("ratio", "predicted", True)


@pytest.mark.slow
@pytest.mark.data
def test_dental_section(busi_dir, tmp_path):
    from medcam.inference.protocols import DENTAL_KEYS

    outputs = _run_section("dental", busi_dir.parent, tmp_path)
    final = json.loads((tmp_path / "runs" / "dental" / "cv_results.json").read_text())["final"]
    assert final["kind"] == "refit" and final["epochs"] == 1 and Path(final["path"]).name == "model.pt"
    assert "final model: refit on all" in (tmp_path / "runs" / "dental" / "cv_summary.txt").read_text()
    line = outputs[-1].rstrip("\n")
    answer = json.loads(line)
    assert tuple(answer) == DENTAL_KEYS and answer["result"] == "ok"
    assert line == json.dumps(answer)  # the screener's json.dumps layout
    assert answer["diagnosis"] in ("Healthy Patient", "Patient with Osteoporosis")
    assert answer["saliency_img_path"].startswith("outputs/malignant (1)_saliency_")
    assert (tmp_path / answer["overlay_img_path"]).is_file()


@pytest.mark.slow
@pytest.mark.data
def test_siim_section(nih_dir, tmp_path):
    outputs = _run_section("siim", nih_dir.parent, tmp_path)
    assert json.loads((tmp_path / "siim.json").read_text())["split"]["train"] > 0
    result = json.loads((tmp_path / "runs" / "siim" / "results.json").read_text())
    assert result["spec"]["multilabel"] is True and result["spec"]["class_names"] == ["Effusion", "Pneumothorax"]
    assert result["spec"]["loss"][0]["name"] == "weighted_bce"
    record = json.loads(outputs[-1])
    assert record["result"] == "ok" and record["target"] == "Pneumothorax" and isinstance(record["warnings"], list)


@pytest.mark.slow
@pytest.mark.data
def test_busi_section(busi_dir, tmp_path):
    outputs = _run_section("busi", busi_dir.parent, tmp_path)
    record = json.loads(outputs[-1])
    assert record["result"] == "ok" and set(record["probabilities"]) == {"normal", "benign", "malignant"}
