"""Seeding: one integer fixes weights, data order, augmentation and dropout.

The trainer seeds everything once before building the model, then again at the
start of every epoch from ``(seed, epoch)``. The second seeding makes each
epoch a function of the seed and the weights it starts from, so a run resumed
from an end-of-epoch checkpoint replays the next epoch exactly, without having
to store the random generators' states.
"""
from __future__ import annotations

import random

import numpy as np
import torch

__all__ = ["derive_seed", "seed_everything"]


def derive_seed(seed: int, *keys: int) -> int:
    """A well-mixed 63-bit seed from ``seed`` and integer ``keys`` (e.g. the epoch).

    Uses NumPy's ``SeedSequence`` so nearby inputs give unrelated streams.
    """
    state = np.random.SeedSequence([int(seed), *[int(k) for k in keys]]).generate_state(2, dtype=np.uint32)
    return int((int(state[0]) << 31) ^ int(state[1]))


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
