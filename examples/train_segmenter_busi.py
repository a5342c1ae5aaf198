"""Train a lesion segmenter on BUSI and report held-out Dice: ``medcam train`` + ``medcam eval`` from Python.

    python examples/train_segmenter_busi.py --data ../shared/data/busi --out runs/unet_busi

does what these two commands do (docs/segmentation.md, "Training a segmenter"):

    medcam train examples/unet_spec.yaml --data ../shared/data/busi --groups near_duplicates \\
        --augment light --out runs/unet_busi
    medcam eval runs/unet_busi/best.pt --data ../shared/data/busi

The spec (default ``examples/unet_spec.yaml``: U-Net on ``tiny_cnn``, greyscale
64 x 64, Dice + BCE) trains on a train / val / test split stratified by class
and grouped by near-duplicate clusters; the best validation epoch (by pooled
Dice) is scored on the held-out test images.

Data: Al-Dhabyani et al., Dataset of breast ultrasound images, Data in Brief 28 (2020) 104863.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from medcam.engine.logs import format_metrics
from medcam.engine.runs import DataConfig, evaluate_checkpoint, train_on_folder

SPEC = Path(__file__).with_name("unet_spec.yaml")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", required=True, help="BUSI folder (benign/, malignant/, normal/ with masks)")
    p.add_argument("--spec", default=str(SPEC), help="segmenter spec (name, YAML/JSON file)")
    p.add_argument("--out", default="runs/unet_busi", help="output folder (checkpoints, metrics.jsonl, summary)")
    p.add_argument("--epochs", type=int, help="override the spec's epochs")
    p.add_argument("--json", action="store_true", help="print the held-out scores as JSON")
    args = p.parse_args()
    data = DataConfig(args.data, dataset="busi", groups="near_duplicates", augment="light")
    train_on_folder(args.spec, data, {"epochs": args.epochs} if args.epochs else {}, args.out)
    result = evaluate_checkpoint(Path(args.out) / "best.pt", DataConfig(args.data), progress=False)
    print(json.dumps(result, indent=2) if args.json else
          f"held-out {result['split']} ({result['n']} images):\n{format_metrics(result['metrics'])}")


if __name__ == "__main__":
    main()
