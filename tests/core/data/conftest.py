"""Fixtures: tiny generated data-set trees in the real layouts (builders in medcam_data_trees.py)."""
from __future__ import annotations

from pathlib import Path

import pytest
from medcam_data_trees import write_busi, write_nih


@pytest.fixture
def busi_tree(tmp_path: Path) -> Path:
    """BUSI layout, 4 images per class (see :func:`medcam_data_trees.write_busi`)."""
    return write_busi(tmp_path / "busi")


@pytest.fixture
def nih_tree(tmp_path: Path) -> Path:
    """NIH ChestX-ray14 release layout with official lists (see :func:`medcam_data_trees.write_nih`)."""
    return write_nih(tmp_path / "nih")
