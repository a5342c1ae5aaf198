"""Provenance records: digests are content-based and stable."""
from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from medcam.bench.provenance import environment, file_digest, list_digest, relative_paths, state_digest


def test_list_digest_is_sha256_of_lines() -> None:
    assert list_digest(["a", "b"]) == hashlib.sha256(b"a\nb\n").hexdigest()
    assert list_digest(["b", "a"]) != list_digest(["a", "b"])


def test_state_digest_sees_every_weight() -> None:
    a = {"w": torch.ones(2, 2), "b": torch.zeros(2)}
    same = {"b": torch.zeros(2), "w": torch.ones(2, 2)}
    assert state_digest(a) == state_digest(same)
    changed = {"w": torch.ones(2, 2), "b": torch.tensor([0.0, 1e-7])}
    assert state_digest(changed) != state_digest(a)
    assert state_digest({"w": torch.ones(4)}) != state_digest({"w": torch.ones(2, 2)})


def test_file_digest_and_relative_paths(tmp_path: Path) -> None:
    f = tmp_path / "benign" / "benign (1).png"
    f.parent.mkdir()
    f.write_bytes(b"xyz")
    assert file_digest(f) == hashlib.sha256(b"xyz").hexdigest()
    assert relative_paths([str(f), "/elsewhere/x.png"], tmp_path) == ["benign/benign (1).png", "/elsewhere/x.png"]


def test_environment_names_versions_and_threads() -> None:
    env = environment()
    assert torch.__version__.split("+")[0] == env["packages"]["torch"].split("+")[0]
    assert env["packages"]["medcam"] and env["git"] is None or len(env["git"]["commit"]) == 40
    assert env["torch_threads"] == torch.get_num_threads() and env["python"].count(".") == 2
