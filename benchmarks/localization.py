"""The localization benchmark: models x attribution methods x baselines on held-out lesion masks.

    python benchmarks/localization.py --data ../shared/data/busi --out results/
    python benchmarks/localization.py --data ../shared/data/busi --out results_full/ --full
    python benchmarks/localization.py --data ../shared/data/busi --out results/ --size 224 --epochs 30

Trains every model of the spec (``benchmarks/specs/busi_cpu.yaml`` by default,
``busi_full.yaml`` with ``--full``) from scratch on one stratified split grouped
by near-duplicates, then scores every registered attribution method (and the
FPM readout of WSOL models) and the centre-box / centre-Gaussian / random-map
baselines on the held-out images that have a lesion mask. Writes
``localization.md``, ``localization.json``, ``localization_bars.png``,
``localization_gallery.png`` and ``heldout_test.txt`` into ``--out``; the
numbers in ``docs/results.md`` come from this script. Same as ``medcam bench SPEC ...``.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

SPECS = Path(__file__).resolve().parent / "specs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="BUSI-layout data folder (class folders with lesion masks)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--spec", help=f"benchmark spec (default {SPECS / 'busi_cpu.yaml'})")
    parser.add_argument("--full", action="store_true", help=f"use {SPECS / 'busi_full.yaml'} (224 px, more "
                                                            f"epochs, Score-CAM, VMamba WSOL)")
    parser.add_argument("--checkpoints", help="folder of earlier runs (<key>/last.pt or best.pt) to load instead of "
                                                  "training, e.g. OUT/models of an earlier run")
    parser.add_argument("--overwrite", action="store_true", help="retrain models already trained in OUT/models")
    parser.add_argument("--models", help="comma-separated model keys (default: all)")
    parser.add_argument("--size", type=int, help="input size of every trained model")
    parser.add_argument("--epochs", type=int, help="training epochs of every model")
    parser.add_argument("--threads", type=int, help="torch CPU threads")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    if args.spec and args.full:
        parser.error("--spec and --full are exclusive")
    spec = args.spec or str(SPECS / ("busi_full.yaml" if args.full else "busi_cpu.yaml"))

    from medcam.bench.report import markdown_table
    from medcam.bench.run import run_benchmark
    from medcam.errors import MedcamError

    keys = [k.strip() for k in args.models.split(",") if k.strip()] if args.models else None
    command = "python benchmarks/localization.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    try:
        record = run_benchmark(spec, args.data, args.out, checkpoints=args.checkpoints, overwrite=args.overwrite,
                               models=keys, size=args.size, epochs=args.epochs, threads=args.threads,
                               progress=not args.quiet, command=command)
    except (MedcamError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(markdown_table(record["rows"]))
    print(f"report: {Path(args.out) / 'localization.md'}  (wall time {record['wall_time_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
