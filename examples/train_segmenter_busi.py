"""Train a segmenter on the BUSI lesion masks for a few minutes (CPU) and report held-out Dice.

    python examples/train_segmenter_busi.py --data ../shared/data/busi

Builds any registered segmenter (default: ``unet`` on the ``tiny_cnn`` backbone,
greyscale 128 x 128), splits BUSI into train / val / test (stratified by class,
grouped by near-duplicate clusters so copies of one scan never straddle the
split), trains with BCE + soft Dice under a time budget, keeps the weights of
the best validation epoch, and prints Dice and IoU on the held-out test images
next to the trivial all-background and all-foreground predictions.

Data: Al-Dhabyani et al., Dataset of breast ultrasound images, Data in Brief 28 (2020) 104863.
"""
from __future__ import annotations

import argparse
import copy
import json
import time
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm.auto import tqdm

import medcam
from medcam.data.base import MedcamDataset
from medcam.data.busi import BUSI
from medcam.data.transforms import Augment
from medcam.metrics import dice, mask_iou


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="BUSI folder (benign/, malignant/, normal/ with masks)")
    p.add_argument("--segmenter", default="unet", help="segmenter name (medcam list segmenters)")
    p.add_argument("--encoder", default="tiny_cnn", help="backbone for unet/unet++/fpn/deeplabv3+ (JSON spec allowed)")
    p.add_argument("--size", type=int, default=128, help="square input size in pixels")
    p.add_argument("--epochs", type=int, default=12, help="training epochs (the run is deterministic per seed)")
    p.add_argument("--minutes", type=float, default=None, help="optional time budget: stop after the epoch that "
                   "exceeds it (then the result depends on the machine's speed)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--augment", default="light", help="augmentation preset (none, flip, light, default)")
    p.add_argument("--val", type=float, default=0.15, help="validation fraction")
    p.add_argument("--test", type=float, default=0.15, help="held-out test fraction")
    p.add_argument("--threshold", type=float, default=0.5, help="foreground if sigmoid(logit) > threshold")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--json", action="store_true", help="also print the results as JSON")
    p.add_argument("--save", help="write the best segmenter to this checkpoint file (medcam.save), e.g. for "
                   "medcam explain/app --segmenter")
    return p.parse_args()


def segmenter_spec(args: argparse.Namespace) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": args.segmenter, "in_chans": 1, "num_classes": 1,
                            "preprocess": {"size": [args.size, args.size], "resize": "square"}}
    if args.segmenter in ("unet", "unet++", "fpn", "deeplabv3+"):
        spec["encoder"] = json.loads(args.encoder) if args.encoder.lstrip().startswith("{") else args.encoder
    return spec


def load_split(data: MedcamDataset, indices: list[int], what: str) -> tuple[Tensor, Tensor, Tensor]:
    """Decode and resize a split once: images ``(N, 1, S, S)`` in [0, 1], masks ``(N, S, S)`` bool, labels ``(N,)``."""
    view = data.subset(indices, augment=None)
    items = [view[i] for i in tqdm(range(len(view)), desc=f"loading {what}", unit="img", leave=False)]
    return (torch.stack([it["image"] for it in items]), torch.stack([it["mask"] for it in items]),
            torch.tensor([it["label"] for it in items]))


def augment_batch(augment: Augment | None, images: Tensor, masks: Tensor, generator: torch.Generator
                  ) -> tuple[Tensor, Tensor]:
    """Apply one random draw of ``augment`` per sample (images ``(B, 1, H, W)``, masks ``(B, H, W)``)."""
    if augment is None:
        return images, masks
    out_i, out_m = [], []
    for image, mask in zip(images, masks):
        sample = augment({"image": image, "mask": mask, "boxes": torch.zeros(0, 4)}, generator=generator)
        out_i.append(sample["image"])
        out_m.append(sample["mask"])
    return torch.stack(out_i), torch.stack(out_m)


def loss_fn(logits: Tensor, masks: Tensor) -> Tensor:
    """Binary cross-entropy + soft Dice (Milletari et al. 2016) over the batch; logits ``(B, 1, H, W)``."""
    target = masks[:, None].float()
    bce = F.binary_cross_entropy_with_logits(logits, target)
    prob = torch.sigmoid(logits)
    soft_dice = (2 * (prob * target).sum() + 1) / (prob.sum() + target.sum() + 1)
    return bce + (1 - soft_dice)


@torch.no_grad()
def predict(seg: Any, images: Tensor, threshold: float, batch_size: int = 32) -> Tensor:
    seg.eval()
    return torch.cat([seg.predict_mask(images[i:i + batch_size], threshold=threshold)
                      for i in range(0, len(images), batch_size)])


def scores(pred: Tensor, target: Tensor) -> dict[str, float]:
    """Dice and IoU of predicted vs true masks ``(N, H, W)`` bool.

    ``*_pooled``: over all pixels of the split at once (the ``N`` masks stacked into one
    ``(N * H, W)`` canvas), defined even when most images have no lesion;
    ``dice_lesion_images``: mean per-image Dice over the images with a lesion;
    ``dice_all_images``: mean per-image Dice over all images, an image with neither a
    true nor a predicted lesion scoring 1.
    """
    lesion = target.flatten(1).any(1)
    w = target.shape[-1]
    return {"dice_pooled": float(dice(pred.reshape(-1, w), target.reshape(-1, w))),
            "iou_pooled": float(mask_iou(pred.reshape(-1, w), target.reshape(-1, w))),
            "dice_lesion_images": float(dice(pred[lesion], target[lesion], reduction="mean")),
            "dice_all_images": float(dice(pred, target, empty=1.0, reduction="mean"))}


def main() -> None:
    args = parse_args()
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)
    seg = medcam.build_segmenter(segmenter_spec(args))
    params = sum(p.numel() for p in seg.parameters())
    data = BUSI(args.data, preprocess=seg.spec, groups="near_duplicates")
    parts = data.splits(val=args.val, test=args.test, seed=args.seed)
    print(f"{data}\nsplit (grouped by near-duplicates): " + ", ".join(f"{k} {len(v)}" for k, v in parts.items()))
    train_x, train_y, _ = load_split(data, parts["train"], "train")
    val_x, val_y, _ = load_split(data, parts["val"], "val")
    test_x, test_y, test_labels = load_split(data, parts["test"], "test")
    augment = Augment.from_config(None if args.augment == "none" else args.augment)

    optimizer = torch.optim.AdamW(seg.parameters(), lr=args.lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(args.seed)
    budget, start = (args.minutes or float("inf")) * 60, time.time()
    best: tuple[float, int, dict[str, Tensor]] = (-1.0, -1, {})
    epoch = 0
    print(f"training {args.segmenter} ({params / 1e6:.2f}M parameters) on {len(train_x)} images for "
          f"{args.epochs} epochs" + (f" or {args.minutes:g} min" if args.minutes else ""))
    while epoch < args.epochs and time.time() - start < budget:
        seg.train()
        order = torch.randperm(len(train_x), generator=generator)
        batches = [order[i:i + args.batch_size] for i in range(0, len(order), args.batch_size)]
        batches = [b for b in batches if len(b) > 1]  # BatchNorm needs more than one sample
        total = 0.0
        for idx in tqdm(batches, desc=f"epoch {epoch + 1}", unit="batch", leave=False):
            images, masks = augment_batch(augment, train_x[idx], train_y[idx], generator)
            loss = loss_fn(seg(images), masks)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
        epoch += 1
        val = scores(predict(seg, val_x, args.threshold), val_y)
        print(f"epoch {epoch:3d}  {time.time() - start:6.0f}s  train loss {total / len(train_x):.4f}  "
              f"val Dice (pooled) {val['dice_pooled']:.4f}")
        if val["dice_pooled"] > best[0]:
            best = (val["dice_pooled"], epoch, copy.deepcopy(seg.state_dict()))
    seg.load_state_dict(best[2])

    pred = predict(seg, test_x, args.threshold)
    results = {
        "segmenter": seg.spec["segmenter"], "input": [1, args.size, args.size], "parameters": params,
        "epochs": epoch, "best_epoch": best[1], "train_seconds": round(time.time() - start),
        "test_images": len(test_x), "test_images_with_lesion": int(test_y.flatten(1).any(1).sum()),
        "model": scores(pred, test_y),
        "all_background": scores(torch.zeros_like(test_y), test_y),
        "all_foreground": scores(torch.ones_like(test_y), test_y),
        "model_dice_by_class": {name: float(dice(pred[test_labels == k], test_y[test_labels == k], empty=1.0,
                                                 reduction="mean"))
                                for k, name in enumerate(data.class_names) if (test_labels == k).any()},
    }
    print(f"\nheld-out test set: {results['test_images']} images ({results['test_images_with_lesion']} with a "
          f"lesion); best val epoch {best[1]} of {epoch}")
    print(f"{'prediction':<16}{'Dice (pooled)':>14}{'IoU (pooled)':>14}{'Dice (lesion images)':>22}"
          f"{'Dice (all images)':>19}")
    for name in ("model", "all_background", "all_foreground"):
        r = results[name]
        print(f"{name:<16}{r['dice_pooled']:>14.4f}{r['iou_pooled']:>14.4f}{r['dice_lesion_images']:>22.4f}"
              f"{r['dice_all_images']:>19.4f}")
    by_class = ", ".join(f"{k} {v:.4f}" for k, v in results["model_dice_by_class"].items())
    print(f"model, mean per-image Dice by class (an image with no true and no predicted lesion scores 1): {by_class}")
    if args.json:
        print(json.dumps(results, indent=2))
    if args.save:
        print(f"saved {medcam.save(seg, args.save, data='busi', test_scores=results['model'])}")


if __name__ == "__main__":
    main()
