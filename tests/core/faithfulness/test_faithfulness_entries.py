"""The metric registry entries (medcam.faithfulness.entries): names, metadata, specs, light imports."""
from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import medcam
from medcam.errors import SpecError, UnknownNameError
from medcam.faithfulness.base import AttributionMetric
from medcam.registry import metrics

NAMES = ["deletion", "insertion", "road", "average_drop", "increase_in_confidence", "confidence_change",
         "pointing_game", "energy_pointing_game", "model_randomization", "complexity", "coherency", "adcc", "arcc"]


def test_every_metric_is_registered_by_the_bundled_distribution():
    assert sorted(metrics.list()) == sorted(NAMES)
    for name in NAMES:
        entry = metrics.entry(name)
        assert entry.provider == "medcam" and entry.value.startswith("medcam.faithfulness.entries:")


@pytest.mark.parametrize("name", NAMES)
def test_metadata_matches_the_built_metric(name):
    info = metrics.info(name)
    assert info["summary"] and info["unit"]
    metric = medcam.build_metric(name)
    assert isinstance(metric, AttributionMetric)
    assert metric.spec["name"] == name
    assert set(info["needs"]) == set(metric.needs)
    assert info["higher_is_better"] == metric.higher_is_better
    documented = inspect.getdoc(type(metric)) or ""
    assert len(documented) > 40  # formula and source in the class docstring


def test_specs_are_validated_with_close_matches():
    assert medcam.build_metric({"name": "road", "fractions": [0.2, 0.8]}).spec["fractions"] == [0.2, 0.8]
    with pytest.raises(SpecError, match="did you mean 'steps'"):
        medcam.build_metric({"name": "deletion", "stepz": 3})
    with pytest.raises(UnknownNameError, match="did you mean 'deletion'"):
        medcam.build_metric("deletoin")


def test_entries_module_imports_no_torch():
    code = ("import sys, medcam; medcam.info('road'); medcam.list_names('metrics'); "
            "print('torch' in sys.modules, 'medcam.faithfulness.road' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
