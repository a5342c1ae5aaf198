"""When to draw a progress bar: on terminals only.

A redrawn tqdm bar is useful in a terminal and noise in a log file or CI output,
where medcam prints a line per epoch (trainer) or per model (benchmark) instead.
Every bar in medcam passes ``disable=not show_bar(wanted)``.
"""
from __future__ import annotations

import os
import sys

__all__ = ["show_bar"]


def show_bar(wanted: bool | None = True) -> bool:
    """Whether to draw a bar: asked for (``wanted``), stderr is a terminal, and ``TQDM_DISABLE`` is not set."""
    if not wanted:
        return False
    if os.environ.get("TQDM_DISABLE", "").strip().lower() not in ("", "0", "false", "no"):
        return False
    stream = sys.stderr
    return bool(stream is not None and hasattr(stream, "isatty") and stream.isatty())
