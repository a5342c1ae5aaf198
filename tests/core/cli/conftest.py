"""Fixtures of the CLI tests."""
from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _restore_tqdm_env():
    """--quiet sets TQDM_DISABLE in this process; keep it from leaking into other tests."""
    before = os.environ.get("TQDM_DISABLE")
    yield
    if before is None:
        os.environ.pop("TQDM_DISABLE", None)
    else:
        os.environ["TQDM_DISABLE"] = before
