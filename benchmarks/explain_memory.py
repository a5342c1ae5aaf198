"""Peak memory of ``medcam explain`` on huge images: a table, the ratio to a small image, and a budget check.

Every image is explained by its own ``python -m medcam explain`` process (the
real command, start-up included); its peak resident memory is the operating
system's account of that process (``os.wait4``, ``ru_maxrss``). The images are
generated PNGs (or JPEGs) that are small on disk and large in pixels, the case
of the issue: a 12000 x 12000 PNG of ~170 KB. The baseline is the same command
on a 256 x 256 image, measured in the same run; the check is that no image
raises the peak by more than ``--budget-mb`` over it, whatever its size (images
over the pixel limit are refused from their header, huge ones are reduced while
they are decoded, pictures are drawn at most ``--render-size`` px per side).

Example (the numbers in docs/guarantees.md)::

    OMP_NUM_THREADS=1 python benchmarks/explain_memory.py --budget-mb 512

Exit status 1 when the budget is exceeded. Everything is written in a temporary folder.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_inputs import default_checkpoint, disc_image  # next to this script

#: (label, height, width, PIL mode, format, extra options) of every case, the baseline first.
CASES = [
    ("baseline 256 px", 256, 256, "L", "PNG", []),
    ("2048 px grey", 2048, 2048, "L", "PNG", []),
    ("4096 px grey (16.8 Mpx)", 4096, 4096, "L", "PNG", []),
    ("4096 px RGB", 4096, 4096, "RGB", "PNG", []),
    ("6000 px grey (36 Mpx)", 6000, 6000, "L", "PNG", []),
    ("6000 px RGB JPEG", 6000, 6000, "RGB", "JPEG", []),
    ("7000 px RGB (49 Mpx)", 7000, 7000, "RGB", "PNG", []),
    ("12000 px grey, default limit", 12000, 12000, "L", "PNG", []),
    ("12000 px grey, --max-pixels 150M", 12000, 12000, "L", "PNG", ["--max-pixels", "150M"]),
]


def peak_of(cmd: list[str]) -> tuple[int, float, float, str]:
    """(exit status, peak resident MB, wall seconds, first line of output) of one process."""
    began = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - began
    return proc.returncode, usage.ru_maxrss / 1024, wall, (out.strip().splitlines() or [""])[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", help="a classifier checkpoint (default: an untrained ResNet-18 at 224 px)")
    parser.add_argument("--budget-mb", type=float, default=512.0,
                        help="allowed peak above the baseline image, in MB")
    parser.add_argument("--render-size", type=int, default=None, help="passed to medcam explain")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="medcam-explain-memory-") as tmp:
        root = Path(tmp)
        checkpoint = args.checkpoint or default_checkpoint(root)
        rows = []
        for label, h, w, mode, fmt, extra in CASES:
            image = disc_image(root / f"{h}x{w}_{mode}.{fmt.lower()}", h, w, mode, fmt)
            cmd = [sys.executable, "-m", "medcam", "explain", checkpoint, str(image), "--out", str(root / "out"),
                   "--quiet", *extra] + (["--render-size", str(args.render_size)] if args.render_size else [])
            code, peak, wall, line = peak_of(cmd)
            result = line.split()[0] if line else f"exit {code}"
            rows.append((label, h * w / 1e6, image.stat().st_size / 1024, result, peak, wall))
            print(f"  measured {label}: {result}, {peak:.0f} MB, {wall:.1f} s", file=sys.stderr, flush=True)

    base = rows[0][4]
    print(f"{'image':<34} {'Mpx':>6} {'file KB':>8} {'result':>6} {'peak MB':>8} {'+ MB':>6} {'wall s':>7}")
    for label, mpx, kb, result, peak, wall in rows:
        print(f"{label:<34} {mpx:>6.1f} {kb:>8.0f} {result:>6} {peak:>8.0f} {peak - base:>6.0f} {wall:>7.1f}")
    worst = max(rows, key=lambda r: r[4])
    print(f"\nratio: largest peak / baseline peak = {worst[4] / base:.2f} ({worst[0]})")
    over = [r for r in rows if r[4] - base > args.budget_mb]
    verdict = "PASS" if not over else "FAIL: " + ", ".join(r[0] for r in over)
    print(f"budget check: every image within {args.budget_mb:.0f} MB of the baseline: {verdict}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
