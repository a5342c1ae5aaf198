"""Dotted spec paths: keys, list positions and named parts, with close-match errors."""
from __future__ import annotations

import pytest

from medcam.errors import SpecError
from medcam.spec_path import get_path, has_path, part_name, split_path

SPEC = {"backbone": {"name": "resnet50", "pretrained": False},
        "loss": [{"name": "attention_box", "lam": 0.5, "rules": {"Effusion": "lower"}}, "ce"],
        "preprocess": {"size": [224, 224]}, "head": "linear"}


def test_split_path_accepts_brackets():
    assert split_path("loss[attention_box].lam") == ["loss", "attention_box", "lam"]
    assert split_path(" loss.0.weight ") == ["loss", "0", "weight"]
    with pytest.raises(SpecError, match="empty segment"):
        split_path("loss..lam")


def test_get_path_by_key_position_and_part_name():
    assert get_path(SPEC, "loss.attention_box.lam") == 0.5
    assert get_path(SPEC, "loss[Attention-Box].rules.Effusion") == "lower"
    assert get_path(SPEC, "loss.1") == "ce" and get_path(SPEC, "loss.ce") == "ce"
    assert get_path(SPEC, "preprocess.size.0") == 224
    assert get_path(SPEC, "head.name") == "linear"  # a part given by its name alone
    assert part_name({"name": "Focal"}) == "focal" and part_name({"p": 1}) is None


def test_errors_name_the_segment_and_the_close_matches():
    with pytest.raises(SpecError, match=r"'loss.attention_box.lma': loss.attention_box has no 'lma'; did you mean 'lam'\?"):
        get_path(SPEC, "loss.attention_box.lma")
    with pytest.raises(SpecError, match="spec has no 'los'; did you mean 'loss'"):
        get_path(SPEC, "los")
    with pytest.raises(SpecError, match="2 parts are named 'ce'"):
        get_path({"loss": ["ce", "ce"]}, "loss.ce")
    assert has_path(SPEC, "loss.ce") and not has_path(SPEC, "loss.focal")
