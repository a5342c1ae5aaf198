"""collect_images: files and folders (recursive), image extensions, exclusions, order, duplicates."""
from __future__ import annotations

from pathlib import Path

from medcam.inference.inputs import collect_images


def _touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def test_folders_are_searched_recursively_for_image_extensions(tmp_path):
    a = _touch(tmp_path / "data" / "b.PNG")
    b = _touch(tmp_path / "data" / "sub" / "deeper" / "a.jpeg")
    c = _touch(tmp_path / "data" / "sub" / "c.tif")
    _touch(tmp_path / "data" / "notes.txt")
    _touch(tmp_path / "data" / ".hidden.png")
    _touch(tmp_path / "data" / ".cache" / "x.png")
    found = collect_images([tmp_path / "data"])
    assert found == sorted([a, b, c], key=lambda p: p.as_posix())


def test_files_are_kept_as_given_in_order_without_duplicates(tmp_path):
    img = _touch(tmp_path / "z.png")
    odd = tmp_path / "scan.dcm-export"  # any extension and even a missing file: reading decides
    missing = tmp_path / "missing.png"
    found = collect_images([img, odd, missing, tmp_path / "." / "z.png"])
    assert found == [img, odd, missing]


def test_exclude_matches_names_and_paths(tmp_path):
    keep = _touch(tmp_path / "benign" / "benign (1).png")
    _touch(tmp_path / "benign" / "benign (1)_mask.png")
    _touch(tmp_path / "benign" / "benign (4)_mask_1.png")
    _touch(tmp_path / "skip" / "a.png")
    found = collect_images([tmp_path], exclude=["*_mask*", "*/skip/*"])
    assert found == [keep]


def test_empty_folder_gives_nothing(tmp_path):
    (tmp_path / "empty").mkdir()
    assert collect_images([tmp_path / "empty"]) == []
