"""The segmentation plugin's light entry module: registration, metadata, no heavy imports."""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

from medcam.registry import backbones, segmenters
from medcam.spec import resolve_segmenter_spec
from medcam_seg import entries

SEGMENTERS = ["unet", "unet++", "fpn", "deeplabv3+", "tiramisu56", "tiramisu67", "tiramisu103", "attention_resunet",
              "lung_fields"]
ENCODERS = ["tiramisu56_encoder", "tiramisu67_encoder", "tiramisu103_encoder"]


def test_every_name_is_registered_by_medcam():
    assert set(SEGMENTERS) <= set(segmenters.list())
    assert set(ENCODERS) <= set(backbones.list())
    for name in SEGMENTERS:
        info = segmenters.info(name)
        assert info["provider"] == "medcam" and info["value"].startswith("medcam_seg.entries:")
        assert info["summary"] and info["citation"]


@pytest.mark.parametrize("name", SEGMENTERS)
def test_segmenter_specs_resolve_with_injected_parameters(name):
    params = inspect.signature(segmenters.get(name)).parameters
    assert "in_chans" in params and "num_classes" in params
    spec = resolve_segmenter_spec({"name": name, "in_chans": 1, "num_classes": 2})
    assert spec["segmenter"]["name"] == name and "in_chans" not in spec["segmenter"]
    assert spec["in_chans"] == 1 and spec["num_classes"] == 2


def test_encoder_default_accepts_names_and_part_specs():
    assert resolve_segmenter_spec({"name": "unet"})["segmenter"]["encoder"] == {"name": "resnet34"}
    spec = resolve_segmenter_spec({"name": "fpn", "encoder": {"name": "tiny_cnn", "width": 8}})
    assert spec["segmenter"]["encoder"] == {"name": "tiny_cnn", "width": 8}
    assert resolve_segmenter_spec({"name": "unet++", "encoder": "tiny_cnn"})["segmenter"]["encoder"] == "tiny_cnn"


@pytest.mark.parametrize("depth, channels", [
    (56, [96, 144, 192, 240, 336]),     # 48 + 4*12 per block; bottleneck adds 4*12
    (67, [128, 208, 288, 368, 528]),    # 48 + 5*16 per block; bottleneck adds 5*16
    (103, [112, 192, 304, 464, 896]),   # Jegou et al. README: m = 112, 192, 304, 464, 656 (+240 = 896)
])
def test_encoder_metadata_channels(depth, channels):
    assert entries.tiramisu_encoder_channels(depth) == channels
    info = backbones.info(f"tiramisu{depth}_encoder")
    assert info["channels"] == channels and info["strides"] == [2, 4, 8, 16, 32] and info["layout"] == "map"


def test_listing_and_info_import_no_model_code(tmp_path):
    code = (
        "import sys\n"
        "from medcam.registry import backbones, segmenters\n"
        "rows = segmenters.infos()\n"
        "info = backbones.info('tiramisu103_encoder')\n"
        "heavy = [m for m in ('torch', 'segmentation_models_pytorch', 'timm', 'medcam_seg.tiramisu',\n"
        "         'medcam_seg.smp_nets', 'medcam_seg.attention_resunet', 'medcam_seg.lung_fields', 'skimage',\n"
        "         'scipy') if m in sys.modules]\n"
        "assert 'medcam_seg.entries' in sys.modules\n"
        "print(len(rows), heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path)
    count, heavy = out.stdout.strip().split(" ", 1)
    assert int(count) >= len(SEGMENTERS) and heavy == "[]", out.stdout + out.stderr
