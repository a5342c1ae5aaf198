"""FeatureInfo and out_indices validation."""
from __future__ import annotations

import pytest

from medcam.errors import SpecError
from medcam.features import FeatureInfo, FeatureLevel, normalize_out_indices


def test_feature_info_accessors():
    info = FeatureInfo([FeatureLevel(16, 4, "a"), {"channels": 32, "stride": 8, "module": "b"}], cam_level=-1)
    assert info.channels() == [16, 32] and info.strides() == [4, 8] and info.modules() == ["a", "b"]
    assert info.cam_level == 1 and len(info) == 2 and info[0].channels == 16
    assert info.to_dict()["cam_level"] == 1
    assert info == FeatureInfo([FeatureLevel(16, 4, "a"), FeatureLevel(32, 8, "b")])


@pytest.mark.parametrize("levels, cam_level, message", [
    ([], -1, "at least one"),
    ([FeatureLevel(8, 8), FeatureLevel(8, 4)], -1, "increasing stride"),
    ([FeatureLevel(0, 4)], -1, "positive"),
    ([FeatureLevel(8, 4)], 3, "out of range"),
])
def test_feature_info_rejects_bad_levels(levels, cam_level, message):
    with pytest.raises(ValueError, match=message):
        FeatureInfo(levels, cam_level=cam_level)


def test_normalize_out_indices():
    assert normalize_out_indices(None, 4) == (0, 1, 2, 3)
    assert normalize_out_indices([-1, 0], 4) == (0, 3)
    assert normalize_out_indices(2, 4) == (2, 3)
    with pytest.raises(SpecError, match=r"index 7 is out of range; this backbone has 4 levels \(valid: 0..3"):
        normalize_out_indices([1, 7], 4)
    with pytest.raises(SpecError, match="twice"):
        normalize_out_indices([1, -3], 4)
    with pytest.raises(SpecError, match="last 5 levels"):
        normalize_out_indices(5, 4)
    with pytest.raises(SpecError, match="ints"):
        normalize_out_indices(["1"], 4)
