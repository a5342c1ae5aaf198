"""Shared fixtures: real data locations and fast, deterministic torch settings."""
from __future__ import annotations

import os
from pathlib import Path

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
