"""The ``medcam demo`` recipe with another loss: what the lesion-box attention loss changes.

    python benchmarks/demo_ablation.py --data ../shared/data/busi --loss ce --seed 0
    python benchmarks/demo_ablation.py --data ../shared/data/busi --loss ratio --seed 1
    python benchmarks/demo_ablation.py --data ../shared/data/busi --loss energy --seed 0   # the demo itself

Trains the demo model (``medcam.demo``: pretrained Lite0 at 160 px, same split,
schedule and augmentation) with ``--loss``:

* ``energy``: the demo's loss (attention_box, energy mode);
* ``ratio``: attention_box in the seed's coverage mode (``mode: ratio``);
* ``ce``: plain cross-entropy (label smoothing 0.1), no localization signal;

then prints the held-out classification and localization (the demo's
Grad-CAM and kin against the centred-Gaussian floor) and, per
method, the mean share of a map's pixels above half its maximum on the
held-out lesion images (how compact the maps are). The numbers next to the
demo in docs/results.md come from this script.
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

LOSSES = ("energy", "ratio", "ce")


def demo_spec(loss: str) -> dict[str, Any]:
    """The demo's model spec with the loss ``loss`` (one of :data:`LOSSES`)."""
    from medcam.demo import DEMO_SPEC
    from medcam.spec import resolve_model_spec

    spec = copy.deepcopy(resolve_model_spec(DEMO_SPEC))
    if loss == "ce":
        spec["loss"] = [{"name": "ce", "label_smoothing": 0.1}]
    else:
        spec["loss"][0]["mode"] = loss
    return spec


def map_area(model: Any, test_set: Any, methods: tuple[str, ...]) -> dict[str, float]:
    """Mean share of pixels above half the map's maximum, per method, over the lesion images."""
    from medcam.bench.localize import compute_maps, load_heldout

    held = load_heldout(test_set)
    idx = held.lesion
    out = {}
    for method in methods:
        maps, _ = compute_maps(model, {"name": method}, held.images[idx], held.labels[idx], batch_size=16)
        out[method] = float((maps > 0.5).float().mean())
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="BUSI-layout folder (class folders with lesion masks)")
    parser.add_argument("--loss", choices=LOSSES, default="energy", help="training loss (default: the demo's)")
    parser.add_argument("--seed", type=int, default=0, help="training seed")
    parser.add_argument("--out", help="run folder (default: a temporary folder)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)

    from medcam import demo
    from medcam.engine.runs import DataConfig, train_on_folder
    from medcam.errors import MedcamError

    with tempfile.TemporaryDirectory() as scratch:
        out = Path(args.out or scratch)
        data = DataConfig(path=args.data, cache_dir=str(out / "cache"), **demo.DEMO_DATA)
        evaluations = {**demo.held_out_evaluations(),
                       "map_area": lambda model, test_set: map_area(model, test_set, demo.DEMO_METHODS)}
        try:
            result = train_on_folder(demo_spec(args.loss), data, {**demo.DEMO_TRAIN, "seed": args.seed,
                                                                  "progress": False},
                                     out / f"{args.loss}_seed{args.seed}", test_evaluations=evaluations)
        except (MedcamError, FileNotFoundError) as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    if args.json:
        print(json.dumps({"loss": args.loss, "seed": args.seed, "test": result["test"],
                          "extra": result["test_extra"]}, indent=2))
        return 0
    from medcam.bench.localize import format_localization
    from medcam.engine.logs import format_metrics

    print(f"loss {args.loss}, seed {args.seed}, best epoch {result['best_epoch']}; held-out test set:")
    print(format_metrics(result["test"]))
    print(format_localization(result["test_extra"]["localization"]))
    area = result["test_extra"]["map_area"]
    print("share of map pixels above half the maximum: "
          + ", ".join(f"{k} {100 * v:.1f} %" for k, v in area.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
