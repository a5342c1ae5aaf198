from __future__ import annotations

import numpy as np
import pytest

from medcam.data.splits import kfold_splits, label_matrix, stratified_split
from medcam.errors import DataError


def _targets() -> np.ndarray:
    return np.array([0] * 100 + [1] * 40 + [2] * 20)


def test_parts_hold_each_class_in_proportion_and_cover_everything():
    t = _targets()
    parts = stratified_split(t, {"train": 0.7, "val": 0.15, "test": 0.15}, seed=0)
    assert sorted(i for p in parts.values() for i in p) == list(range(len(t)))
    for name, f in (("train", 0.7), ("val", 0.15), ("test", 0.15)):
        counts = np.bincount(t[parts[name]], minlength=3)
        assert np.all(np.abs(counts - f * np.bincount(t)) <= 1), (name, counts)


def test_same_seed_same_split_other_seed_other_split():
    t = _targets()
    a = stratified_split(t, [0.8, 0.2], seed=1)
    assert a == stratified_split(t, [0.8, 0.2], seed=1)
    assert a != stratified_split(t, [0.8, 0.2], seed=2)


def test_groups_never_straddle_parts():
    t = _targets()
    groups = [i // 3 for i in range(len(t))]  # triples, some mixing classes
    parts = stratified_split(t, [0.6, 0.2, 0.2], seed=0, groups=groups)
    owner = {}
    for p, idx in enumerate(parts):
        for i in idx:
            assert owner.setdefault(groups[i], p) == p
    sizes = [len(p) for p in parts]
    assert abs(sizes[1] - 32) <= 6 and abs(sizes[2] - 32) <= 6


def test_multilabel_targets_balance_each_label():
    rng = np.random.default_rng(0)
    y = (rng.random((300, 5)) < [0.5, 0.2, 0.1, 0.05, 0.3]).astype(np.uint8)
    parts = stratified_split(y, [0.8, 0.2], seed=0)
    per_label = y[parts[1]].sum(0)
    assert np.all(np.abs(per_label - 0.2 * y.sum(0)) <= 1.5), per_label
    none = (y.sum(1) == 0)
    assert abs(none[parts[1]].sum() - 0.2 * none.sum()) <= 1.5  # the "no finding" items are spread too


def test_kfold_puts_every_item_in_exactly_one_val_fold():
    t = _targets()
    folds = kfold_splits(t, 5, seed=0)
    assert len(folds) == 5
    seen = sorted(i for _, val in folds for i in val)
    assert seen == list(range(len(t)))
    for train, val in folds:
        assert not set(train) & set(val) and len(train) + len(val) == len(t)
        assert np.bincount(t[val], minlength=3).tolist() == [20, 8, 4]


def test_grouped_kfold_keeps_groups_together():
    t = _targets()
    groups = [f"p{i // 4}" for i in range(len(t))]
    for _, val in kfold_splits(t, 4, seed=3, groups=groups):
        in_val = set(val)
        for g in {groups[i] for i in val}:
            assert all(i in in_val for i in range(len(t)) if groups[i] == g)


def test_label_matrix_forms():
    assert label_matrix(np.array([0, 2])).tolist() == [[1, 0, 0], [0, 0, 1]]
    assert label_matrix(np.array([[1, 0], [0, 0]])).tolist() == [[1, 0, 0], [0, 0, 1]]


@pytest.mark.parametrize("call, message", [
    (lambda: stratified_split([0, 1], [0.5, 0.6]), "sum to 1"),
    (lambda: stratified_split([0, 1], [0.5, 0.5], groups=[1]), "1 keys for 2 items"),
    (lambda: kfold_splits([0, 1, 0], 1), "k >= 2"),
    (lambda: kfold_splits([0, 1], 3), "3 folds need at least 3 items"),
])
def test_errors(call, message):
    with pytest.raises(DataError, match=message):
        call()
