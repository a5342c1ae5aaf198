"""medcam.engine.sampler: seeded epochs, distributed shards that add up to the global batches, class balance."""
from __future__ import annotations

import pytest
import torch

from medcam.engine.sampler import BALANCE_RATIO, EpochSampler, class_balanced_weights, wants_balance
from medcam.errors import DataError


def _epoch(sampler: EpochSampler, epoch: int) -> list[int]:
    sampler.set_epoch(epoch)
    return list(sampler)


def test_same_seed_and_epoch_same_order():
    a = EpochSampler(20, batch_size=4, seed=1)
    b = EpochSampler(20, batch_size=4, seed=1)
    assert _epoch(a, 3) == _epoch(b, 3)
    assert _epoch(a, 3) != _epoch(a, 4)
    assert sorted(_epoch(a, 0)) == list(range(20))


def test_shards_form_the_single_process_global_batches():
    n, batch, world = 22, 8, 2
    single = _epoch(EpochSampler(n, batch_size=batch, seed=9, drop_last=True), 2)
    shards = [_epoch(EpochSampler(n, batch_size=batch, seed=9, num_replicas=world, rank=r, drop_last=True), 2)
              for r in range(world)]
    local = batch // world
    assert len(single) == 16 and all(len(s) == 8 for s in shards)
    for i in range(len(single) // batch):
        together = sorted(x for s in shards for x in s[i * local:(i + 1) * local])
        assert together == sorted(single[i * batch:(i + 1) * batch])


def test_padding_without_drop_last():
    shards = [_epoch(EpochSampler(5, batch_size=2, seed=0, num_replicas=2, rank=r), 0) for r in range(2)]
    assert len(shards[0]) == len(shards[1]) == 3
    assert set(shards[0]) | set(shards[1]) == set(range(5))


def test_class_balanced_weights_equalize_classes():
    labels = torch.tensor([0] * 90 + [1] * 10)
    w = class_balanced_weights(labels, 2)
    assert w[:90].sum().item() == pytest.approx(w[90:].sum().item())
    sampler = EpochSampler(100, batch_size=10, weights=w, seed=0)
    drawn = labels[torch.tensor(_epoch(sampler, 0) + _epoch(sampler, 1))]
    assert 0.35 < drawn.float().mean().item() < 0.65  # about half from the rare class


def test_errors():
    with pytest.raises(DataError, match="multi-label"):
        class_balanced_weights(torch.zeros(4, 3), 3)
    with pytest.raises(DataError, match=r"\[0, 2\)"):
        class_balanced_weights(torch.tensor([0, 2]), 2)
    with pytest.raises(DataError, match="divisible by the number of processes 3"):
        EpochSampler(10, batch_size=8, num_replicas=3, rank=0)
    with pytest.raises(DataError, match="empty"):
        EpochSampler(0, batch_size=8)


@pytest.mark.parametrize("setting, counts, multilabel, on, why", [
    ("auto", [107, 350, 167], False, True, "auto: largest class 3.3x the smallest, > 1.5"),   # BUSI's train counts
    ("auto", [10, 9, 7], False, False, "auto: largest class 1.4x the smallest, <= 1.5"),
    ("auto", [3, 2], False, False, "auto: largest class 1.5x the smallest, <= 1.5"),           # the bound itself
    ("auto", [0, 12, 5], False, True, "auto: largest class 2.4x the smallest, > 1.5"),        # empty classes ignored
    ("auto", [0, 12, 0], False, False, "auto: one class present"),
    ("auto", [100, 3], True, False, "auto: multi-label data"),
    (True, [5, 5], False, True, "set in train.balanced_sampler"),
    (False, [100, 3], False, False, "set in train.balanced_sampler"),
])
def test_auto_balance_follows_the_class_ratio(setting, counts, multilabel, on, why):
    assert BALANCE_RATIO == 1.5
    assert wants_balance(setting, counts, multilabel) == (on, why)


def test_balance_setting_must_be_known():
    with pytest.raises(ValueError, match="expected true, false or auto, got 'yes'"):
        wants_balance("yes", [1, 2], False)
