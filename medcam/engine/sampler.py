"""A seeded, resumable, distributed training sampler with an optional class balance.

:class:`EpochSampler` draws one *global* order of sample indices per epoch,
determined only by ``(seed, epoch)``, then gives process ``rank`` of
``num_replicas`` every ``num_replicas``-th index starting at ``rank``, exactly
as :class:`torch.utils.data.distributed.DistributedSampler` does. With a
per-process batch of ``B / W``, the union of the W processes' ``i``-th batches
is the ``i``-th block of ``B`` indices of the global order, so W processes see
the same global batches as one process with batch ``B``.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from medcam.errors import DataError

from .seeding import derive_seed

__all__ = ["EpochSampler", "class_balanced_weights", "BALANCE_RATIO", "wants_balance"]

#: ``balanced_sampler: auto`` balances the classes when the largest is more than this many times the smallest.
BALANCE_RATIO = 1.5


def wants_balance(setting: bool | str, counts: Sequence[int], multilabel: bool) -> tuple[bool, str]:
    """Whether to draw classes equally often, and why (for the run header).

    ``setting`` is the config's ``balanced_sampler``: ``True``/``False`` as given; ``"auto"``
    balances single-label data whose largest class (of ``counts``, one per class) is more than
    :data:`BALANCE_RATIO` times its smallest non-empty one. Multi-label data is never balanced
    by sampling (a sample has several classes).
    """
    if setting is not True and setting is not False and setting != "auto":
        raise ValueError(f"balanced_sampler: expected true, false or auto, got {setting!r}")
    if setting != "auto":
        return bool(setting), "set in train.balanced_sampler"
    if multilabel:
        return False, "auto: multi-label data"
    present = [int(c) for c in counts if int(c) > 0]
    if len(present) < 2:
        return False, "auto: one class present"
    ratio = max(present) / min(present)
    on = ratio > BALANCE_RATIO
    return on, f"auto: largest class {ratio:.1f}x the smallest, {'>' if on else '<='} {BALANCE_RATIO}"


def class_balanced_weights(labels: Sequence[int] | torch.Tensor, num_classes: int) -> torch.Tensor:
    """Per-sample weights ``1 / n_{y_i}`` ``(N,)``: every class is drawn equally often.

    Raises:
        DataError: labels that are not ``(N,)`` class indices in ``[0, num_classes)``.
    """
    y = torch.as_tensor(labels)
    if y.dim() != 1:
        raise DataError(f"a class-balanced sampler needs one class index per sample, got labels of shape "
                        f"{tuple(y.shape)} (multi-label data cannot be class-balanced this way)")
    y = y.long()
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise DataError(f"labels must lie in [0, {num_classes}), got [{int(y.min())}, {int(y.max())}]")
    counts = torch.bincount(y, minlength=num_classes).double()
    return 1.0 / counts.clamp_min(1)[y]


class EpochSampler(Sampler[int]):
    """Indices of one process for one epoch (call :meth:`set_epoch` before iterating).

    Args:
        num_samples: size N of the data set.
        batch_size: the global batch size B (used with ``drop_last``).
        shuffle: random order (else 0..N-1).
        weights: optional ``(N,)`` sampling weights; then N indices are drawn
            with replacement (see :func:`class_balanced_weights`).
        seed: the run's seed; the order of epoch ``e`` depends on ``(seed, e)`` only.
        num_replicas: number of processes W.
        rank: this process, in ``[0, W)``.
        drop_last: drop the last incomplete global batch (avoids a batch of one
            sample, which batch normalization cannot train on). Otherwise the
            order is padded by repeating its start to a multiple of W.
    """

    def __init__(self, num_samples: int, *, batch_size: int, shuffle: bool = True,
                 weights: torch.Tensor | None = None, seed: int = 0, num_replicas: int = 1, rank: int = 0,
                 drop_last: bool = False):
        if num_samples < 1:
            raise DataError("cannot sample from an empty data set")
        if not 0 <= rank < num_replicas:
            raise ValueError(f"rank {rank} is outside [0, {num_replicas})")
        if weights is not None and tuple(weights.shape) != (num_samples,):
            raise ValueError(f"weights must be ({num_samples},), got {tuple(weights.shape)}")
        if batch_size % num_replicas:
            raise DataError(f"the global batch size {batch_size} must be divisible by the number of processes "
                            f"{num_replicas}")
        self.num_samples, self.batch_size = num_samples, batch_size
        self.shuffle, self.weights, self.seed = shuffle, weights, seed
        self.num_replicas, self.rank = num_replicas, rank
        self.drop_last = drop_last and num_samples >= batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def total(self) -> int:
        """Length of the global order after dropping or padding."""
        if self.drop_last:
            return self.num_samples // self.batch_size * self.batch_size
        return -(-self.num_samples // self.num_replicas) * self.num_replicas

    def global_order(self) -> torch.Tensor:
        """The epoch's order over all processes, ``(total,)`` int64."""
        g = torch.Generator().manual_seed(derive_seed(self.seed, self.epoch, 0x5A3B))
        if self.weights is not None:
            order = torch.multinomial(self.weights.double(), self.num_samples, replacement=True, generator=g)
        elif self.shuffle:
            order = torch.randperm(self.num_samples, generator=g)
        else:
            order = torch.arange(self.num_samples)
        total = self.total
        if total <= order.numel():
            return order[:total]
        repeats = -(-total // order.numel())
        return order.repeat(repeats)[:total]

    def __iter__(self) -> Iterator[int]:
        return iter(self.global_order()[self.rank::self.num_replicas].tolist())

    def __len__(self) -> int:
        return self.total // self.num_replicas
