"""Is ``medcam``'s training loop as fast as a plain PyTorch loop on the same model, data and batch?

Both sides train the same medcam model (one set of initial weights, copied) on the
same in-memory images ``(N, 3, S, S)`` in [0, 1] with the same batch size, AdamW
settings and cross-entropy, for the same number of epochs, and only training is
timed (no validation, no checkpoints, no progress bar):

* **plain**: the 20-line loop a user writes: a random permutation per epoch, slices of
  the image tensor, ``model(x).logits``, ``F.cross_entropy``, ``zero_grad``,
  ``backward``, ``step``, a one-cycle schedule;
* **medcam**: :class:`medcam.engine.Trainer` ``.fit(train_set)`` on a data set that
  serves the same tensors as items (``{"image", "label"}``), with everything the engine
  does per step (its sampler, collate, loss object, finiteness check, logs, accuracy,
  schedule) and per epoch (seeding, records).

The epochs of the two sides are interleaved (a callback runs one plain epoch after each
engine epoch of one ``fit``), so a load change on a shared machine hits both, and the
first epoch of each side is a warm-up that is not counted. The images are random: the loop's cost does not depend on their content
(the reading and augmentation of real files is measured by ``benchmarks/data_loading.py``).

    python benchmarks/train_speed.py                                   # resnet18, 160 px, batch 32
    python benchmarks/train_speed.py --backbone efficientnet_lite0 --size 224 --threads 1

The last line says whether the goal of issue 19 (medcam <= 1.1x the plain loop) is met.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from medcam.engine import Callback

#: issue 19: ``medcam train`` epoch time at most this many times the plain loop's
GOAL = 1.1


class TensorItems(Dataset):
    """``images (N, C, H, W)`` and ``labels (N,)`` served as medcam items ``{"image", "label"}``."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {"image": self.images[i], "label": self.labels[i]}


def plain_epoch(model: torch.nn.Module, optimizer: torch.optim.Optimizer, schedule: Any, images: torch.Tensor,
                labels: torch.Tensor, batch_size: int) -> float:
    """One epoch of the plain loop (drop_last, as the engine's sampler); its wall seconds."""
    began = time.perf_counter()
    model.train()
    order = torch.randperm(len(labels))
    for start in range(0, len(order) - batch_size + 1, batch_size):
        idx = order[start:start + batch_size]
        loss = F.cross_entropy(model(images[idx]).logits, labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return time.perf_counter() - began


class Interleave(Callback):
    """After each engine epoch, one plain-loop epoch; records both sides' wall seconds."""

    def __init__(self, run_plain: Any):
        self.run_plain = run_plain
        self.plain_s: list[float] = []
        self.medcam_s: list[float] = []

    def on_epoch_end(self, trainer: Any, epoch: int, record: Any) -> None:
        self.medcam_s.append(float(record["time_s"]))
        self.plain_s.append(self.run_plain())
        print(f"epoch {epoch + 1}{' (warm-up)' if not epoch else ''}: medcam {self.medcam_s[-1]:.2f} s, "
              f"plain {self.plain_s[-1]:.2f} s", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backbone", default="resnet18", help="a registered backbone (pretrained=False)")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--images", type=int, default=256, help="training images per epoch")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4, help="timed epochs per side (after one warm-up epoch)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: PyTorch's choice)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import medcam
    from medcam.engine import Trainer

    torch.manual_seed(0)
    spec = {"backbone": {"name": args.backbone, "pretrained": False}, "num_classes": 3,
            "preprocess": {"size": [args.size, args.size]}}
    base = medcam.build_model(spec)
    images = torch.rand(args.images, 3, args.size, args.size, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(args.images) % 3
    settings = {"epochs": args.epochs + 1, "batch_size": args.batch, "optimizer": "adamw", "lr": 1e-3,
                "weight_decay": 1e-4, "scheduler": "cosine", "balanced_sampler": False, "progress": False,
                "device": "cpu", "num_workers": 0}
    plain_model = copy.deepcopy(base)
    optimizer = torch.optim.AdamW(plain_model.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = (args.epochs + 1) * (args.images // args.batch)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=1e-3, total_steps=steps)
    timing = Interleave(lambda: plain_epoch(plain_model, optimizer, schedule, images, labels, args.batch))
    Trainer(copy.deepcopy(base), settings, callbacks=[timing]).fit(TensorItems(images, labels))
    plain_s, medcam_s = timing.plain_s[1:], timing.medcam_s[1:]  # the first epoch of each side is a warm-up
    plain, ours = statistics.median(plain_s), statistics.median(medcam_s)
    ratio = ours / plain
    print(f"{args.backbone}, {args.images} images of {args.size} px, batch {args.batch}, "
          f"{torch.get_num_threads()} thread(s); median of {args.epochs} epochs")
    print(f"{'loop':<10} {'epoch s':>8} {'images/s':>9}")
    for label, seconds in (("plain", plain), ("medcam", ours)):
        print(f"{label:<10} {seconds:>8.2f} {args.images // args.batch * args.batch / seconds:>9.1f}")
    print(f"medcam / plain: {ratio:.3f}x (goal <= {GOAL}x: {'met' if ratio <= GOAL else 'NOT met'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
