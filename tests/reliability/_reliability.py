"""Helpers of the bad-input table (tests/reliability), imported by its test modules."""
from __future__ import annotations

import struct
import zlib
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


def header_only_png(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims ``width x height`` (8-bit grey) followed by a few bytes of pixel data:
    what a decompression bomb looks like to a reader that trusts the header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))
    return path


def one_line(text: str) -> bool:
    """True when ``text`` is one line without a Python traceback."""
    return "\n" not in text.strip() and "Traceback" not in text


def random_images(n: int = 2, size: int = 64, seed: int = 0) -> Any:
    """``(n, 3, size, size)`` uniform in [0, 1), seeded."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, size, size, generator=generator)
