"""Shared fixtures: real data locations and fast, deterministic torch settings."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDCAM_SHARED_DATA", REPO.parent / "shared" / "data"))


def _data_dir(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.is_dir():
        pytest.skip(f"real data set '{name}' not found at {path} (set MEDCAM_SHARED_DATA to its parent folder)")
    return path


@pytest.fixture(scope="session")
def busi_dir() -> Path:
    """``../shared/data/busi`` (BUSI breast ultrasound, class folders with masks); skips if absent."""
    return _data_dir("busi")


@pytest.fixture(scope="session")
def nih_dir() -> Path:
    """``../shared/data/nih_sample`` (NIH ChestX-ray14 sample in the official layout); skips if absent."""
    return _data_dir("nih_sample")


@pytest.fixture(scope="session")
def synthetic_busi(tmp_path_factory) -> Path:
    """A generated BUSI-layout folder: 4 images per class, 40 x 40, with masks."""
    from medcam.data.synthetic import write_busi_folder

    return write_busi_folder(tmp_path_factory.mktemp("synthetic") / "busi", [4, 4, 4], size=40, seed=0)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    import torch

    torch.manual_seed(0)
    yield


@pytest.fixture
def cli(capsys):
    """Run ``medcam ARGS...`` through the real entry function: ``cli(*args) -> (exit code, stdout, stderr)``."""
    from medcam.cli import main

    def invoke(*args: object) -> tuple[int, str, str]:
        code = 0
        try:
            main([str(a) for a in args])
        except SystemExit as stop:
            code = int(stop.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err

    return invoke


# --------------------------------------------------------------------------- synthetic chest radiographs
#: Lung ellipses of the synthetic radiographs: (centre y, centre x, radius y, radius x) as fractions of H, W.
_LUNGS = ((0.47, 0.30, 0.27, 0.12), (0.47, 0.70, 0.27, 0.12))


def _ellipse(h: int, w: int, cy: float, cx: float, ry: float, rx: float) -> np.ndarray:
    yy, xx = np.mgrid[:h, :w]
    return ((yy - cy * h) / (ry * h)) ** 2 + ((xx - cx * w) / (rx * w)) ** 2 <= 1


def _radiograph(h: int = 160, w: int = 160, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A radiograph-like ``(h, w)`` image in [0, 1] and its true lung mask: dark air around a bright body,
    two dark lungs crossed by brighter ribs, a bright mediastinum between them, noise."""
    rng = np.random.default_rng(seed)
    image = np.full((h, w), 0.05)
    image[_ellipse(h, w, 0.55, 0.5, 0.62, 0.47)] = 0.75
    truth = _ellipse(h, w, *_LUNGS[0]) | _ellipse(h, w, *_LUNGS[1])
    image[truth] = 0.30
    ribs = (np.arange(h) // max(1, h // 16)) % 2 == 0
    image[truth & ribs[:, None]] += 0.08
    image[int(0.2 * h):, int(0.46 * w):int(0.54 * w)] = 0.85
    image += rng.normal(0, 0.02, (h, w))
    return np.clip(image, 0, 1), truth


@pytest.fixture
def radiograph():
    """``radiograph(h, w, seed) -> (image (h, w) float in [0, 1], true lung mask (h, w) bool)``; also
    ``radiograph.lungs`` (the two lung ellipses as fractions) and ``radiograph.ellipse(h, w, *lung)``."""
    _radiograph.lungs = _LUNGS
    _radiograph.ellipse = _ellipse
    return _radiograph
