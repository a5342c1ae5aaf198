"""Registers the probe parts of :mod:`cam_probes` around each test module of this folder."""
from __future__ import annotations

import pytest

from cam_probes import cam_probe, cam_probe_flat, cam_probe_fpm, cam_probe_quadratic
from medcam.registry import backbones, heads


@pytest.fixture(scope="module", autouse=True)
def _probe_registrations():
    backbones.register(cam_probe, name="cam_probe")
    heads.register(cam_probe_flat, name="cam_probe_flat")
    heads.register(cam_probe_fpm, name="cam_probe_fpm")
    heads.register(cam_probe_quadratic, name="cam_probe_quadratic")
    yield
    backbones.unregister("cam_probe")
    heads.unregister("cam_probe_flat")
    heads.unregister("cam_probe_fpm")
    heads.unregister("cam_probe_quadratic")


