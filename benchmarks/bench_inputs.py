"""Inputs shared by the reliability benchmarks (explain_memory.py, soak.py): images that are small on disk and
large in pixels, PNG headers that claim more pixels than they hold, and a default checkpoint."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path


def disc_image(path: Path, height: int, width: int, mode: str = "L", fmt: str = "PNG") -> Path:
    """A bright disc on a dark background (``mode`` L or RGB, ``fmt`` PNG or JPEG): compresses to a small
    file whatever the pixel count (a 12000 x 12000 PNG is ~170 KB)."""
    from PIL import Image, ImageDraw

    img = Image.new(mode, (width, height), 20 if mode == "L" else (20, 30, 40))
    fill = 200 if mode == "L" else (200, 180, 160)
    ImageDraw.Draw(img).ellipse((width // 3, height // 3, width // 2, height // 2), fill=fill)
    img.save(path, format=fmt, **({"quality": 90} if fmt == "JPEG" else {"optimize": True}))
    return path


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def header_only_png(path: Path, width: int, height: int) -> Path:
    """An 8-bit grey PNG whose header claims ``width x height`` followed by a few bytes of pixel data: what a
    decompression bomb looks like to a reader that trusts the header."""
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + _chunk(b"IDAT", zlib.compress(b"\0" * 64)) + _chunk(b"IEND", b""))
    return path


def default_checkpoint(folder: Path) -> str:
    """An untrained ResNet-18 classifier at 224 px (3 classes) saved in ``folder``: the benchmarks' model
    when no ``--checkpoint`` is given (its weights do not change memory or the answers' kinds)."""
    import medcam

    model = medcam.build_model({"backbone": {"name": "resnet18", "pretrained": False}, "num_classes": 3,
                                "class_names": ["normal", "benign", "malignant"]})
    return str(medcam.save(model, folder / "resnet18.pt"))
