"""Helpers shared by the WSOL plugin tests."""
from __future__ import annotations

import torch


def warm_batchnorm(model: torch.nn.Module, size: int = 64, batch: int = 8) -> torch.nn.Module:
    """Set every batch norm's running statistics from one random ``(batch, 3, size, size)`` batch.

    An untrained network in eval mode would otherwise shrink the deep levels to ~1e-4
    and make every map nearly constant. Momenta are restored afterwards; returns the
    model in eval mode.
    """
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.momentum = 1.0
    with torch.no_grad():
        model.train()(torch.rand(batch, 3, size, size))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    return model.eval()
