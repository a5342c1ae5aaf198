"""A real third-party distribution, installed with pip, adds a backbone through an entry point."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
PLUGIN = REPO / "examples" / "third_party_plugin"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """``examples/third_party_plugin`` pip-installed into a private target folder."""
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
           "--target", str(target), str(PLUGIN)]
    result = subprocess.run(cmd, capture_output=True, text=True, cwd=build)
    assert result.returncode == 0, result.stderr
    assert list(target.glob("medcam_mini_vgg-*.dist-info"))
    return target


def run_with(site: Path, code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {**os.environ, "PYTHONPATH": str(site), **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=environ)


def test_installed_plugin_is_listed_with_metadata(plugin_site):
    result = run_with(plugin_site, """
        from medcam.cli import main
        main(["list", "backbones", "mini*"])
    """)
    assert "mini_vgg" in result.stdout, result.stderr
    assert "[medcam-mini-vgg]" in result.stdout and "channels=[32, 64, 128] strides=[2, 4, 8]" in result.stdout


def test_installed_plugin_builds_and_runs(plugin_site):
    result = run_with(plugin_site, """
        import torch, medcam
        model = medcam.build_model({"backbone": {"name": "mini_vgg", "width": 8}, "num_classes": 3, "in_chans": 1})
        out = model(torch.rand(2, 1, 32, 32), return_features=True)
        print(tuple(out.logits.shape), [tuple(f.shape) for f in out.features])
        print(medcam.registry.backbones.entry("mini_vgg").provider)
    """)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "(2, 3) [(2, 8, 16, 16), (2, 16, 8, 8), (2, 32, 4, 4)]"
    assert lines[1] == "medcam-mini-vgg"


def test_autoload_switch_hides_the_installed_plugin(plugin_site):
    result = run_with(plugin_site, """
        import medcam
        print("mini_vgg" in medcam.registry.backbones, "tiny_cnn" in medcam.registry.backbones)
    """, MEDCAM_DISABLE_PLUGIN_AUTOLOAD="1")
    assert result.stdout.strip() == "False True", result.stderr
