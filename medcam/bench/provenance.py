"""What a benchmark result was computed with: versions, threads, code revision, file lists and digests."""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch
from torch import Tensor

__all__ = ["environment", "list_digest", "state_digest", "relative_paths", "file_digest"]

#: Distributions whose versions are recorded.
PACKAGES = ("medcam", "torch", "torchvision", "timm", "numpy", "scipy", "opencv-python-headless", "matplotlib",
            "segmentation-models-pytorch", "triton")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _git(root: Path) -> dict[str, Any] | None:
    """The checkout's commit and whether tracked files differ from it (read-only git calls)."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return {"commit": commit.stdout.strip(), "modified": bool(status.stdout.strip())}


def environment() -> dict[str, Any]:
    """Python, platform, package versions, torch threads and the medcam checkout's git revision."""
    import medcam

    root = Path(medcam.__file__).resolve().parent.parent
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "packages": {name: _version(name) for name in PACKAGES},
        "git": _git(root),
    }


def list_digest(items: Iterable[str]) -> str:
    """sha256 of the lines ``items`` (joined by newlines, with a final newline)."""
    text = "".join(f"{item}\n" for item in items)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def state_digest(state: Mapping[str, Tensor]) -> str:
    """sha256 over a state dict's names, dtypes, shapes and bytes (identical weights, identical digest)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()


def file_digest(path: str | os.PathLike[str]) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def relative_paths(paths: Iterable[str], root: str | os.PathLike[str]) -> list[str]:
    """``paths`` relative to ``root`` with ``/`` separators (unchanged when outside it)."""
    base = Path(root).resolve()
    out = []
    for p in paths:
        q = Path(p).resolve()
        try:
            out.append(q.relative_to(base).as_posix())
        except ValueError:
            out.append(str(p))
    return out
