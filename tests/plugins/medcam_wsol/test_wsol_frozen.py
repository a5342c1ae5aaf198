"""frozen_call: same values, no parameter gradients, untouched buffers, no copies."""
from __future__ import annotations

import torch
from torch import nn

from medcam_wsol.frozen import FrozenTail, frozen_call


def _net() -> nn.Module:
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Conv2d(4, 2, 1))


def test_same_output_gradient_only_to_input():
    net = _net().train()
    x = torch.randn(2, 3, 5, 5, requires_grad=True)
    ref = _net().train()
    ref.load_state_dict(net.state_dict())
    out = frozen_call(net, x)
    assert torch.allclose(out, ref(x), atol=1e-6)
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in net.parameters())


def test_buffers_untouched_and_parameters_shared():
    net = _net().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    ids = [id(p) for p in net.parameters()]
    frozen_call(net, torch.randn(4, 3, 5, 5))
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats not updated
    assert [id(p) for p in net.parameters()] == ids
    net(torch.randn(4, 3, 5, 5))  # a normal call does update them (the test above can fail)
    assert not torch.equal(before["1.running_mean"], net.state_dict()["1.running_mean"])


def test_frozen_tail_wraps_two_modules_without_registering_copies():
    a, b = nn.Linear(3, 3), nn.Linear(3, 1)
    tail = FrozenTail(a, b, lambda m1, m2, x: m2(m1(x)))
    x = torch.randn(5, 3, requires_grad=True)
    out = frozen_call(tail, x)
    assert torch.allclose(out, b(a(x)))
    out.sum().backward()
    assert a.weight.grad is None and b.weight.grad is None and x.grad is not None
    assert tail.backbone is a and tail.head is b
