"""medcam.state_dict: reading, unwrapping and loading weights files built here (no plugin code)."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch
from torch import nn

import medcam
from medcam.errors import CheckpointError
from medcam.state_dict import (WEIGHT_PARAMETERS, load_weights, read_state_dict, read_weights_file,
                               start_from_checkpoint, unwrap_state_dict)


class Net(nn.Module):
    """A stand-in backbone: ``conv`` (4, 3, 3, 3), ``bn`` (4,), ``head`` (2, 4)."""

    def __init__(self, classes: int = 2):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4, classes)


def _random_state(module: nn.Module) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return {k: (torch.randn_like(v) if v.is_floating_point() else v.clone()) for k, v in module.state_dict().items()}


def _same(module: nn.Module, state: dict[str, torch.Tensor]) -> bool:
    own = module.state_dict()
    return all(torch.equal(own[k], v) for k, v in state.items())


class TrainingConfig(dict):
    """Stands for a config object pickled next to the weights (as official releases do)."""


@pytest.fixture
def state() -> dict[str, torch.Tensor]:
    return _random_state(Net())


@pytest.mark.parametrize("container", ["bare", "state_dict", "model", "nested", "module_prefix"])
def test_containers_are_unwrapped(tmp_path: Path, state, container: str) -> None:
    payload = {"bare": state, "state_dict": {"state_dict": state, "epoch": 3},
               "model": {"model": state, "optimizer": {"lr": torch.tensor(0.1)}},
               "nested": {"state_dict": {"model": state}},
               "module_prefix": {"model": {f"module.{k}": v for k, v in state.items()}}}[container]
    torch.save(payload, tmp_path / "w.pt")
    assert read_state_dict(tmp_path / "w.pt").keys() == state.keys()
    net = Net()
    report = load_weights(net, tmp_path / "w.pt", what="net")
    assert _same(net, state) and sorted(report.loaded) == sorted(state) and not report.ignored


def test_named_entry_and_safetensors(tmp_path: Path, state) -> None:
    other = {k: v + 1 if v.is_floating_point() else v for k, v in state.items()}
    torch.save({"model": state, "model_ema": other}, tmp_path / "w.pt")
    assert torch.equal(read_state_dict(tmp_path / "w.pt", entry="model_ema")["conv.weight"], other["conv.weight"])
    with pytest.raises(CheckpointError, match=r"w\.pt' has no 'ema' entry \(found \['model', 'model_ema'\]\)"):
        read_state_dict(tmp_path / "w.pt", entry="ema")
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "w.safetensors"))
    assert read_state_dict(tmp_path / "w.safetensors").keys() == state.keys()


def test_foreign_objects_are_read_inert(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.pth"
    config = TrainingConfig(MODEL={"TYPE": "vssm"})
    torch.save({"model": {"w": torch.ones(2)}, "config": config}, path)
    with pytest.raises(Exception):
        torch.load(path, weights_only=True)
    obj = read_weights_file(path)
    assert torch.equal(obj["model"]["w"], torch.ones(2))
    assert not isinstance(obj["config"], TrainingConfig) and dict(obj["config"])["MODEL"] == {"TYPE": "vssm"}
    assert read_state_dict(path).keys() == {"w"}


def test_medcam_checkpoint_as_a_backbone_file(tmp_path: Path) -> None:
    model = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 3})
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.uniform_(-1, 1)
    path = medcam.save(model, tmp_path / "model.pt")
    backbone = medcam.build_backbone({"name": "tiny_cnn", "width": 4})
    report = load_weights(backbone, path, what="tiny_cnn")
    assert _same(backbone, model.backbone.state_dict()) and len(report.loaded) == len(backbone.state_dict())
    assert read_state_dict(path).keys() == model.backbone.state_dict().keys()  # backbone.* only, prefix removed
    with pytest.raises(CheckpointError, match=r"model\.pt' is a medcam checkpoint, not a foreign model's weights: "
                                              r"rebuild it with medcam\.load\(\)"):
        read_state_dict(path, medcam_checkpoints=False)


def test_a_changed_medcam_checkpoint_fails_its_integrity_check(tmp_path: Path) -> None:
    model = medcam.build_model({"backbone": {"name": "tiny_cnn", "width": 4}, "num_classes": 2})
    payload = torch.load(medcam.save(model, tmp_path / "model.pt"), weights_only=True)
    next(iter(payload["state_dict"].values())).add_(1.0)  # a flipped value the stored digest does not cover
    torch.save(payload, tmp_path / "changed.pt")
    with pytest.raises(CheckpointError, match=r"changed\.pt' failed its integrity check"):
        read_state_dict(tmp_path / "changed.pt")


def test_digest_mismatch_names_the_file(tmp_path: Path, state) -> None:
    path = tmp_path / "w.pt"
    torch.save(state, path)
    good = hashlib.sha256(path.read_bytes()).hexdigest()
    load_weights(Net(), path, what="net", sha256=good)
    with pytest.raises(CheckpointError, match=rf"w\.pt' has sha256 {good}, not the expected {'0' * 64}"):
        load_weights(Net(), path, what="net", sha256="0" * 64)
    with pytest.raises(CheckpointError, match="64 hexadecimal characters"):
        read_state_dict(path, sha256="abc")


def test_missing_unexpected_and_shape_errors_name_keys_and_file(tmp_path: Path, state) -> None:
    bad = dict(state)
    del bad["bn.weight"]
    bad["extra.weight"] = torch.zeros(1)
    bad["head.weight"] = torch.zeros(5, 4)
    path = tmp_path / "bad.pt"
    torch.save(bad, path)
    with pytest.raises(CheckpointError) as info:
        load_weights(Net(), path, what="net 'x'", hint="Accepted: a Net state dict")
    message = str(info.value)
    assert "\n" not in message
    assert message == (f"'{path}' does not fit net 'x': missing keys: bn.weight; unexpected keys: extra.weight; "
                       f"shape mismatches (file vs model): head.weight (5, 4) vs (2, 4). Accepted: a Net state dict")
    net = Net()
    before = net.bn.weight.clone()
    with pytest.raises(CheckpointError, match=r"shape mismatches"):  # not loadable even when not strict
        load_weights(net, path, what="net", strict=False)
    fine = {k: v for k, v in bad.items() if k != "head.weight"}
    report = load_weights(net, fine, what="net", strict=False, origin="my dict")
    assert report.initialized == ["bn.weight", "head.weight"] and report.ignored == ["extra.weight"]
    assert torch.equal(net.bn.weight, before) and torch.equal(net.conv.weight, state["conv.weight"])


def test_a_head_may_be_left_missing(state) -> None:
    without_head = {k: v for k, v in state.items() if not k.startswith("head.")}
    with pytest.raises(CheckpointError, match=r"my dict does not fit net: missing keys: head\.weight, head\.bias$"):
        load_weights(Net(), without_head, what="net", origin="my dict")
    report = load_weights(Net(), without_head, what="net", allow_missing=("head.*",))
    assert report.initialized == ["head.bias", "head.weight"]
    without_counter = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert load_weights(Net(), without_counter, what="net").initialized == ["bn.num_batches_tracked"]


def test_converter_is_applied_and_its_errors_name_the_file(tmp_path: Path, state) -> None:
    renamed = {f"features.{k}": v for k, v in state.items() if not k.startswith("head.")}
    renamed["fc.weight"], renamed["fc.bias"] = state["head.weight"], state["head.bias"]
    seen = {}

    def convert(file_state, reference):
        seen.update(reference)
        out = {k.removeprefix("features."): v for k, v in file_state.items() if k.startswith("features.")}
        if "fc.weight" not in file_state:
            raise ValueError("no classifier 'fc' in the file")
        return {**out, "head.weight": file_state["fc.weight"], "head.bias": file_state["fc.bias"]}

    net = Net()
    load_weights(net, renamed, what="net", convert=convert)
    assert _same(net, state) and seen["conv.weight"] == torch.Size([4, 3, 3, 3])
    del renamed["fc.weight"]
    torch.save(renamed, tmp_path / "r.pt")
    with pytest.raises(CheckpointError, match=r"r\.pt' cannot be converted to net: no classifier 'fc' in the file"):
        load_weights(net, tmp_path / "r.pt", what="net", convert=convert)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"none\.pt"):
        read_state_dict(tmp_path / "none.pt")
    (tmp_path / "notes.txt").write_text("not weights")
    with pytest.raises(CheckpointError, match=r"notes\.txt' is not a weights file"):
        read_state_dict(tmp_path / "notes.txt")
    torch.save({"epoch": 3}, tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match=r"not a state dict: entries \['epoch'\] are not tensors"):
        read_state_dict(tmp_path / "meta.pt")
    with pytest.raises(CheckpointError, match="holds no state dict"):
        unwrap_state_dict([torch.ones(1)], "a list")


def test_weight_parameters_and_start_from_checkpoint() -> None:
    assert WEIGHT_PARAMETERS == {"pretrained": False, "checkpoint_path": None}
    assert start_from_checkpoint("tiny_cnn", Path("m.pt")) == {"checkpoint_path": "m.pt"}
    assert start_from_checkpoint({"name": "resnet18", "pretrained": True}, "m.pt") == {"checkpoint_path": "m.pt",
                                                                                      "pretrained": False}
