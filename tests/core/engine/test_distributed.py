"""medcam.engine.distributed: the single-process context, and 2 CPU processes under torchrun (gloo)
giving the same weights and metrics as one process on the same global batch."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from medcam.checkpoint import read_checkpoint
from medcam.engine.distributed import DistContext, resolve_device

CHILD = Path(__file__).with_name("_train_child.py")


def test_single_process_context_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = DistContext.from_env("cpu")
    assert not ctx.enabled and ctx.is_main and ctx.device == torch.device("cpu")
    values = torch.tensor([1.0, 2.0])
    assert ctx.sum(values) is values
    assert ctx.gather({"a": 1}) == [{"a": 1}]
    ctx.sync_buffers(torch.nn.BatchNorm1d(2))
    ctx.barrier()
    ctx.close()


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run([sys.executable, str(CHILD), "--plain", "--out", str(one)], check=True, env=env)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                    str(CHILD), "--plain", "--out", str(two)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    a, b = read_checkpoint(one / "last.pt"), read_checkpoint(two / "last.pt")
    assert a.metadata["epoch"] == b.metadata["epoch"] == 2
    for key in a.state_dict:
        torch.testing.assert_close(b.state_dict[key], a.state_dict[key], atol=1e-5, rtol=1e-4)
    for part in ("train", "metrics"):
        ma, mb = a.metadata[part], b.metadata[part]
        for key in ("loss", "accuracy") + (("balanced_accuracy", "auc") if part == "metrics" else ()):
            assert mb[key] == pytest.approx(ma[key], abs=1e-5), (part, key)
    assert b.metadata["metrics"]["n"] == a.metadata["metrics"]["n"] == 15  # every val image scored once
    assert b.metadata["metrics"]["confusion_matrix"] == a.metadata["metrics"]["confusion_matrix"]
