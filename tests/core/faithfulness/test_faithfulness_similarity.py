"""Pearson, Spearman and SSIM (medcam.faithfulness.similarity) against SciPy, NumPy and scikit-image."""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from skimage.metrics import structural_similarity

from medcam.faithfulness.similarity import average_ranks, pearson, spearman, ssim


def test_ranks_with_ties_equal_scipy():
    values = torch.tensor([[3.0, 1.0, 3.0, 2.0, 1.0, 3.0], [0.0, 0.0, 0.0, 0.0, 0.0, 1.0]])
    for row, got in zip(values.numpy(), average_ranks(values).numpy()):
        np.testing.assert_array_equal(got, scipy.stats.rankdata(row))


def test_spearman_and_pearson_equal_scipy_and_numpy():
    gen = torch.Generator().manual_seed(0)
    a = torch.rand(4, 12, 12, generator=gen)
    b = a + 0.3 * torch.rand(4, 12, 12, generator=gen)
    b[1] = (b[1] * 3).round()                   # heavy ties
    b[2] = -a[2]
    for i in range(4):
        x, y = a[i].numpy().ravel(), b[i].numpy().ravel()
        assert float(spearman(a, b)[i]) == pytest.approx(scipy.stats.spearmanr(x, y)[0], abs=1e-10)
        assert float(pearson(a, b)[i]) == pytest.approx(np.corrcoef(x, y)[0, 1], abs=1e-10)
    assert float(spearman(a, b)[2]) == pytest.approx(-1.0)
    assert math.isnan(float(spearman(a[:1], torch.zeros(1, 12, 12))[0]))   # a constant map has no ranking


@pytest.mark.parametrize("shape", [(24, 30), (11, 15)])
def test_ssim_equals_scikit_image(shape):
    gen = torch.Generator().manual_seed(1)
    a = torch.rand(3, *shape, generator=gen)
    b = (a + 0.4 * torch.rand(3, *shape, generator=gen)).clamp(0, 1)
    for i in range(3):
        expected = structural_similarity(a[i].double().numpy(), b[i].double().numpy(), data_range=1.0,
                                         gaussian_weights=True, sigma=1.5, use_sample_covariance=False)
        assert float(ssim(a, b)[i]) == pytest.approx(expected, abs=1e-8)
    assert float(ssim(a, a)[0]) == pytest.approx(1.0)


def test_ssim_of_maps_smaller_than_the_window():
    """9 x 7 maps: a 7-tap window (the largest odd one that fits), one window position per column shift."""
    gen = torch.Generator().manual_seed(2)
    a = torch.rand(2, 9, 7, generator=gen)
    assert float(ssim(a, a)[0]) == pytest.approx(1.0)
    assert float(ssim(a, 1 - a)[0]) < 0
