"""The plugin's registry entries (medcam_cam.entries): names, metadata, specs, light imports."""
from __future__ import annotations

import subprocess
import sys

import pytest

import medcam
from medcam.attribution import Attribution
from medcam.errors import SpecError, UnknownNameError
from medcam.registry import attributions

NAMES = ["cam", "gradcam", "gradcam++", "xgradcam", "layercam", "hirescam", "scorecam", "eigencam",
         "ablationcam", "random", "fpm", "integrated_gradients", "input_x_gradient", "occlusion", "gradcamelementwise",
         "eigengradcam", "segeigencam", "shapleycam", "finercam", "kpcacam", "fem", "fullgrad", "sobelcam",
         "guidedbackprop", "guidedgradcam", "refinecam", "sess", "smoothgradcam++", "sscam", "iscam"]


def test_every_method_is_registered_by_the_bundled_distribution():
    listed = attributions.list()
    for name in NAMES:
        assert name in listed
        entry = attributions.entry(name)
        assert entry.provider == "medcam" and entry.value.startswith("medcam_cam.entries:")


@pytest.mark.parametrize("name", NAMES)
def test_metadata_and_build(name):
    info = attributions.info(name)
    assert info["summary"]
    if name not in ("random", "fpm"):
        assert info["citation"] and any(str(y) in info["citation"] for y in range(1960, 2027))
    assert isinstance(info["uses_gradients"], bool)
    method = medcam.build_attribution(name)
    assert isinstance(method, Attribution)
    assert method.spec["name"] == name
    assert method.uses_gradients == info["uses_gradients"]


def test_spec_parameters_are_validated_with_close_matches():
    built = medcam.build_attribution({"name": "scorecam", "batch_size": 8})
    assert built.spec == {"name": "scorecam", "layer": None, "batch_size": 8, "score": "auto", "progress": True}
    with pytest.raises(SpecError, match="did you mean 'batch_size'"):
        medcam.build_attribution({"name": "scorecam", "batch_sise": 8})
    with pytest.raises(UnknownNameError, match="did you mean 'gradcam'"):
        medcam.build_attribution("gradcamm")
    with pytest.raises(SpecError, match="cannot be applied"):
        medcam.explain(None, None, medcam.build_attribution("gradcam"), batch_size=3)  # type: ignore[arg-type]


def test_entries_module_imports_no_torch():
    code = ("import sys, medcam_cam.entries as e; import medcam; medcam.info('gradcam++'); "
            "print('torch' in sys.modules, 'medcam_cam.gradient' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
