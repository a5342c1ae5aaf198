"""Pointing game and energy-based pointing game (medcam.faithfulness.pointing): cases worked out by hand
and Quantus's PointingGame / RelevanceMassAccuracy on the same maps and masks."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import medcam
from medcam.faithfulness.pointing import dilate


def _region(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> torch.Tensor:
    region = torch.zeros(h, w, dtype=torch.bool)
    region[y0:y1, x0:x1] = True
    return region


def test_pointing_game_by_hand():
    maps = torch.zeros(4, 20, 20)
    maps[0, 5, 5] = 1.0       # inside the region
    maps[1, 5, 15] = 1.0      # 5 px right of the region (x1 = 10 excluded): miss at 0 px, hit at 5 px
    maps[2, 18, 18] = 1.0     # far away
    # image 3: constant map, no peak -> miss
    regions = _region(20, 20, 2, 8, 2, 10).expand(4, 20, 20)
    exact = medcam.build_metric({"name": "pointing_game", "tolerance": 0})(maps=maps, regions=regions)
    assert exact.tolist() == [100.0, 0.0, 0.0, 0.0]
    near = medcam.build_metric({"name": "pointing_game", "tolerance": 6})(maps=maps, regions=regions)
    assert near.tolist() == [100.0, 100.0, 0.0, 0.0]
    empty = medcam.build_metric("pointing_game")(maps=maps[:1], regions=torch.zeros(1, 20, 20, dtype=torch.bool))
    assert math.isnan(float(empty[0]))


def test_dilation_is_a_euclidean_disk():
    region = torch.zeros(1, 9, 9, dtype=torch.bool)
    region[0, 4, 4] = True
    grown = dilate(region, 2.0)[0]
    yy, xx = torch.meshgrid(torch.arange(9), torch.arange(9), indexing="ij")
    assert torch.equal(grown, (yy - 4) ** 2 + (xx - 4) ** 2 <= 4)


def test_energy_pointing_game_by_hand():
    maps = torch.zeros(2, 4, 4)
    maps[0, 0, 0], maps[0, 3, 3] = 3.0, 1.0       # 3 of 4 units of energy inside the top-left quadrant
    regions = _region(4, 4, 0, 2, 0, 2).expand(2, 4, 4)
    got = medcam.build_metric("energy_pointing_game")(maps=maps, regions=regions)
    assert got.tolist() == [75.0, 0.0]           # image 1: no energy at all scores 0
    with pytest.raises(ValueError, match="non-negative"):
        medcam.build_metric("energy_pointing_game")(maps=maps - 1, regions=regions)


def test_equal_to_quantus(batch):
    quantus = pytest.importorskip("quantus")
    images, maps, _ = batch
    regions = torch.zeros(3, 32, 32, dtype=torch.bool)
    regions[0, 4:20, 4:20] = True
    regions[1, 10:30, 0:12] = True
    regions[2, :, 16:] = True
    peaks = maps.flatten(1).argmax(1)
    regions.view(3, -1)[0, peaks[0]] = True     # image 0 is a hit for sure
    pg = medcam.build_metric({"name": "pointing_game", "tolerance": 0})(maps=maps, regions=regions)
    energy = medcam.build_metric("energy_pointing_game")(maps=maps, regions=regions)
    kwargs = dict(x_batch=images.numpy(), y_batch=np.zeros(3, dtype=int), a_batch=maps[:, None].numpy(),
                  s_batch=regions[:, None].numpy().astype(np.float32), model=None, channel_first=True)
    theirs = quantus.PointingGame(normalise=False, abs=False, disable_warnings=True)(**kwargs)
    np.testing.assert_array_equal(pg.numpy(), 100.0 * np.asarray(theirs, dtype=np.float64))
    theirs = quantus.RelevanceMassAccuracy(normalise=False, abs=False, disable_warnings=True)(**kwargs)
    np.testing.assert_allclose(energy.numpy(), 100 * np.asarray(theirs), rtol=1e-5)
    assert pg[0] == 100.0


def test_shape_errors():
    with pytest.raises(medcam.errors.ShapeError, match="regions are"):
        medcam.build_metric("pointing_game")(maps=torch.rand(1, 8, 8), regions=torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="needs regions"):
        medcam.build_metric("pointing_game")(maps=torch.rand(1, 8, 8))
