"""medcam_timm.entries: registration, metadata without building, and metadata == built model."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from click.testing import CliRunner

from medcam.build import build_backbone
from medcam.errors import SpecError
from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import backbones
from medcam.spec import resolve_part
from medcam_timm.entries import FAMILIES, VARIANTS

NAMES = sorted(VARIANTS)


def test_every_variant_is_registered_through_an_entry_point():
    for name in NAMES:
        entry = backbones.entry(name)
        assert entry.provider == "medcam" and entry.value == f"medcam_timm.entries:{name}"
    assert backbones.entry("timm").value == "medcam_timm.entries:timm_namespace"
    expected = {f"vgg{d}{b}" for d in (11, 13, 16, 19) for b in ("", "_bn")} | \
        {f"resnet{d}" for d in (18, 34, 50, 101, 152)} | {f"pvt_v2_b{i}" for i in range(6)} | \
        {f"efficientnet_b{i}" for i in range(8)} | {f"efficientnet_lite{i}" for i in range(3)} | \
        {"densenet121", "densenet169", "densenet201"}
    assert set(NAMES) == expected


def test_listing_and_info_import_neither_torch_nor_timm():
    code = textwrap.dedent("""
        import sys
        from medcam.registry import backbones
        rows = [backbones.info(n) for n in backbones.list() if backbones.entry(n).value.startswith("medcam_timm")]
        from medcam_timm.entries import VARIANTS
        assert len(rows) == len(VARIANTS) + 1 == 34, len(rows)
        assert rows[0]["channels"], rows[0]
        heavy = [m for m in ("torch", "timm", "medcam_timm.backbone") if m in sys.modules]
        print("HEAVY", heavy)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


@pytest.mark.parametrize("name", NAMES)
def test_metadata_equals_the_built_feature_info(name):
    """Built on the meta device (no memory, no compute): the levels come from timm's model, not the table."""
    info = backbones.info(name)
    with torch.device("meta"):
        model = build_backbone(name, in_chans=3)
    declared = FeatureInfo([FeatureLevel(c, s, m) for c, s, m in zip(info["channels"], info["strides"],
                                                                     info["modules"])],
                           cam_level=info["cam_level"])
    assert model.feature_info == declared, (model.feature_info.modules(), info["modules"])
    assert info["layout"] == ("tokens" if name.startswith("pvt") else "map")
    assert info["input_multiple"] == 32 and info["citation"]


def test_summaries_docs_and_citations():
    info = backbones.info("densenet121")
    assert "CheXNet" in info["summary"] and "Rajpurkar" in info["citation"] and "Huang" in info["citation"]
    assert "He, Zhang, Ren and Sun" in backbones.info("resnet50")["citation"]
    assert backbones.info("timm")["namespace"] is True
    for name in NAMES:
        doc = backbones.get(name).__doc__
        assert "in_chans" in doc and "checkpoint_path" in doc and "RGB filters are summed" in doc, name
    assert set(backbones.info("pvt_v2_b2")["parameters"]) == {"pretrained", "checkpoint_path", "out_indices",
                                                              "drop_path_rate", "drop_rate"}
    assert set(backbones.info("vgg16")["parameters"]) == {"pretrained", "checkpoint_path", "out_indices"}
    assert {f.key for f in FAMILIES.values()} == {"vgg", "resnet", "pvt_v2", "efficientnet", "efficientnet_lite",
                                                  "densenet"}


def test_spec_validation_uses_the_explicit_parameters():
    with pytest.raises(SpecError, match="did you mean 'pretrained'"):
        resolve_part("backbones", {"name": "resnet50", "pretrianed": True}, "backbone")
    with pytest.raises(SpecError, match="set by medcam"):
        resolve_part("backbones", {"name": "resnet50", "in_chans": 1}, "backbone")
    part = resolve_part("backbones", "timm/resnet10t", "backbone")
    assert part == {"name": "timm/resnet10t", "pretrained": False, "checkpoint_path": None, "out_indices": None,
                    "drop_path_rate": None, "model_kwargs": None}


def test_cli_list_backbones_shows_every_family_with_channels_and_strides():
    from medcam.cli import cli

    result = CliRunner().invoke(cli, ["list", "backbones"])
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.output.splitlines()[1:] if line.strip()}
    for name in NAMES:
        info = backbones.info(name)
        assert f"channels={info['channels']} strides={info['strides']}" in lines[name], lines[name]
    assert "channels=[64, 256, 512, 1024, 2048] strides=[2, 4, 8, 16, 32]" in lines["resnet50"]
    assert "channels=[32, 64, 160, 256] strides=[4, 8, 16, 32]" in lines["pvt_v2_b0"]
    assert "timm" in lines and "timm/<timm model name>" in lines["timm"]
