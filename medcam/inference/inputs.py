"""Which files ``medcam explain`` reads: image paths and folders (searched recursively)."""
from __future__ import annotations

import fnmatch
import os
from pathlib import Path
from typing import Iterable, Sequence

from ..data.io import IMAGE_EXTENSIONS, is_image_file

__all__ = ["collect_images", "IMAGE_EXTENSIONS"]


def _excluded(path: Path, patterns: Sequence[str]) -> bool:
    name = path.name
    text = path.as_posix()
    return any(fnmatch.fnmatch(name, p) or fnmatch.fnmatch(text, p) for p in patterns)


def collect_images(sources: Iterable[str | os.PathLike[str]], exclude: Sequence[str] = ()) -> list[Path]:
    """The image files named by ``sources``, in order, without duplicates.

    Args:
        sources: files and folders. A folder contributes every file below it (at
            any depth, sorted, hidden files and folders skipped) whose extension
            is one of :data:`IMAGE_EXTENSIONS`. A file is taken as given, whatever
            its extension or whether it exists: reading it decides (a missing or
            unreadable file becomes a ``fail`` result, not an error here).
        exclude: glob patterns matched against a file's name and its path, e.g.
            ``"*_mask*"`` to leave out BUSI's mask files; applied to folder contents
            and to files named directly.

    Returns:
        the paths, in the order given (each folder's files sorted).
    """
    out: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        key = os.path.normpath(os.path.abspath(path))
        if key not in seen and not _excluded(path, exclude):
            seen.add(key)
            out.append(path)

    for source in sources:
        path = Path(source)
        try:
            folder = path.is_dir()
        except OSError:  # e.g. a name too long for the file system: reading it gives the fail record
            folder = False
        if folder:
            found = []
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                found.extend(Path(root) / f for f in files if is_image_file(f))
            for file in sorted(found, key=lambda p: p.as_posix()):
                add(file)
        else:
            add(path)
    return out
