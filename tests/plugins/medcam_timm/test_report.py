"""medcam_timm.report: the docs table, built on the meta device."""
from __future__ import annotations

import torchvision

from medcam_timm.report import main, markdown, rows


def test_rows_count_the_backbone_without_its_classifier():
    (row,) = rows(["resnet18"])
    tv = torchvision.models.resnet18()
    expected = sum(p.numel() for p in tv.parameters()) - sum(p.numel() for p in tv.fc.parameters())
    assert row["params"] == expected == 11_176_512
    assert row["channels"] == [64, 64, 128, 256, 512] and row["strides"] == [2, 4, 8, 16, 32]
    assert row["weights"].startswith("resnet18.") and row["family"] == "ResNet"


def test_markdown_and_main(capsys):
    text = markdown(rows(["efficientnet_b6"]))
    assert "| `efficientnet_b6` | EfficientNet | 32, 40, 72, 200, 576, 2304 | 2, 4, 8, 16, 32, 32 |" in text
    assert "`none in timm`" in text
    main(["pvt_v2_b0"])
    out = capsys.readouterr().out
    assert "| `pvt_v2_b0` | PVT v2 | 32, 64, 160, 256 | 4, 8, 16, 32 | 3.4M |" in out and "(timm " in out
