from __future__ import annotations

import numpy as np
import pytest
from medcam_data_trees import noise_image, save_png

from medcam.data.groups import difference_hash, near_duplicate_groups, resolve_groups
from medcam.errors import DataError


def test_group_file_mapping_callable_and_sequence(tmp_path):
    paths = [str(tmp_path / "benign" / "benign (1).png"), str(tmp_path / "benign" / "benign (2).png")]
    (tmp_path / "groups.csv").write_text("image,group\nbenign/benign (1).png,A\nbenign (2).png,A\n")
    assert resolve_groups("groups.csv", paths, tmp_path) == ["A", "A"]
    assert resolve_groups({"benign (1).png": 1, "benign/benign (2).png": 2}, paths, tmp_path) == ["1", "2"]
    assert resolve_groups(lambda p: p[-6], paths) == ["1", "2"]
    assert resolve_groups(["x", "y"], paths) == ["x", "y"]


def test_missing_group_is_an_error_naming_the_image(tmp_path):
    paths = [str(tmp_path / "a.png"), str(tmp_path / "b.png")]
    with pytest.raises(DataError, match=r"1 of 2 images have no group, e.g. \['b.png'\]"):
        resolve_groups({"a.png": "g"}, paths, tmp_path)
    with pytest.raises(DataError, match="3 keys for 2 images"):
        resolve_groups([1, 2, 3], paths)


def test_difference_hash_is_stable_under_small_changes():
    rng = np.random.default_rng(0)
    img = np.kron(rng.random((8, 9)), np.ones((8, 8)))  # blocky image, 64x72
    noisy = np.clip(img + rng.normal(0, 0.01, img.shape), 0, 1)
    other = np.kron(rng.random((8, 9)), np.ones((8, 8)))
    h, hn, ho = difference_hash(img), difference_hash(noisy), difference_hash(other)
    assert bin(h ^ hn).count("1") <= 3 and bin(h ^ ho).count("1") > 15


def test_near_duplicates_form_one_group(tmp_path):
    base = noise_image(40, 40, seed=1)
    paths = [save_png(tmp_path / "a.png", np.kron(base[:8, :9], np.ones((5, 5), np.uint8))),
             save_png(tmp_path / "b.png", noise_image(40, 40, seed=2)),
             save_png(tmp_path / "c.png", np.clip(np.kron(base[:8, :9], np.ones((5, 5), np.uint8)).astype(int) + 2,
                                                  0, 255).astype(np.uint8))]
    groups = near_duplicate_groups([str(p) for p in paths], progress=False)
    assert groups[0] == groups[2] != groups[1]
