import sys
import types

import pytest

from medcam._lazy import lazy_attributes


def _package(table):
    module = types.ModuleType("fakepkg")
    module.__getattr__, module.__dir__ = lazy_attributes("fakepkg", table, module.__dict__)
    return module


def test_attribute_is_imported_on_first_use_and_cached():
    sys.modules.pop("colorsys", None)
    pkg = _package({"rgb_to_hsv": "colorsys"})
    assert "colorsys" not in sys.modules
    fn = pkg.rgb_to_hsv
    assert "colorsys" in sys.modules
    assert fn(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    assert pkg.__dict__["rgb_to_hsv"] is fn


def test_a_module_named_like_the_attribute_is_returned_itself():
    import json.decoder

    pkg = _package({"decoder": "json.decoder"})
    assert pkg.decoder is json.decoder


def test_unknown_attribute_names_the_package():
    pkg = _package({"rgb_to_hsv": "colorsys"})
    with pytest.raises(AttributeError, match="module 'fakepkg' has no attribute 'nope'"):
        pkg.nope


def test_dir_lists_lazy_names_before_import():
    pkg = _package({"rgb_to_hsv": "colorsys"})
    assert "rgb_to_hsv" in dir(pkg)


def test_real_packages_use_it():
    import medcam.data

    assert "BUSIDataset" in dir(medcam.data) or "MedcamDataset" in dir(medcam.data)
    with pytest.raises(AttributeError, match="module 'medcam.data' has no attribute"):
        medcam.data.not_a_thing
