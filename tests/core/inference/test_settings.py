"""Preprocessing overrides merged over a checkpoint's spec and validated like a spec."""
from __future__ import annotations

import pytest

from medcam.errors import SpecError
from medcam.inference.settings import merge_preprocess, parse_radius, parse_size

SPEC = {"in_chans": 3, "preprocess": {"size": [449, 954], "resize": "none", "downscale": 3.0,
                                      "rolling_ball_radius": 180}}


def test_parse_size():
    assert parse_size("224") == [224, 224]
    assert parse_size("449,954") == [449, 954]
    assert parse_size("449x954") == [449, 954]
    assert parse_size(None) is None
    with pytest.raises(SpecError, match="HEIGHT"):
        parse_size("big")
    with pytest.raises(SpecError, match="positive"):
        parse_size("0,5")


def test_parse_radius():
    assert parse_radius("180") == 180
    assert parse_radius(None) is None
    for off in ("none", "off", "0", "None"):
        assert parse_radius(off) == "off"
    with pytest.raises(SpecError, match="rolling-ball"):
        parse_radius("wide")


def test_no_override_keeps_the_spec():
    out = merge_preprocess(SPEC, {"size": None, "resize": None})
    assert out["size"] == [449, 954] and out["resize"] == "none" and out["downscale"] == 3.0
    assert out["rolling_ball_radius"] == 180
    assert out["mean"] == pytest.approx([0.485, 0.456, 0.406])  # filled by the spec validator


def test_rolling_ball_override_and_switch_off():
    assert merge_preprocess(SPEC, {"rolling_ball_radius": 50})["rolling_ball_radius"] == 50
    assert merge_preprocess(SPEC, {"rolling_ball_radius": "off"})["rolling_ball_radius"] is None
    plain = {"in_chans": 1, "preprocess": {"size": [64, 64]}}
    assert merge_preprocess(plain, {"rolling_ball_radius": 180})["rolling_ball_radius"] == 180


def test_changing_resize_drops_settings_of_the_old_mode():
    out = merge_preprocess(SPEC, {"resize": "pad", "size": [224, 224]})
    assert out["resize"] == "pad" and out["downscale"] is None and out["size"] == [224, 224]
    crop = {"in_chans": 3, "preprocess": {"size": 224, "resize_to": 256}}
    out = merge_preprocess(crop, {"resize": "none"})
    assert out["resize"] == "none" and out["resize_to"] is None


def test_bad_overrides_are_spec_errors_naming_the_key():
    with pytest.raises(SpecError, match=r"preprocess.resize_to: \[100, 100\] is smaller than size"):
        merge_preprocess({"in_chans": 3, "preprocess": {"size": 224}}, {"resize_to": [100, 100]})
    with pytest.raises(SpecError, match="did you mean 'resize'"):
        merge_preprocess(SPEC, {"resise": "pad"})
    with pytest.raises(SpecError, match="preprocess.resize: expected one of"):
        merge_preprocess(SPEC, {"resize": "stretch"})
