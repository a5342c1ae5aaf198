"""Bad tensors: NaN/Inf, 0-255 floats, other float dtypes, wrong shapes and targets, Score-CAM's chunk size.

Images enter as ``(B, C, H, W)`` floats in [0, 1]. Values that cannot be such
an image are refused where they enter (the model's forward, ``medcam.explain``,
the explain pipeline), never turned into maps that look valid.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import medcam
from medcam.errors import AttributionError, DataError, ImageValueError, ShapeError

from _reliability import expect_error, random_images


def _nan():
    x = random_images()
    x[1, 0, 5, 5] = float("nan")
    return x


def _inf():
    x = random_images()
    x[0, 2, 0, 0] = float("inf")
    return x


BAD_VALUES = [
    pytest.param(_nan, "NaN", id="nan-image"),
    pytest.param(_inf, "infinite", id="inf-image"),
    pytest.param(lambda: random_images() * 255, "outside [0, 1]", id="0-255-floats"),
    pytest.param(lambda: random_images() - 0.5, "outside [0, 1]", id="negative-values"),
]


@pytest.mark.parametrize("make, fragment", BAD_VALUES)
def test_model_forward_refuses_bad_values(tiny_model, make, fragment):
    expect_error(lambda: tiny_model(make()), ImageValueError, fragment)


@pytest.mark.parametrize("method", ["gradcam", "eigencam", "scorecam", "cam"])
@pytest.mark.parametrize("make, fragment", BAD_VALUES[:3])
def test_explain_refuses_bad_values(tiny_model, method, make, fragment):
    """Before: all-zero maps that look valid (or Eigen-CAM's raw linear-algebra error)."""
    expect_error(lambda: medcam.explain(tiny_model, make(), method), ImageValueError, fragment)


def test_range_check_opt_out_for_callers_who_normalise(tiny_model):
    """``model.input_range = None`` accepts any finite values (callers with their own scaling); NaN stays refused."""
    x = random_images() * 255
    tiny_model.input_range = None
    assert tiny_model(x).logits.shape == (2, 3)
    assert medcam.explain(tiny_model, x).shape == (2, 64, 64)
    expect_error(lambda: tiny_model(_nan()), ImageValueError, "NaN")


def test_pipeline_refuses_bad_arrays(explainer):
    grey = np.full((80, 80), 0.5, dtype=np.float32)
    grey[3, 3] = np.nan
    expect_error(lambda: explainer.explain(grey), DataError, "[0, 1]")
    expect_error(lambda: explainer.explain(np.full((80, 80), 128.0, dtype=np.float32)), DataError, "[0, 1]")


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16, torch.bfloat16])
def test_other_float_dtypes_give_the_float32_answer(tiny_model, dtype):
    """Before: torch's conv error ('Input type (double) and bias type (float) should be the same')."""
    tiny_model.eval()
    x = random_images()
    x_cast = x.to(dtype)
    expected = tiny_model(x_cast.float()).logits  # the same pixel values, as float32
    got = tiny_model(x_cast).logits
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected)
    maps = medcam.explain(tiny_model, x_cast)
    torch.testing.assert_close(maps, medcam.explain(tiny_model, x_cast.float()))


SHAPES = [
    pytest.param(lambda: random_images()[0], ShapeError, "add the batch dimension", id="missing-batch-dim"),
    pytest.param(lambda: random_images()[:, :1], ShapeError, "1 channels but the model expects in_chans=3",
                 id="wrong-channels"),
    pytest.param(lambda: (random_images() * 255).to(torch.uint8), ShapeError, "floating point", id="uint8-tensor"),
    pytest.param(lambda: random_images()[:0], ShapeError, "empty batch", id="empty-batch"),
    pytest.param(lambda: random_images().numpy(), ShapeError, "torch.Tensor", id="numpy-array"),
]


@pytest.mark.parametrize("make, error, fragment", SHAPES)
def test_bad_shapes(tiny_model, make, error, fragment):
    expect_error(lambda: tiny_model(make()), error, fragment)
    expect_error(lambda: medcam.explain(tiny_model, make()), error, fragment)


TARGETS = [
    pytest.param([0], ShapeError, "never silently truncated", id="target-list-too-short"),
    pytest.param(torch.tensor([0.0, 1.0]), AttributionError, "integer class indices", id="float-targets"),
    pytest.param(3, AttributionError, "out of range", id="target-out-of-range"),
    pytest.param(True, AttributionError, "class index", id="bool-target"),
]


@pytest.mark.parametrize("target, error, fragment", TARGETS)
def test_bad_targets(tiny_model, target, error, fragment):
    expect_error(lambda: medcam.explain(tiny_model, random_images(), target=target), error, fragment)


def test_scorecam_chunks_are_bounded_in_pixels():
    """Score-CAM's masked batch is (chunk, C, H, W): the chunk shrinks (with one warning) when
    batch_size x H x W would pass the bound, and the scores are those of small chunks."""
    from medcam_cam.perturbation import MAX_CHUNK_PIXELS, masked_input_scores

    size = 512
    limit = MAX_CHUNK_PIXELS // (size * size)
    seen: list[int] = []

    def forward(x):
        seen.append(x.shape[0])
        return x.mean(dim=(2, 3))  # (n, 3) "logits"

    images = torch.rand(1, 3, size, size)
    acts = torch.rand(1, 4 * limit, 8, 8)
    targets = torch.tensor([[1]])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        big = masked_input_scores(forward, images, acts, targets, lambda z: z, batch_size=10 ** 6, progress=False)
    assert max(seen) == limit and len(seen) == 4
    assert any("scorecam" in str(w.message) and "batch_size" in str(w.message) for w in caught)
    small = masked_input_scores(forward, images, acts, targets, lambda z: z, batch_size=7, progress=False)
    torch.testing.assert_close(big, small)
