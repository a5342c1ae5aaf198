"""Colormaps, overlays and PNG output (medcam/viz/overlay.py)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medcam.errors import ShapeError
from medcam.viz.overlay import as_map, colorize, overlay, save_image, to_rgb


def test_to_rgb_accepts_tensors_arrays_and_pil():
    chw = torch.zeros(3, 4, 5)
    chw[0] = 1.0
    rgb = to_rgb(chw)
    assert rgb.shape == (4, 5, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0].tolist() == [255, 0, 0]
    grey = to_rgb(torch.full((1, 2, 2), 0.5))
    assert grey[0, 0].tolist() == [128, 128, 128]
    assert to_rgb(np.full((2, 2), 2.0))[0, 0].tolist() == [255, 255, 255]          # floats are clipped
    assert to_rgb(Image.new("L", (3, 2), 7)).shape == (2, 3, 3)
    with pytest.raises(ShapeError, match="images\\[i\\]"):
        to_rgb(torch.rand(2, 3, 4, 4))
    with pytest.raises(ShapeError, match="C = 1 or 3"):
        to_rgb(torch.rand(2, 4, 4))


def test_colorize_uses_the_matplotlib_colormap():
    from matplotlib import colormaps

    heat = torch.tensor([[0.0, 1.0]])
    out = colorize(heat, "viridis")
    expected = (np.asarray(colormaps["viridis"]([0.0, 1.0]))[:, :3] * 255 + 0.5).astype(np.uint8)
    assert out.shape == (1, 2, 3)
    assert out[0].tolist() == expected.tolist()
    with pytest.raises(ValueError, match="did you mean 'viridis'"):
        colorize(heat, "viridiss")


def test_overlay_blends_and_resizes():
    image = torch.zeros(3, 8, 8)
    heat = torch.ones(2, 2)
    out = overlay(image, heat, cmap="gray", alpha=0.25)
    assert out.shape == (8, 8, 3)
    assert np.all(out == 64)                               # 0.75 * 0 + 0.25 * 255 = 63.75
    assert np.array_equal(overlay(image, heat, alpha=0.0), to_rgb(image))
    with pytest.raises(ValueError, match="alpha"):
        overlay(image, heat, alpha=1.5)
    with pytest.raises(ShapeError, match="maps\\[i\\]"):
        overlay(image, torch.rand(2, 4, 4))
    assert as_map(torch.rand(1, 4, 4), (8, 8)).shape == (8, 8)


def test_save_image_writes_a_png(tmp_path):
    array = overlay(torch.rand(3, 16, 16), torch.rand(16, 16))
    path = save_image(array, tmp_path / "nested" / "overlay.png")
    with Image.open(path) as loaded:
        assert loaded.format == "PNG"
        assert np.array_equal(np.asarray(loaded.convert("RGB")), array)


@pytest.mark.parametrize("cmap", ["jet", "viridis", "gray"])
def test_colorize_equals_matplotlib_on_every_value(cmap):
    """The uint8 lookup table gives what the colormap's own float path gives, rounded, bin edges included."""
    from matplotlib import colormaps

    values = np.concatenate([np.linspace(0, 1, 4097, dtype=np.float32), np.arange(257, dtype=np.float32) / 256])
    heat = torch.from_numpy(values).view(1, -1)
    expected = (np.asarray(colormaps[cmap](values))[:, :3] * 255 + 0.5).astype(np.uint8)
    assert np.array_equal(colorize(heat, cmap)[0], expected)


def test_overlay_matches_a_float64_blend():
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    heat = torch.from_numpy(rng.random((64, 64), dtype=np.float32))
    for alpha in (0.0, 0.3, 0.5, 1.0):
        reference = np.clip((1 - alpha) * image.astype(np.float64) + alpha * colorize(heat).astype(np.float64) + 0.5,
                            0, 255).astype(np.uint8)
        assert np.abs(overlay(image, heat, alpha=alpha).astype(int) - reference).max() <= 1
