"""Fixtures of the bad-input table (tests/reliability).

Every test module here is one category of the table (names, specs, tensors,
files, checkpoints, training, hooks, the explain service, plugins, the web
app). Each parametrized case feeds one bad input and asserts the error type
and a fragment of its message, or the exact recovery. ``docs/guarantees.md``
is the same table in prose.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from _reliability import TINY_SPEC, write_png


@pytest.fixture
def tiny_model():
    """An untrained 3-class tiny_cnn classifier (BatchNorm inside) for 64 x 64 inputs."""
    import medcam

    return medcam.build_model(TINY_SPEC)


@pytest.fixture
def tiny_checkpoint(tiny_model, tmp_path) -> Path:
    import medcam

    return medcam.save(tiny_model, tmp_path / "model.pt")


@pytest.fixture
def explainer(tiny_model):
    from medcam.inference import Explainer

    return Explainer(tiny_model)


@pytest.fixture
def good_png(tmp_path) -> Path:
    return write_png(tmp_path / "good.png", 80, 96)
