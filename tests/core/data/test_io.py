from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from medcam.data.io import (as_image_array, image_size, is_image_file, read_image, read_mask, reduce_array,
                            to_channels)
from medcam.errors import DataError

from medcam_data_trees import save_png


def test_grey_8bit_is_scaled_by_255(tmp_path):
    arr = np.array([[0, 51], [204, 255]], dtype=np.uint8)
    img = read_image(save_png(tmp_path / "g.png", arr))
    assert img.shape == (2, 2, 1) and img.dtype == np.float32
    np.testing.assert_allclose(img[..., 0], arr / 255.0)


def test_16bit_is_scaled_by_65535(tmp_path):
    arr = np.array([[0, 1000], [40000, 65535]], dtype=np.uint16)
    path = tmp_path / "g16.png"
    Image.fromarray(arr).save(path)  # Pillow writes a 16-bit greyscale PNG
    img = read_image(path)
    np.testing.assert_allclose(img[..., 0], arr / 65535.0, rtol=1e-6)


def test_rgba_alpha_composites_over_black(tmp_path):
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [200, 100, 50, 255]
    rgba[0, 1] = [200, 100, 50, 0]
    img = read_image(save_png(tmp_path / "a.png", rgba))
    assert img.shape == (1, 2, 3)
    np.testing.assert_allclose(img[0, 0], [200 / 255, 100 / 255, 50 / 255], rtol=1e-6)
    np.testing.assert_allclose(img[0, 1], 0.0)


def test_grey_alpha_and_palette_and_bilevel(tmp_path):
    la = np.stack([np.full((2, 2), 100, np.uint8), np.full((2, 2), 255, np.uint8)], -1)
    assert np.allclose(read_image(save_png(tmp_path / "la.png", la, mode="LA"))[..., 0], 100 / 255)
    pal = Image.fromarray(np.array([[0, 1]], dtype=np.uint8), mode="P")
    pal.putpalette([0, 0, 0, 255, 0, 0] + [0] * 762)
    pal.save(tmp_path / "p.png")
    np.testing.assert_allclose(read_image(tmp_path / "p.png")[0, 1], [1.0, 0.0, 0.0])
    Image.fromarray(np.array([[0, 255]], dtype=np.uint8)).convert("1").save(tmp_path / "b.png")
    np.testing.assert_allclose(read_image(tmp_path / "b.png")[0, :, 0], [0.0, 1.0])


def test_channel_conversion_uses_bt601_luma():
    rgb = np.array([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=np.float32)
    grey = to_channels(rgb, 1)
    np.testing.assert_allclose(grey[0, :, 0], [0.299, 0.587], rtol=1e-6)
    three = to_channels(np.full((2, 2, 1), 0.25, np.float32), 3)
    assert three.shape == (2, 2, 3) and np.all(three == 0.25)
    with pytest.raises(DataError, match="1 or 3 channels"):
        to_channels(rgb, 2)


def test_read_mask_is_any_channel_nonzero(tmp_path):
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[0, 0, 2] = 1
    m = read_mask(save_png(tmp_path / "m.png", rgb))
    assert m.dtype == bool and m.tolist() == [[True, False], [False, False]]


@pytest.mark.parametrize("setup, message", [
    (lambda p: None, "image file not found"),
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_bytes(b"not an image at all"), "not a readable image"),
])
def test_bad_files_raise_data_error_naming_the_file(tmp_path, setup, message):
    path = tmp_path / "bad name (1).png"
    setup(path)
    with pytest.raises(DataError, match=message) as err:
        read_image(path)
    assert "bad name (1).png" in str(err.value)


def test_truncated_png_is_corrupt(tmp_path):
    path = save_png(tmp_path / "t.png", np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    assert image_size(path) == (64, 64)  # the header is intact
    with pytest.raises(DataError, match="t.png: corrupt image data"):
        read_image(path)


def test_in_memory_images():
    u8 = np.full((3, 4), 255, np.uint8)
    assert as_image_array(u8).shape == (3, 4, 1) and as_image_array(u8).max() == 1.0
    t = torch.full((3, 5, 6), 0.5)
    assert as_image_array(t).shape == (5, 6, 3)
    pil = Image.fromarray(np.zeros((2, 3, 3), np.uint8))
    assert as_image_array(pil).shape == (2, 3, 3)
    with pytest.raises(DataError, match=r"must lie in \[0, 1\]"):
        as_image_array(np.full((2, 2), 3.0, np.float32))


def test_is_image_file():
    assert is_image_file("a/b (1).PNG") and is_image_file("x.jpeg")
    assert not is_image_file(".hidden.png") and not is_image_file("notes.txt")


def test_reduce_array_averages_blocks_and_partial_edges():
    arr = np.arange(5 * 7, dtype=np.float32).reshape(5, 7)
    out = reduce_array(arr, 3)
    assert out.shape == (2, 3)
    assert out[0, 0] == pytest.approx(arr[:3, :3].mean()) and out[1, 2] == pytest.approx(arr[3:, 6:].mean())
    assert reduce_array(np.full((5, 7, 3), 0.25, np.float32), 4).shape == (2, 2, 3)
    assert np.all(reduce_array(np.full((5, 7, 3), 0.25, np.float32), 4) == 0.25)  # constant stays constant


@pytest.mark.parametrize("mode, dtype, scale", [("L", np.uint8, 255), ("I;16", np.uint16, 65535)])
def test_read_image_reduced_while_decoding(tmp_path, mode, dtype, scale):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, scale, (37, 50), dtype=dtype)
    path = tmp_path / "r.png"
    Image.fromarray(arr).save(path)
    out = read_image(path, reduce=4)
    assert out.shape == (10, 13, 1)
    np.testing.assert_allclose(out[..., 0], reduce_array(arr.astype(np.float32) / scale, 4), atol=1 / 255)


def test_jpeg_is_decoded_at_a_reduced_scale(tmp_path):
    path = tmp_path / "big.jpg"
    Image.fromarray(np.full((400, 600, 3), 120, np.uint8)).save(path, quality=95)
    out = read_image(path, reduce=4)
    assert out.shape == (100, 150, 3)
    np.testing.assert_allclose(out, 120 / 255, atol=2 / 255)


def test_pixel_limit_is_checked_from_the_header(tmp_path):
    path = save_png(tmp_path / "p.png", np.zeros((30, 40), np.uint8))
    assert image_size(path, max_pixels=1200) == (30, 40)
    with pytest.raises(DataError, match=r"40x30 is 0.0 Mpx, more than the limit of 0.0 Mpx"):
        image_size(path, max_pixels=1199)
    with pytest.raises(DataError, match="more than the limit"):
        read_image(path, max_pixels=1000)
