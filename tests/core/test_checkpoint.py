"""Checkpoints: round trip, metadata, and every way a file can be bad."""
from __future__ import annotations

import zipfile

import pytest
import torch

import medcam
from medcam.checkpoint import FORMAT, backbone_weights, is_medcam_checkpoint, read_checkpoint
from medcam.errors import CheckpointError


@pytest.fixture
def model():
    torch.manual_seed(1)
    return medcam.build_model({"name": "tiny_classifier", "num_classes": 3, "class_names": ["n", "b", "m"]})


def test_round_trip_spec_weights_metadata(model, tmp_path):
    path = medcam.save(model, tmp_path / "sub" / "m.pt", epoch=3, metrics={"bacc": 0.7})
    loaded = medcam.load(path)
    assert loaded.spec == model.spec and not loaded.training
    assert loaded.checkpoint_metadata == {"epoch": 3, "metrics": {"bacc": 0.7}}
    for (k, a), (k2, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.rand(2, 3, 64, 64)
    model.eval()
    assert torch.equal(model(x).logits, loaded(x).logits)
    assert not list(tmp_path.joinpath("sub").glob("*.tmp"))  # the temporary file was renamed away


def test_training_state_is_kept(model, tmp_path):
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.rand(2, 3, 32, 32)).logits.sum().backward()
    opt.step()
    medcam.save(model, tmp_path / "m.pt", training_state={"optimizer": opt.state_dict(), "epoch": 1})
    ckpt = read_checkpoint(tmp_path / "m.pt")
    assert ckpt.kind == "model" and ckpt.training_state["epoch"] == 1
    fresh = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    fresh.load_state_dict(ckpt.training_state["optimizer"])


@pytest.mark.usefixtures("registered_test_parts")
def test_segmenter_round_trip(tmp_path):
    seg = medcam.build_segmenter({"name": "spec_test_seg", "in_chans": 1})
    loaded = medcam.load(medcam.save(seg, tmp_path / "s.pt"))
    assert loaded.spec == seg.spec and type(loaded).__name__ == "MedcamSegmenter"
    x = torch.rand(1, 1, 8, 8)
    assert torch.equal(loaded(x), seg.eval()(x))


@pytest.mark.usefixtures("registered_test_parts")
def test_backbone_weights_of_a_saved_model(model, tmp_path):
    payload = torch.load(medcam.save(model, tmp_path / "m.pt"), weights_only=True)
    assert is_medcam_checkpoint(payload) and not is_medcam_checkpoint(model.state_dict())
    weights = backbone_weights(payload, "'m.pt'")
    own = model.backbone.state_dict()
    assert weights.keys() == own.keys() and all(torch.equal(weights[k], own[k]) for k in own)
    seg = torch.load(medcam.save(medcam.build_segmenter({"name": "spec_test_seg"}), tmp_path / "s.pt"),
                     weights_only=True)
    with pytest.raises(CheckpointError, match="'s.pt' is a medcam checkpoint without 'backbone"):
        backbone_weights(seg, "'s.pt'")


class _Exploit:
    """Unpickling this would create a marker file: proof the pickle ran code."""

    marker = None

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_malicious_pickle_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    _Exploit.marker = marker
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "format_version": 1, "payload": _Exploit()}, path)
    with pytest.raises(CheckpointError, match="refusing to load .*possibly a malicious pickle"):
        medcam.load(path)
    assert not marker.exists()


def test_truncated_file(model, tmp_path):
    path = medcam.save(model, tmp_path / "m.pt")
    data = path.read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a medcam checkpoint|corrupt or truncated"):
        medcam.load(tmp_path / "cut.pt")


def test_tampered_weights_fail_integrity(model, tmp_path):
    path = medcam.save(model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    key = next(iter(payload["state_dict"]))
    payload["state_dict"][key] = payload["state_dict"][key] + 1
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match="failed its integrity check"):
        medcam.load(tmp_path / "bad.pt")
    payload = torch.load(path, weights_only=True)
    payload["spec"] = payload["spec"].replace('"num_classes": 3', '"num_classes": 4')
    torch.save(payload, tmp_path / "bad_spec.pt")
    with pytest.raises(CheckpointError, match="integrity"):
        medcam.load(tmp_path / "bad_spec.pt")


def test_corrupted_bytes_inside_archive(model, tmp_path):
    path = medcam.save(model, tmp_path / "m.pt")
    with zipfile.ZipFile(path) as zf:
        info = max(zf.infolist(), key=lambda i: i.file_size)
    data = bytearray(path.read_bytes())
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra) + 64
    for i in range(start, start + 32):
        data[i] ^= 0xFF
    (tmp_path / "flip.pt").write_bytes(bytes(data))
    with pytest.raises(CheckpointError):
        medcam.load(tmp_path / "flip.pt")


def test_other_files(tmp_path, model):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        medcam.load(tmp_path / "none.pt")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(CheckpointError, match="not a PyTorch zip archive"):
        medcam.load(tmp_path / "text.pt")
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="not a medcam checkpoint .*load_state_dict"):
        medcam.load(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="JSON-serializable"):
        medcam.save(model, tmp_path / "x.pt", note=object())
    with pytest.raises(CheckpointError, match="expects a model built by"):
        medcam.save(torch.nn.Linear(2, 2), tmp_path / "y.pt")


def test_weights_not_matching_spec(model, tmp_path):
    path = medcam.save(model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["state_dict"].pop(next(iter(payload["state_dict"])))
    from medcam.checkpoint import _checksum

    payload["sha256"] = _checksum(payload)  # a consistent file whose weights do not fit
    torch.save(payload, tmp_path / "short.pt")
    with pytest.raises(CheckpointError, match="weights do not fit"):
        medcam.load(tmp_path / "short.pt")


def test_load_does_not_reread_weight_sources(tmp_path):
    """A model first initialised from a file loads from its checkpoint after that file is gone."""
    init = tmp_path / "init.pt"
    torch.save(medcam.build_backbone({"name": "tiny_cnn", "width": 4}).state_dict(), init)
    model = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4, "checkpoint_path": str(init)},
                                "num_classes": 2})
    path = medcam.save(model, tmp_path / "m.pt")
    init.unlink()
    loaded = medcam.load(path)
    assert loaded.spec["backbone"]["checkpoint_path"] == str(init)  # provenance kept in the spec
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))


def test_without_weight_sources_is_recursive():
    from medcam.checkpoint import without_weight_sources

    spec = {"backbone": {"pretrained": True, "checkpoint_path": "x"}, "loss": [{"segmenter": {"pretrained": True}}],
            "other": {"pretrained": False}}
    assert without_weight_sources(spec) == {"backbone": {"pretrained": False, "checkpoint_path": None},
                                            "loss": [{"segmenter": {"pretrained": False}}],
                                            "other": {"pretrained": False}}


def test_saved_file_has_umask_permissions(model, tmp_path):
    import os
    import stat

    old = os.umask(0o022)
    try:
        path = medcam.save(model, tmp_path / "m.pt")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
