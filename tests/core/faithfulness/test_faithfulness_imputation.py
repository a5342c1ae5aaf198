"""Noisy linear imputation (medcam.faithfulness.imputation): the imputed values satisfy ROAD's
neighbour equations (checked pixel by pixel in plain Python), equal pytorch-grad-cam's imputer without
noise, and the noise has the requested size."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from medcam.faithfulness.imputation import linear_impute, noisy_linear_impute

WEIGHTS = {(dy, dx): (1 / 12 if dy and dx else 1 / 6) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx}


def _removed(h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    removed = rng.random((h, w)) < 0.4
    removed[2:6, 3:8] = True                     # a block: neighbours that are themselves unknown
    removed[0, :] = True                         # the border: fewer neighbours
    return removed


def test_every_imputed_pixel_is_the_weighted_mean_of_its_neighbours():
    rng = np.random.default_rng(0)
    image = rng.random((2, 9, 11))
    removed = _removed(9, 11, 1)
    out = linear_impute(image, removed)
    np.testing.assert_array_equal(out[:, ~removed], image[:, ~removed])
    for y, x in zip(*np.nonzero(removed)):
        total, weight = np.zeros(2), 0.0
        for (dy, dx), w in WEIGHTS.items():
            if 0 <= y + dy < 9 and 0 <= x + dx < 11:
                total += w * out[:, y + dy, x + dx]
                weight += w
        np.testing.assert_allclose(out[:, y, x], total / weight, rtol=1e-10, atol=1e-12)


def test_hand_computed_single_pixel():
    """One removed pixel at the centre of a 3x3 image: sum(w * v) / sum(w) with w = 1/6 direct, 1/12 diagonal."""
    image = np.arange(9, dtype=np.float64).reshape(1, 3, 3)
    removed = np.zeros((3, 3), dtype=bool)
    removed[1, 1] = True
    # direct neighbours 1, 3, 5, 7 (sum 16), diagonal 0, 2, 6, 8 (sum 16): (16/6 + 16/12) / (4/6 + 4/12) = 4
    assert linear_impute(image, removed)[0, 1, 1] == pytest.approx(4.0)


def test_all_removed_becomes_the_channel_mean():
    image = np.random.default_rng(2).random((3, 4, 5))
    out = linear_impute(image, np.ones((4, 5), dtype=bool))
    np.testing.assert_allclose(out, np.broadcast_to(image.mean(axis=(1, 2), keepdims=True), image.shape))


def test_equal_to_pytorch_grad_cams_imputer_without_noise():
    pytest.importorskip("pytorch_grad_cam")
    from pytorch_grad_cam.metrics.road import NoisyLinearImputer

    gen = torch.Generator().manual_seed(3)
    images = torch.rand(2, 3, 12, 10, generator=gen)
    removed = torch.from_numpy(np.stack([_removed(12, 10, 4), _removed(12, 10, 5)]))
    ours = noisy_linear_impute(images, removed, noise=0.0)
    for i in range(2):  # grad-cam's mask marks the pixels it keeps (1) and imputes the zeros
        theirs = NoisyLinearImputer(noise=0.0)(images[i], (~removed[i]).float())
        torch.testing.assert_close(ours[i], theirs, rtol=1e-5, atol=1e-6)


def test_noise_only_on_imputed_pixels_with_the_requested_std():
    images = torch.full((1, 1, 64, 64), 0.5)
    removed = torch.zeros(1, 64, 64, dtype=torch.bool)
    removed[0, 8:56, 8:56] = True                # a constant image imputes to exactly 0.5 before noise
    out = noisy_linear_impute(images, removed, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out[0, 0][~removed[0]], images[0, 0][~removed[0]])
    residual = out[0, 0][removed[0]] - 0.5
    assert float(residual.std()) == pytest.approx(0.1, rel=0.05)
    again = noisy_linear_impute(images, removed, noise=0.1, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
