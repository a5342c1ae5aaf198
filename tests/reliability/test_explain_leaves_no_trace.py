"""What explaining leaves behind: no hooks, the same train/eval flags, requires_grad and BatchNorm
statistics, and flat memory over many calls, even when a call fails half-way."""
from __future__ import annotations

import gc
from pathlib import Path

import pytest
import torch
from torch import nn

import medcam
from medcam.errors import AttributionError

from _reliability import expect_error, random_images

METHODS = ["gradcam", "scorecam", "ablationcam", "eigencam", "layercam"]


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(getattr(m, "_backward_pre_hooks", {})) for m in model.modules())


def _buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.named_buffers()}


@pytest.mark.parametrize("method", METHODS)
def test_eval_mode_false_leaves_batchnorm_statistics_alone(tiny_model, method):
    """Before: perturbation methods fed masked images through training-mode BatchNorm and moved its running mean."""
    tiny_model.train()
    before = _buffers(tiny_model)
    medcam.explain(tiny_model, random_images(), method, eval_mode=False, **({"progress": False}
                                                                          if method in ("scorecam", "ablationcam")
                                                                          else {}))
    after = _buffers(tiny_model)
    assert before.keys() == after.keys()
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, msg=f"buffer {name} changed")
    assert all(m.training for m in tiny_model.modules())


def test_eval_mode_false_still_uses_batch_statistics(tiny_model):
    """The opt-out keeps its meaning: the forward pass sees training-mode BatchNorm (batch statistics)."""
    x = random_images(4)
    tiny_model.train()
    train_maps = medcam.explain(tiny_model, x, eval_mode=False)
    eval_maps = medcam.explain(tiny_model, x, eval_mode=True)
    assert not torch.allclose(train_maps, eval_maps)


class _Exploding(nn.Module):
    def forward(self, features, labels=None):
        raise RuntimeError("boom inside the forward pass")


def test_a_failing_call_leaves_no_hook_and_restores_flags(tiny_model):
    tiny_model.train()
    tiny_model.backbone.requires_grad_(False)
    flags = [p.requires_grad for p in tiny_model.parameters()]
    original = tiny_model.head
    tiny_model.head = _Exploding()
    try:
        expect_error(lambda: medcam.explain(tiny_model, random_images(), layer="backbone.stages.1"), RuntimeError,
                     "boom")
    finally:
        tiny_model.head = original
    assert _hooks(tiny_model) == 0
    assert all(m.training for m in tiny_model.modules())
    assert [p.requires_grad for p in tiny_model.parameters()] == flags
    expect_error(lambda: medcam.explain(tiny_model, random_images(), target=5), AttributionError, "out of range")
    assert _hooks(tiny_model) == 0


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    pytest.skip("no /proc/self/status on this system")


@pytest.mark.slow
def test_many_calls_keep_hooks_and_memory_flat(tiny_model):
    """1,000 explain calls with a hooked layer and gradients: no hook survives, memory does not creep."""
    x = random_images(2)
    layer = "backbone.stages.1"
    for _ in range(100):  # warm-up: allocator pools, lazy imports
        medcam.explain(tiny_model, x, "gradcam", layer=layer)
    gc.collect()
    start = _rss_mb()
    for i in range(1000):
        medcam.explain(tiny_model, x, "gradcam++" if i % 2 else "gradcam", layer=layer)
        assert _hooks(tiny_model) == 0
    gc.collect()
    grown = _rss_mb() - start
    assert grown < 25, f"resident memory grew by {grown:.1f} MB over 1,000 calls"
