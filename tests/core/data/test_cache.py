from __future__ import annotations

import os

import numpy as np
import torch
from medcam_data_trees import noise_image, rect_mask, save_png

from medcam.data.base import MedcamDataset, Record
from medcam.data.cache import ResizedCache
from medcam.data.preprocess import Preprocess


def _dataset(tmp_path, cache, size=16):
    img = save_png(tmp_path / "data" / "a (1).png", noise_image(20, 30, seed=0))
    mask = save_png(tmp_path / "data" / "a (1)_mask.png", rect_mask(20, 30, (2, 3, 10, 12)))
    rec = Record(path=str(img), label=0, masks=(str(mask),))
    return MedcamDataset([rec], ["x"], has_masks=True, boxes_from_mask=True, preprocess={"size": size},
                         cache_dir=cache)


def test_cached_items_equal_uncached_items(tmp_path):
    plain = _dataset(tmp_path, None)[0]
    cached_ds = _dataset(tmp_path, tmp_path / "cache")
    first, second = cached_ds[0], cached_ds[0]
    entries = list((tmp_path / "cache").glob("*/*.bin"))
    assert len(entries) == 1 and (entries[0].parent / "params.json").is_file()
    assert torch.equal(first["image"], second["image"])  # a miss returns exactly what a later hit returns
    for item in (first, second):
        assert torch.allclose(item["image"], plain["image"], atol=1 / 65535)
        assert torch.equal(item["mask"], plain["mask"]) and torch.equal(item["boxes"], plain["boxes"])


def test_other_settings_use_another_directory(tmp_path):
    a = ResizedCache(tmp_path, Preprocess(size=(16, 16)))
    b = ResizedCache(tmp_path, Preprocess(size=(16, 16), resize="pad"))
    c = ResizedCache(tmp_path, Preprocess(size=(16, 16), channels=1))
    assert len({a.dir, b.dir, c.dir}) == 3
    assert a.dir == ResizedCache(tmp_path, Preprocess(size=(16, 16))).dir


def test_a_changed_file_is_not_served_from_the_cache(tmp_path):
    ds = _dataset(tmp_path, tmp_path / "cache")
    before = ds[0]["image"].clone()
    path = ds.records[0].path
    save_png(path, np.full((20, 30), 255, np.uint8))
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    after = ds[0]["image"]
    assert not torch.equal(before, after) and torch.allclose(after, torch.ones_like(after))


def test_a_damaged_entry_is_recomputed(tmp_path):
    ds = _dataset(tmp_path, tmp_path / "cache")
    good = ds[0]["image"].clone()
    entry = next((tmp_path / "cache").glob("*/*.bin"))
    entry.write_bytes(b"garbage")
    assert torch.allclose(ds[0]["image"], good)
    assert ds.build_cache() == 1
