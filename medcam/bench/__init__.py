"""Localization benchmarks: every model x every attribution method x baselines, on held-out lesion masks.

    from medcam.bench import run_benchmark, load_bench_spec
    record = run_benchmark("benchmarks/specs/busi_cpu.yaml", data="../shared/data/busi", out="results/")

Command line: ``medcam bench SPEC --data PATH --out DIR`` or
``python benchmarks/localization.py --data PATH --out DIR``. Specs name models,
methods and baselines by registry name (:mod:`medcam.bench.spec`); the
protocol is in :mod:`medcam.bench.localize`; see ``docs/results.md``.

Attributes are imported lazily, so ``import medcam.bench`` is cheap.
"""
from __future__ import annotations

from medcam._lazy import lazy_attributes

_LAZY = {
    "run_benchmark": "medcam.bench.run",
    "OUTPUT_FILES": "medcam.bench.run",
    "load_bench_spec": "medcam.bench.spec",
    "BenchSpec": "medcam.bench.spec",
    "ModelEntry": "medcam.bench.spec",
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
__all__ = sorted(_LAZY)
