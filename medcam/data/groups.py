"""Group keys for splitting: patients, lesions seen twice, near-duplicate images.

Items that share a group (the same patient, or two near-identical scans) must
land in the same split, or the test score measures memory instead of
generalization. BUSI, for one, holds near-duplicate images (Pawlowska et al.,
*Data in Brief* 2023).

:func:`resolve_groups` turns what a user has (a CSV file, a mapping, a
function, a list) into one key per item; :func:`near_duplicate_groups` finds
clusters of near-identical images by a difference hash when the user has no
key.
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import DataError
from ..progress import show_bar

__all__ = ["resolve_groups", "read_group_file", "near_duplicate_groups", "difference_hash"]


def _relative(path: str, root: str | None) -> str:
    if root is None:
        return Path(path).as_posix()
    try:
        return Path(os.path.relpath(path, root)).as_posix()
    except ValueError:  # other drive on Windows
        return Path(path).as_posix()


def _lookup(mapping: Mapping[str, Any], paths: Sequence[str], root: str | None, source: str) -> list[str]:
    by_name: dict[str, list[str]] = {}
    for key in mapping:
        by_name.setdefault(Path(str(key)).name, []).append(str(key))
    out = []
    missing = []
    for p in paths:
        candidates = [p, Path(p).as_posix(), _relative(p, root)]
        value = next((mapping[c] for c in candidates if c in mapping), None)
        if value is None:
            names = by_name.get(Path(p).name, [])
            if len(names) == 1:
                value = mapping[names[0]]
        if value is None:
            missing.append(_relative(p, root))
            continue
        out.append(str(value))
    if missing:
        raise DataError(f"{source}: {len(missing)} of {len(paths)} images have no group, e.g. {missing[:3]} "
                        f"(give every image a group: its path relative to the data folder, or its file name)")
    return out


def read_group_file(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read ``image,group`` rows from a CSV file (an optional header row ``image,group`` is skipped)."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"{p}: group file not found")
    out: dict[str, str] = {}
    with open(p, newline="", encoding="utf-8-sig") as fh:
        for lineno, row in enumerate(csv.reader(fh), start=1):
            if not row or not any(cell.strip() for cell in row):
                continue
            if len(row) < 2:
                raise DataError(f"{p}:{lineno}: expected 'image,group', got {row!r}")
            image, group = row[0].strip(), row[1].strip()
            if lineno == 1 and image.lower() in ("image", "path", "file", "filename", "image index"):
                continue
            out[image] = group
    if not out:
        raise DataError(f"{p}: no 'image,group' rows")
    return out


def resolve_groups(groups: Any, paths: Sequence[str], root: str | os.PathLike[str] | None = None) -> list[str]:
    """One group key per path.

    Args:
        groups: a sequence of keys (one per path); a mapping or a CSV file
            (``image,group``) keyed by path relative to ``root``, full path or
            unique file name; a callable ``path -> key``; or ``"near_duplicates"``.
        paths: the image files, in item order.
        root: the data set folder, for relative keys.
    """
    root_s = None if root is None else os.fspath(root)
    if isinstance(groups, str) and groups == "near_duplicates":
        return [f"dup{g}" for g in near_duplicate_groups(paths)]
    if isinstance(groups, (str, os.PathLike)):
        p = Path(groups)
        if not p.is_file() and root_s is not None and (Path(root_s) / p).is_file():
            p = Path(root_s) / p
        return _lookup(read_group_file(p), paths, root_s, str(p))
    if isinstance(groups, Mapping):
        return _lookup({str(k): v for k, v in groups.items()}, paths, root_s, "groups")
    if callable(groups):
        fn: Callable[[str], Any] = groups
        return [str(fn(p)) for p in paths]
    if isinstance(groups, Sequence):
        if len(groups) != len(paths):
            raise DataError(f"groups: {len(groups)} keys for {len(paths)} images (one key per image, in order)")
        return [str(g) for g in groups]
    raise DataError(f"groups: expected a sequence, mapping, CSV file, callable or 'near_duplicates', "
                    f"got {type(groups).__name__}")


def difference_hash(image: np.ndarray, hash_size: int = 8) -> int:
    """Difference hash of a greyscale image ``(H, W)`` in [0, 1].

    dHash (N. Krawetz, "Kind of like that", 2013): shrink to
    ``hash_size x (hash_size + 1)`` by area averaging and set one bit per
    horizontally adjacent pair, ``left > right``. Near-identical images
    (re-encoded, slightly cropped or annotated) differ in few bits.
    """
    import torch
    import torch.nn.functional as F

    t = torch.as_tensor(np.asarray(image, dtype=np.float32))[None, None]
    small = F.adaptive_avg_pool2d(t, (hash_size, hash_size + 1))[0, 0]
    bits = (small[:, :-1] > small[:, 1:]).flatten().tolist()
    value = 0
    for b in bits:
        value = (value << 1) | int(b)
    return value


_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def near_duplicate_groups(paths: Sequence[str], *, max_distance: int = 6, hash_size: int = 8,
                          progress: bool = True) -> list[int]:
    """Cluster images whose difference hashes differ in at most ``max_distance`` bits.

    Pairs within the distance are joined (union-find), so a chain of
    near-duplicates forms one group. The comparison is all-pairs
    (``O(N^2)`` on 64-bit hashes: about a second for 10,000 images); reading
    the images dominates for small sets.

    Returns:
        a group number per path (0, 1, ...; singletons get their own number).
    """
    from tqdm.auto import tqdm

    from .io import read_image, to_grey

    n = len(paths)
    nbytes = (hash_size * hash_size + 7) // 8
    codes = np.zeros((n, nbytes), dtype=np.uint8)
    for i, p in enumerate(tqdm(paths, desc="hashing images", unit="img", leave=False, disable=not show_bar(progress))):
        h = difference_hash(to_grey(read_image(p)), hash_size)
        codes[i] = np.frombuffer(h.to_bytes(nbytes, "big"), dtype=np.uint8)
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i in range(n - 1):
        dist = _POPCOUNT8[codes[i + 1:] ^ codes[i]].sum(1)
        for j in np.flatnonzero(dist <= max_distance):
            a, b = find(i), find(i + 1 + int(j))
            if a != b:
                parent[max(a, b)] = min(a, b)
    roots = [find(i) for i in range(n)]
    numbering: dict[int, int] = {}
    return [numbering.setdefault(r, len(numbering)) for r in roots]
