"""Output folders: made (or refused, in one line naming the path) before any work is done.

A ``--out`` that names an existing file, a folder that cannot be created or
written: found here, at the start of a command, instead of after an epoch of
training or when the first picture is written.
"""
from __future__ import annotations

import errno
import os
from pathlib import Path

from .errors import OutputError

__all__ = ["output_folder", "describe_os_error"]


def describe_os_error(err: OSError) -> str:
    """The reason of a failed write in words: ``"No space left on device (the disk is full)"``, ..."""
    reason = err.strerror or str(err) or type(err).__name__
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        reason += " (the disk is full)"
    return reason


def output_folder(path: str | os.PathLike[str], what: str = "--out", *, create: bool = True) -> Path:
    """Create ``path`` (with its parents) if needed and check that files can be written in it.

    Args:
        path: the folder.
        what: how the user gave it, for the message (``"--out"``, ``"destination_path"``).
        create: False only checks that nothing in the way is a file (the folder is made when first used).

    Returns:
        the folder as a :class:`~pathlib.Path`.

    Raises:
        OutputError: ``path`` (or a parent) is a file, or the folder cannot be created or written.
    """
    folder = Path(path)
    try:
        for part in (folder, *folder.parents):
            if part.exists():
                if not part.is_dir():
                    where = "" if part == folder else f" ('{part}')"
                    raise OutputError(f"{what} '{folder}'{where} is a file, not a folder; give a folder path")
                break
        if not create:
            return folder
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        if isinstance(err, OutputError):
            raise
        raise OutputError(f"{what} '{folder}': cannot create the folder: {describe_os_error(err)}") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{what} '{folder}': the folder is not writable")
    return folder
