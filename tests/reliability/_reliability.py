"""Helpers of the bad-input table (tests/reliability), imported by its test modules."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

CLASSES = ["normal", "benign", "malignant"]
TINY_SPEC = {"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3, "class_names": CLASSES,
             "preprocess": {"size": 64}}


def expect_error(call: Callable[[], Any], error: type[BaseException], fragment: str) -> BaseException:
    """Run ``call``; it must raise ``error`` whose message contains ``fragment`` (case-insensitive)."""
    with pytest.raises(error) as caught:
        call()
    assert fragment.lower() in str(caught.value).lower(), f"message {str(caught.value)!r} lacks {fragment!r}"
    return caught.value


def write_png(path: Path, height: int, width: int, mode: str = "L") -> Path:
    """A small-on-disk PNG of ``height x width`` pixels: a bright disc on a dark background."""
    from PIL import Image, ImageDraw

    img = Image.new(mode, (width, height), 20 if mode == "L" else (20, 20, 20))
    draw = ImageDraw.Draw(img)
    draw.ellipse((width // 3, height // 3, width // 2, height // 2), fill=200 if mode == "L" else (200, 200, 200))
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
    return path


def one_line(text: str) -> bool:
    """True when ``text`` is one line without a Python traceback."""
    return "\n" not in text.strip() and "Traceback" not in text


def random_images(n: int = 2, size: int = 64, seed: int = 0) -> Any:
    """``(n, 3, size, size)`` uniform in [0, 1), seeded."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=generator)
