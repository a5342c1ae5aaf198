"""Child process for the engine's subprocess tests (run directly or under torchrun; not collected).

    python _train_child.py --out DIR [--resume] [--kill-at EPOCH STEP] [--plain] [--epochs N]

Trains on a tiny generated lesion set. ``--kill-at`` prints a marker after that
optimizer step (0-based epoch and step) and then waits to be killed.
``--plain`` uses a backbone without batch normalization, registered here, so
that several processes compute exactly what one process computes on the same
global batch (per-process batch statistics would differ otherwise).
"""
from __future__ import annotations

import argparse
import sys
import time

import torch
from torch import nn
from torch.utils.data import Dataset

from medcam.data.synthetic import SyntheticLesions
from medcam.engine import Callback, Trainer
from medcam.features import FeatureInfo, FeatureLevel
from medcam.registry import backbones


class PlainCNN(nn.Module):
    """Two strided conv + GroupNorm + ReLU stages (no batch statistics)."""

    def __init__(self, in_chans: int = 3, width: int = 8):
        super().__init__()
        self.stages = nn.ModuleList([
            nn.Sequential(nn.Conv2d(in_chans, width, 3, 2, 1), nn.GroupNorm(2, width), nn.ReLU()),
            nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1), nn.GroupNorm(2, 2 * width), nn.ReLU()),
        ])
        self.feature_info = FeatureInfo([FeatureLevel(width, 2, "stages.0"), FeatureLevel(2 * width, 4, "stages.1")])

    def forward(self, x):
        out = []
        for stage in self.stages:
            x = stage(x)
            out.append(x)
        return out


def plain_cnn(in_chans: int = 3, width: int = 8) -> nn.Module:
    return PlainCNN(in_chans, width)


class Materialized(Dataset):
    """The generated items held in memory (generating them every epoch is the slow part)."""

    def __init__(self, source: Dataset):
        self.items = [source[i] for i in range(len(source))]
        self.labels = [item["label"] for item in self.items]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


class KillAt(Callback):
    def __init__(self, epoch: int, step: int):
        self.epoch, self.step = epoch, step

    def on_step_end(self, trainer, epoch, step, logs):
        if (epoch, step) == (self.epoch, self.step):
            print("KILL-MARKER", flush=True)
            time.sleep(600)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-at", nargs=2, type=int)
    parser.add_argument("--plain", action="store_true")
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(1)
    backbone = {"name": "tiny_cnn", "width": 8}
    if args.plain:
        backbones.register(plain_cnn, name="plain_cnn_test")
        backbone = {"name": "plain_cnn_test"}
    spec = {"backbone": backbone, "num_classes": 3, "preprocess": {"size": 32},
            "class_names": ["normal", "benign", "malignant"]}
    config = {"epochs": args.epochs, "batch_size": 8, "lr": 3e-3, "progress": False, "seed": 7}
    train = Materialized(SyntheticLesions([8, 8, 8], size=32, seed=1))
    val = Materialized(SyntheticLesions([5, 5, 5], size=32, seed=2))
    callbacks = [KillAt(*args.kill_at)] if args.kill_at else []
    trainer = Trainer(spec, config, out_dir=args.out, callbacks=callbacks)
    trainer.fit(train, val, resume=args.resume)
    trainer.dist.close()


if __name__ == "__main__":
    sys.exit(main())
