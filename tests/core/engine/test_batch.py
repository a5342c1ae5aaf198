"""medcam.engine.batch: labels without loading images, class counts, device moves."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset, Subset

from medcam.engine.batch import class_counts, class_names_of, labels_of, to_device
from medcam.errors import DataError


class WithTargets(Dataset):
    targets = np.array([2, 0, 1, 1])
    class_names = ["x", "y", "z"]

    def __len__(self):
        return 4

    def __getitem__(self, i):
        raise AssertionError("labels must not load items")


class ItemsOnly(Dataset):
    def __len__(self):
        return 3

    def __getitem__(self, i):
        return {"image": torch.zeros(1, 2, 2), "label": torch.tensor([1.0, 0.0]) if i else torch.tensor([0.0, 1.0])}


def test_labels_from_attribute_subset_and_items():
    assert labels_of(WithTargets()).tolist() == [2, 0, 1, 1]
    assert labels_of(Subset(WithTargets(), [3, 0])).tolist() == [1, 2]
    multi = labels_of(ItemsOnly())
    assert multi.dtype == torch.float32 and multi.shape == (3, 2)
    assert class_names_of(Subset(WithTargets(), [0])) == ["x", "y", "z"]
    assert class_names_of(ItemsOnly()) is None


def test_class_counts():
    assert class_counts(torch.tensor([0, 2, 2]), 4) == [1, 0, 2, 0]
    assert class_counts(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), 2) == [2, 1]
    with pytest.raises(DataError, match="num_classes=2"):
        class_counts(torch.tensor([0, 2]), 2)
    with pytest.raises(DataError, match="3 columns"):
        class_counts(torch.zeros(2, 3), 2)


def test_to_device_moves_tensors_and_tensor_lists():
    batch = {"image": torch.zeros(1), "boxes": [torch.zeros(0, 4)], "path": ["a"], "epoch": 3}
    out = to_device(batch, torch.device("cpu"))
    assert out["path"] == ["a"] and out["epoch"] == 3 and out["boxes"][0].shape == (0, 4)
