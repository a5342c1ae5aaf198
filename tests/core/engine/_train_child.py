"""Child process for the engine's subprocess tests (run directly or under torchrun; not collected).

    python _train_child.py --out DIR [--resume] [--kill-at EPOCH STEP] [--pause-after checkpoint|metrics]
                           [--plain] [--epochs N]

Trains on a tiny generated lesion set. ``--kill-at`` prints a marker after that
optimizer step (0-based epoch and step) and then waits to be killed;
``--pause-after`` does so right after the final epoch's ``last.pt``
(``checkpoint``) or ``metrics.jsonl`` (``metrics``) is written, the two
moments between which an epoch's files are written. :func:`kill_at_marker`
runs a child until its marker and SIGKILLs it.
``--plain`` uses a backbone without batch normalization, registered here, so
that several processes compute exactly what one process computes on the same
global batch (per-process batch statistics would differ otherwise).
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

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


def _pause() -> None:
    print("KILL-MARKER", flush=True)
    time.sleep(600)


class KillAt(Callback):
    def __init__(self, epoch: int, step: int):
        self.epoch, self.step = epoch, step

    def on_step_end(self, trainer, epoch, step, logs):
        if (epoch, step) == (self.epoch, self.step):
            _pause()


def pause_after(moment: str, epochs: int) -> None:
    """Make the final epoch pause right after its ``last.pt`` (``checkpoint``) or ``metrics.jsonl`` (``metrics``)."""
    from medcam.engine import logs, trainer

    if moment == "checkpoint":
        save = trainer.save

        def save_then_pause(model, path, **kwargs):
            written = save(model, path, **kwargs)
            if Path(path).name == "last.pt" and kwargs.get("epoch") == epochs:
                _pause()
            return written

        trainer.save = save_then_pause
    else:
        write = logs.RunFiles.write_history

        def write_then_pause(self, history):
            write(self, history)
            if len(history) == epochs:
                _pause()

        logs.RunFiles.write_history = write_then_pause


def child_env() -> dict[str, str]:
    """The environment of a child run: one thread, unbuffered output."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def kill_at_marker(args: list[str]) -> None:
    """Run this script with ``args`` until it prints ``KILL-MARKER``, then SIGKILL it (an AssertionError if it
    exits first)."""
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, text=True, env=child_env())
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if "KILL-MARKER" in line:
                break
        else:
            raise AssertionError(f"the child exited before the kill marker (status {proc.wait()})")
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--kill-at", nargs=2, type=int)
    parser.add_argument("--pause-after", choices=("checkpoint", "metrics"))
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
    if args.pause_after:
        pause_after(args.pause_after, args.epochs)
    trainer = Trainer(spec, config, out_dir=args.out, callbacks=callbacks)
    trainer.fit(train, val, resume=args.resume)
    trainer.dist.close()


if __name__ == "__main__":
    sys.exit(main())
