"""Bad checkpoints: missing, not a checkpoint, truncated, altered, unsafe pickles, the wrong kind, another file
than the one expected (sha256), and a disk that fills up while saving."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
import torch

import medcam
from medcam.errors import CheckpointError, OutputError

from _reliability import expect_error, one_line


class _Payload:
    """What a malicious pickle carries: an object whose unpickling runs code."""

    def __reduce__(self):
        return (os.system, ("echo owned",))


def _missing(ckpt: Path) -> Path:
    return ckpt.with_name("nope.pt")


def _text(ckpt: Path) -> Path:
    ckpt.write_text("not a checkpoint")
    return ckpt


def _truncated(ckpt: Path) -> Path:
    ckpt.write_bytes(ckpt.read_bytes()[:2000])
    return ckpt


def _flipped(ckpt: Path) -> Path:
    """One weight changed after saving, the zip still valid (what a bad disk or copy does)."""
    payload = torch.load(ckpt, weights_only=True)
    name = next(k for k, v in payload["state_dict"].items() if v.is_floating_point())
    payload["state_dict"][name].view(-1)[0] += 1.0
    torch.save(payload, ckpt)
    return ckpt


def _malicious(ckpt: Path) -> Path:
    torch.save({"format": "medcam.checkpoint", "evil": _Payload()}, ckpt)
    return ckpt


def _state_dict(ckpt: Path) -> Path:
    torch.save({"weight": torch.zeros(3)}, ckpt)
    return ckpt


def _future(ckpt: Path) -> Path:
    payload = torch.load(ckpt, weights_only=True)
    payload["format_version"] = 99
    torch.save(payload, ckpt)
    return ckpt


CASES = [
    pytest.param(_missing, FileNotFoundError, "does not exist", id="missing"),
    pytest.param(_text, CheckpointError, "not a PyTorch zip archive", id="not-a-checkpoint"),
    pytest.param(_truncated, CheckpointError, "truncated", id="truncated"),
    pytest.param(_flipped, CheckpointError, "failed its integrity check", id="changed-after-saving"),
    pytest.param(_malicious, CheckpointError, "could run arbitrary code", id="malicious-pickle"),
    pytest.param(_state_dict, CheckpointError, "not a medcam checkpoint", id="plain-state-dict"),
    pytest.param(_future, CheckpointError, "upgrade medcam", id="newer-format"),
]


@pytest.mark.parametrize("damage, error, fragment", CASES)
def test_bad_checkpoint(tiny_checkpoint, damage, error, fragment):
    path = damage(tiny_checkpoint)
    expect_error(lambda: medcam.load(path), error, fragment)


def test_digest_message_says_corruption_not_tampering(tiny_checkpoint):
    """The stored digest is recomputable by whoever rewrites the file: the message must not promise more."""
    err = expect_error(lambda: medcam.load(_flipped(tiny_checkpoint)), CheckpointError, "integrity")
    assert "tampered" not in str(err) and "sha256" in str(err)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_sha256_given_by_the_user(tiny_checkpoint, tmp_path):
    good = _sha(tiny_checkpoint)
    assert isinstance(medcam.load(tiny_checkpoint, sha256=good.upper()), torch.nn.Module)
    other = medcam.save(medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3}),
                        tmp_path / "other.pt")
    expect_error(lambda: medcam.load(other, sha256=good), CheckpointError, f"not the expected {good}")
    expect_error(lambda: medcam.load(tiny_checkpoint, sha256="abc"), CheckpointError, "64 hexadecimal")


def test_sha256_refuses_a_malicious_file_before_unpickling(tiny_checkpoint, tmp_path, monkeypatch):
    good = _sha(tiny_checkpoint)
    evil = _malicious(tmp_path / "evil.pt")
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load ran on a file with the wrong sha256"))
    expect_error(lambda: medcam.load(evil, sha256=good), CheckpointError, "not the expected")


@pytest.mark.parametrize("option", ["--sha256", "--segmenter-sha256"])
def test_cli_sha256_mismatch_is_one_line(cli, tiny_checkpoint, good_png, tmp_path, option):
    seg = medcam.save(medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4},
                                              "preprocess": {"size": 64}}), tmp_path / "seg.pt")
    code, out, err = cli("explain", tiny_checkpoint, good_png, "--segmenter", seg, option, "0" * 64,
                         "--out", tmp_path / "out")
    assert code == 2 and one_line(err) and "not the expected" in err, err
    ok = cli("explain", tiny_checkpoint, good_png, "--segmenter", seg, "--sha256", _sha(tiny_checkpoint),
             "--segmenter-sha256", _sha(seg), "--out", tmp_path / "out", "--quiet")
    assert ok[0] == 0 and ok[1].startswith("ok")


def test_disk_full_while_saving(tiny_model, tmp_path, monkeypatch):
    """Before: torch's "unexpected pos 704 vs 598". After: the reason, and the previous file intact."""
    target = medcam.save(tiny_model, tmp_path / "last.pt")
    before = target.read_bytes()
    real_fdopen = os.fdopen

    def full_disk(fd, mode="r", *args, **kwargs):
        if "w" in mode:
            os.close(fd)
            return open("/dev/full", "wb")
        return real_fdopen(fd, mode, *args, **kwargs)

    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full on this system")
    monkeypatch.setattr(os, "fdopen", full_disk)
    err = expect_error(lambda: medcam.save(tiny_model, target), OutputError, "No space left on device")
    assert "the disk is full" in str(err) and isinstance(err, OSError)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]  # no temporary file left behind


def test_wrong_kind_and_wrong_architecture(tiny_checkpoint, tmp_path):
    from medcam.inference import Explainer

    seg = medcam.save(medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4}}),
                      tmp_path / "seg.pt")
    expect_error(lambda: Explainer.from_checkpoint(seg), CheckpointError, "holds a segmenter")
    expect_error(lambda: Explainer.from_checkpoint(tiny_checkpoint, segmenter=tiny_checkpoint), CheckpointError,
                 "holds a classifier")
    payload = torch.load(tiny_checkpoint, weights_only=True)
    payload["state_dict"] = {k: v for k, v in payload["state_dict"].items() if not k.startswith("head.")}
    from medcam.checkpoint import _checksum

    payload["sha256"] = _checksum(payload)
    torch.save(payload, tiny_checkpoint)
    expect_error(lambda: medcam.load(tiny_checkpoint), CheckpointError, "do not fit the architecture")
