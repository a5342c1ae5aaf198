"""Time data loading: decoding + resizing every epoch versus the one-time resized cache, and the rolling ball.

One run measures, on CPU, one process (``num_workers=0``):

* ``BUSI items/s`` over ``--items`` items of the BUSI folder (``--data``) at
  ``--size``: without a cache (decode + resize per item), on the first cached
  pass (decode + resize + write), and on a second cached pass (read only); the
  ratio is uncached / cached time;
* ``rolling ball``: ``medcam.data.preprocess.subtract_background`` at radius
  ``--radius`` (180 as the dental seed) on random greyscale images (seconds per
  image): ImageJ's shrink (the default, factor 8 at radius 180) on the
  ``--ball-sizes`` (H W pairs), and the exact full-size ball (``shrink=1``) on
  the ``--exact-sizes``.

Example (the numbers in docs/data.md)::

    OMP_NUM_THREADS=1 python benchmarks/data_loading.py --data ../shared/data/busi --items 200 --size 224

Nothing is written outside a temporary folder.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import numpy as np


def _time_items(ds, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) to load items 0..n-1."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        ds[i]
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/busi", help="a BUSI-layout folder")
    parser.add_argument("--items", type=int, default=200)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--radius", type=int, default=180)
    parser.add_argument("--ball-sizes", type=int, nargs="+", default=[256, 256, 1024, 1024, 1500, 3000],
                        help="H W pairs for the default (shrunk) rolling ball")
    parser.add_argument("--exact-sizes", type=int, nargs="*", default=[256, 256],
                        help="H W pairs for the exact ball (slow: ~area x radius^2)")
    parser.add_argument("--repeats", type=int, default=1, help="rolling-ball repeats per size (median)")
    args = parser.parse_args()

    from medcam.data import build_dataset
    from medcam.data.preprocess import imagej_shrink, subtract_background

    pre = {"size": args.size}
    plain = build_dataset("busi", args.data, preprocess=pre, check="none")
    n = min(args.items, len(plain))
    _time_items(plain, 2)  # warm-up
    t_plain = _time_items(plain, n)
    with tempfile.TemporaryDirectory() as cache:
        cached = build_dataset("busi", args.data, preprocess=pre, check="none", cache_dir=cache)
        t_fill = _time_items(cached, n)
        t_hit = _time_items(cached, n)
    print(f"BUSI, {n} items at {args.size}x{args.size} (image + mask + boxes), one process")
    print("(CPU s: this process's CPU time, which other load on the machine barely changes)")
    print(f"{'pass':<28}{'wall s':>9}{'CPU s':>9}{'ms/item (CPU)':>15}")
    for name, (wall, cpu) in (("no cache", t_plain), ("cache, first pass (fill)", t_fill),
                              ("cache, later passes", t_hit)):
        print(f"{name:<28}{wall:>9.2f}{cpu:>9.2f}{1000 * cpu / n:>15.1f}")
    print(f"CPU time of later cached passes / uncached: {t_hit[1] / t_plain[1]:.2f}")
    print()
    print(f"rolling ball, radius {args.radius} (skimage.restoration.rolling_ball)")
    print(f"{'image (HxW)':<14}{'mode':<22}{'CPU s / image':>14}")
    rng = np.random.default_rng(0)
    runs = [(sz, None) for sz in zip(args.ball_sizes[::2], args.ball_sizes[1::2])]
    runs += [(sz, 1) for sz in zip(args.exact_sizes[::2], args.exact_sizes[1::2])]
    for (h, w), shrink in runs:
        grey = rng.random((h, w)).astype(np.float32)
        times = []
        for _ in range(args.repeats):
            start = time.process_time()
            subtract_background(grey, args.radius, shrink=shrink)
            times.append(time.process_time() - start)
        mode = "exact (shrink=1)" if shrink == 1 else f"ImageJ shrink {imagej_shrink(args.radius)}"
        print(f"{f'{h}x{w}':<14}{mode:<22}{statistics.median(times):>14.2f}")

if __name__ == "__main__":
    main()
