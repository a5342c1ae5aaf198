"""medcam.outputs: output folders are made, or refused in one line naming the path, before any work."""
from __future__ import annotations

import errno

import pytest

from medcam.errors import OutputError
from medcam.outputs import describe_os_error, output_folder


def test_creates_nested_folders_or_only_checks(tmp_path):
    assert output_folder(tmp_path / "a" / "b").is_dir()
    assert not output_folder(tmp_path / "c" / "d", create=False).exists()


@pytest.mark.parametrize("inside", [False, True])
def test_a_file_in_the_way_is_named(tmp_path, inside):
    blocker = tmp_path / "taken"
    blocker.write_text("x")
    target = blocker / "sub" if inside else blocker
    with pytest.raises(OutputError, match="is a file, not a folder") as err:
        output_folder(target, "--out")
    assert str(err.value).startswith(f"--out '{target}'") and isinstance(err.value, OSError)
    assert (f"('{blocker}')" in str(err.value)) == inside


def test_disk_full_is_said_in_words():
    assert describe_os_error(OSError(errno.ENOSPC, "No space left on device")) == \
        "No space left on device (the disk is full)"
    assert describe_os_error(OSError(errno.EACCES, "Permission denied")) == "Permission denied"
