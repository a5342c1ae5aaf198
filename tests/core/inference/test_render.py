"""Pictures and file names: saliency, attribution overlay, mask overlay, timestamped unique PNGs."""
from __future__ import annotations

import re
from datetime import datetime

import numpy as np
import pytest
import torch
from PIL import Image

from medcam.inference.render import (MASK_BOX_COLOR, MASK_COLOR, attribution_overlay, mask_overlay, png_name,
                                     saliency_image, timestamp, write_pngs)
from medcam.viz import colorize, overlay


def test_timestamp_format():
    assert timestamp(datetime(2026, 3, 4, 5, 6, 7)) == "20260304050607"
    assert re.fullmatch(r"\d{14}", timestamp())


def test_png_names_follow_the_screeners_pattern():
    assert png_name("benign (1)", "saliency", "20260304050607") == "benign (1)_saliency_20260304050607.png"
    assert png_name("a", "overlay", "20260304050607", 2) == "a_overlay_20260304050607_2.png"


def test_write_pngs_never_overwrites_and_keeps_pairs_together(tmp_path):
    red = np.zeros((5, 7, 3), np.uint8)
    red[..., 0] = 255
    blue = np.zeros((5, 7, 3), np.uint8)
    blue[..., 2] = 255
    first = write_pngs({"saliency": red, "overlay": blue}, tmp_path / "out", "scan", "20260304050607")
    assert first == {"saliency": str(tmp_path / "out" / "scan_saliency_20260304050607.png"),
                     "overlay": str(tmp_path / "out" / "scan_overlay_20260304050607.png")}
    # only the overlay name is taken: both move on to _1, so the pair keeps one suffix
    (tmp_path / "out" / "scan_saliency_20260304050607.png").unlink()
    second = write_pngs({"saliency": blue, "overlay": red}, tmp_path / "out", "scan", "20260304050607")
    assert second["saliency"].endswith("scan_saliency_20260304050607_1.png")
    assert second["overlay"].endswith("scan_overlay_20260304050607_1.png")
    np.testing.assert_array_equal(np.asarray(Image.open(first["overlay"])), blue)
    np.testing.assert_array_equal(np.asarray(Image.open(second["overlay"])), red)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "scan_overlay_20260304050607.png", "scan_overlay_20260304050607_1.png", "scan_saliency_20260304050607_1.png"]


def test_saliency_is_the_colormap_of_the_map():
    heat = torch.linspace(0, 1, 12).view(3, 4)
    np.testing.assert_array_equal(saliency_image(heat, "hot"), colorize(heat, "hot"))


def test_attribution_overlay_draws_boxes_on_the_blend():
    image = np.full((20, 30, 3), 0.5, np.float32)
    heat = torch.zeros(20, 30)
    plain = attribution_overlay(image, heat, [])
    np.testing.assert_array_equal(plain, overlay(image, heat))
    boxed = attribution_overlay(image, heat, [[5, 4, 15, 12]])
    assert tuple(boxed[4, 5]) == (255, 255, 255) and tuple(boxed[11, 14]) == (255, 255, 255)
    np.testing.assert_array_equal(boxed[15:], plain[15:])  # below the box: untouched


def test_mask_overlay_tints_only_the_mask():
    image = np.zeros((10, 12, 1), np.float32)
    image[..., 0] = np.linspace(0, 1, 12)[None, :]
    mask = torch.zeros(10, 12, dtype=torch.bool)
    mask[2:5, 3:8] = True
    out = mask_overlay(image, mask, alpha=0.4)
    grey = np.round(np.repeat(image, 3, axis=2) * 255.0).astype(np.float64)
    expected = grey.copy()
    expected[2:5, 3:8] = 0.6 * grey[2:5, 3:8] + 0.4 * np.asarray(MASK_COLOR, np.float64)
    np.testing.assert_allclose(out, np.clip(expected + 0.5, 0, 255).astype(np.uint8), atol=1)
    boxed = mask_overlay(image, mask, [[3, 2, 8, 5]])
    assert tuple(boxed[2, 3]) == MASK_BOX_COLOR
    with pytest.raises(ValueError, match="does not match"):
        mask_overlay(image, torch.zeros(3, 3, dtype=torch.bool))
