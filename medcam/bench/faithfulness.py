"""Faithfulness and sanity of attribution maps on held-out images: the table next to the localization one.

Every metric is a registered :class:`~medcam.faithfulness.base.AttributionMetric`
(``medcam list metrics``). For one model, each method's maps of the first
``images`` held-out lesion images (ground-truth class, min-max normalized, as
the localization table uses) are scored by every metric, and the per-image
values are averaged (NaN values, e.g. a pointing game without a region, are
skipped). Model-free baseline maps can be scored under the same model: they are
the floor a method must beat (a random map's deletion AUC, a centred blob's
pointing game).

::

    from medcam.bench.faithfulness import faithfulness_summary, format_faithfulness
    summary = faithfulness_summary(model, dataset, methods=["gradcam", "layercam"])
    print(format_faithfulness(summary))
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT_METRICS", "FAITHFULNESS_DEFAULTS", "resolve_metrics", "metric_columns", "score_faithfulness",
           "faithfulness_summary", "faithfulness_of", "format_faithfulness", "faithfulness_markdown", "setup",
           "score_model",
           "faithfulness_rows", "markdown_section"]

#: The metrics of the benchmark table (and of :func:`faithfulness_summary`) unless a spec says otherwise.
DEFAULT_METRICS: tuple[Any, ...] = (
    {"name": "deletion", "steps": 25},
    {"name": "insertion", "steps": 25},
    {"name": "road", "fractions": [0.2, 0.4, 0.6, 0.8]},
    "average_drop",
    "increase_in_confidence",
    "pointing_game",
    "energy_pointing_game",
    {"name": "model_randomization", "stages": 4},
)
#: The ``faithfulness`` section of a benchmark spec and its defaults.
FAITHFULNESS_DEFAULTS: dict[str, Any] = {
    "metrics": list(DEFAULT_METRICS),   # names or part specs (medcam list metrics); [] switches the table off
    "images": 24,                       # the first N held-out lesion images (the perturbation metrics are costly)
    "baselines": True,                  # also score the model-free baselines' maps under each model
}
#: Values beyond a metric's score that get their own column.
EXTRA_COLUMNS: dict[str, tuple[str, ...]] = {"model_randomization": ("ssim",)}


def resolve_metrics(metrics: Sequence[Any]) -> list[tuple[str, dict[str, Any]]]:
    """``(label, resolved part)`` of each metric; the label shows parameters that differ from the defaults."""
    from medcam.spec import resolve_part

    from .localize import method_label

    out, seen = [], set()
    for i, raw in enumerate(metrics):
        part = resolve_part("metrics", raw, f"faithfulness.metrics[{i}]")
        label = method_label(part, resolve_part("metrics", part["name"], "metric"))
        if label in seen:
            from medcam.errors import SpecError

            raise SpecError(f"faithfulness.metrics[{i}]: '{label}' is listed twice")
        seen.add(label)
        out.append((label, part))
    return out


def metric_columns(metrics: Sequence[tuple[str, Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """Table columns: ``{"key", "metric", "value", "title", "higher_is_better", "needs"}`` per reported value."""
    from medcam.registry import metrics as registry

    columns = []
    for label, part in metrics:
        info = registry.info(part["name"])
        arrow = "↑" if info.get("higher_is_better") else "↓"
        unit = f" {info['unit']}" if info.get("unit") in ("AUC", "%") else ""
        columns.append({"key": label, "metric": label, "value": None, "title": f"{label}{unit} {arrow}",
                        "higher_is_better": bool(info.get("higher_is_better")), "needs": list(info["needs"])})
        for extra in EXTRA_COLUMNS.get(part["name"], ()):
            columns.append({"key": f"{label}.{extra}", "metric": label, "value": extra,
                            "title": f"{label} {extra} {arrow}", "higher_is_better": bool(info.get("higher_is_better")),
                            "needs": list(info["needs"])})
    return columns


def _mean(values: Tensor) -> float | None:
    finite = values[~torch.isnan(values)]
    return float(finite.double().mean()) if finite.numel() else None


def score_faithfulness(model: nn.Module, images: Tensor, maps: Tensor, targets: Tensor, regions: Tensor | None,
                       metrics: Sequence[tuple[str, Mapping[str, Any]]], *, method: Any = None, batch_size: int = 16,
                       progress: Callable[[int], None] | None = None) -> dict[str, float | None]:
    """Mean of every metric's values over ``images`` ``(N, C, H, W)`` and their ``maps`` ``(N, H, W)``.

    Metrics that need a method are skipped (``None``) when ``method`` is None (baselines),
    and those that need regions when ``regions`` is None. Images go through the
    metrics ``batch_size`` at a time (moved to the model's device).

    Returns:
        ``{column key: mean}`` for the columns of :func:`metric_columns`.
    """
    from medcam.build import build_metric

    device = next(model.parameters()).device
    sums: dict[str, list[Tensor]] = {}
    built = [(label, build_metric(dict(part))) for label, part in metrics]
    for start in range(0, images.shape[0], batch_size):
        x = images[start:start + batch_size].to(device)
        m = maps[start:start + batch_size].to(device)
        t = targets[start:start + batch_size].to(device)
        r = None if regions is None else regions[start:start + batch_size].to(device)
        for label, metric in built:
            if ("method" in metric.needs and method is None) or ("regions" in metric.needs and r is None):
                continue
            result = metric.run(model, x, m, t, method=method, regions=r)
            keys = [(label, next(iter(result.values)))]
            keys += [(f"{label}.{extra}", extra) for extra in EXTRA_COLUMNS.get(metric.spec["name"], ())]
            for key, value in keys:
                sums.setdefault(key, []).append(result.values[value])
        if progress is not None:
            progress(x.shape[0])
    out: dict[str, float | None] = {}
    for column in metric_columns(metrics):
        values = sums.get(column["key"])
        out[column["key"]] = _mean(torch.cat(values)) if values else None
    return out


def faithfulness_summary(model: nn.Module, dataset: Any, *, methods: Sequence[Any] = ("gradcam",),
                         metrics: Sequence[Any] = DEFAULT_METRICS, images: int | None = None, batch_size: int = 16,
                         random_baseline: bool = True, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """Score attribution methods of ``model`` on ``dataset``'s lesion images with faithfulness metrics.

    Maps are computed for each image's ground-truth class (as :func:`~medcam.bench.localize.localization_summary`);
    lesion masks (or, for box-only data, the boxes) are the pointing games' regions. ``random_baseline``
    adds the benchmark's ``random_map`` baseline (uniform noise on an 8 x 8 lattice) as a
    floor row.

    Args:
        model: a medcam model.
        dataset: items with ``image``, ``label`` and ``mask`` or ``boxes`` (BUSI, NIH, ... layouts), no augmentation.
        methods: attribution names or part specs.
        metrics: metric names or part specs (``medcam list metrics``).
        images: score only the first N lesion images (None: all).
        batch_size: images per attribution and metric call.
        seed: seed of the random baseline.

    Returns:
        ``{"methods", "metrics", "columns", "n_images", "rows": {label: {column key: mean}}}``.
    """
    from .localize import _resolve, load_heldout, method_label

    parts = [_resolve(m) for m in methods]
    labels = [method_label(p, _resolve(p["name"])) for p in parts]
    held = load_heldout(dataset, batch_size=batch_size, progress=progress, desc="faithfulness")
    idx = held.lesion if images is None else held.lesion[:images]
    return faithfulness_of(model, held.images[idx], held.labels[idx], held.regions(idx),
                           [Path(held.paths[i]).name for i in idx], list(zip(labels, parts, [None] * len(parts))),
                           metrics=metrics, batch_size=batch_size, random_baseline=random_baseline, seed=seed)


def faithfulness_of(model: nn.Module, images: Tensor, targets: Tensor, regions: Tensor | None, keys: Sequence[str],
                    methods: Sequence[tuple[str, Mapping[str, Any], Tensor | None]], *,
                    metrics: Sequence[Any] = DEFAULT_METRICS, batch_size: int = 16, random_baseline: bool = True,
                    seed: int = 0) -> dict[str, Any]:
    """The table of :func:`faithfulness_summary` on given images.

    Args:
        images: ``(N, C, H, W)`` in [0, 1]; targets: ``(N,)`` the class each map explains.
        regions: ``(N, H, W)`` bool lesion regions (pointing games), or None.
        keys: ``N`` image names (seed the random baseline's maps per image).
        methods: ``(label, resolved part, maps (N, H, W) or None)``; None computes the maps.
        metrics, batch_size, random_baseline, seed: as :func:`faithfulness_summary`.
    """
    from . import baselines as B
    from .localize import compute_maps

    resolved = resolve_metrics(metrics)
    columns = metric_columns(resolved)
    out = {"methods": [label for label, _, _ in methods], "metrics": [label for label, _ in resolved],
           "columns": columns, "n_images": int(images.shape[0]), "rows": {}}
    if not images.shape[0]:
        return out
    for label, part, maps in methods:
        if maps is None:
            maps, _ = compute_maps(model, part, images, targets, batch_size=batch_size)
        out["rows"][label] = score_faithfulness(model, images, maps, targets, regions, resolved, method=part,
                                                batch_size=batch_size)
    if random_baseline:
        size = (int(images.shape[-2]), int(images.shape[-1]))
        maps, _ = B.baseline_maps(B.resolve_params({"name": "random_map"}), list(keys), size, seed=seed,
                                  train_boxes=[])
        out["rows"]["random_map"] = score_faithfulness(model, images, maps, targets, regions, resolved,
                                                       batch_size=batch_size)
    return out


def _cell(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def format_faithfulness(summary: Mapping[str, Any]) -> str:
    """The text table of a :func:`faithfulness_summary`."""
    if not summary["n_images"]:
        return "no held-out image has a lesion mask or boxes: nothing to score"
    columns = summary["columns"]
    width = max(len("random map (floor)"), *(len(k) for k in summary["rows"]))
    lines = [f"  {'':<{width}}" + "".join(f"{c['title']:>{max(12, len(c['title']) + 2)}}" for c in columns)]
    for name, row in summary["rows"].items():
        shown = "random map (floor)" if name == "random_map" else name
        lines.append(f"  {shown:<{width}}" + "".join(f"{_cell(row.get(c['key'])):>{max(12, len(c['title']) + 2)}}"
                                                     for c in columns))
    return "\n".join(lines)


def faithfulness_markdown(rows: Sequence[Mapping[str, Any]], columns: Sequence[Mapping[str, Any]]) -> str:
    """Markdown table: one line per (model, method or baseline); the best value of each column in bold.

    ``rows``: ``{"model_label", "method", "kind", "values": {column key: mean}}``.
    """
    head = ["model", "method"] + [c["title"] for c in columns]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---"] * 2 + ["---:"] * len(columns)) + "|"]
    best: dict[str, float] = {}
    for c in columns:
        values = [r["values"].get(c["key"]) for r in rows if r["kind"] == "method"]
        values = [v for v in values if v is not None]
        if values:
            best[c["key"]] = max(values) if c["higher_is_better"] else min(values)
    for r in rows:
        cells = [str(r.get("model_label") or "-"), str(r["method"]) + (" (baseline)" if r["kind"] == "baseline" else "")]
        for c in columns:
            value = r["values"].get(c["key"])
            text = _cell(value)
            if r["kind"] == "method" and value is not None and value == best.get(c["key"]):
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------- the benchmark's table
def setup(spec: Any, test: Any, train_boxes: Sequence[Tensor]) -> dict[str, Any] | None:
    """What every model's faithfulness table reads: the metrics, the first N held-out lesion images
    (``spec.faithfulness.images``) and the baselines' maps of those images; None when switched off."""
    from . import baselines as B

    cfg = spec.faithfulness
    count = min(cfg["images"], len(test.lesion))
    if not cfg["metrics"] or count == 0:
        return None
    metrics = resolve_metrics(cfg["metrics"])
    index = test.lesion[:count]
    maps = {}
    if cfg["baselines"]:
        keys = [Path(test.paths[i]).name for i in index]
        for part in B.usable_baselines(spec.baselines, train_boxes)[0]:
            maps[part["name"]] = B.baseline_maps(part, keys, test.size, seed=spec.seed, train_boxes=train_boxes)[0]
    return {"metrics": metrics, "columns": metric_columns(metrics), "count": count, "index": index,
            "regions": test.regions(index), "baselines": maps}


def score_model(spec: Any, key: str, model: nn.Module, test: Any, table: Mapping[str, Any],
                maps: Mapping[str, Tensor], parts: Mapping[str, Any], progress: bool) -> dict[str, Any]:
    """Faithfulness of every method's maps (the first ``table["count"]`` lesion images, ``maps`` by label)
    and of the baselines' maps under one model; each (model, method) pair is seeded on its own."""
    import sys
    import time

    from tqdm.auto import tqdm

    from medcam.engine.seeding import seed_everything

    from .localize import method_seed

    n = table["count"]
    images, targets = test.images[table["index"]], test.labels[table["index"]]
    rows: dict[str, Any] = {}
    every = [(label, m[:n], parts[label], "method") for label, m in maps.items()]
    every += [(label, m, None, "baseline") for label, m in table["baselines"].items()]
    bar = tqdm(total=len(every) * n, desc=f"{key}: faithfulness", leave=False, disable=not progress, file=sys.stderr)
    for label, m, part, kind in every:
        seed_everything(method_seed(spec.seed, key, label, "faithfulness"))
        began = time.perf_counter()
        values = score_faithfulness(model, images, m, targets, table["regions"], table["metrics"], method=part,
                                    batch_size=spec.eval["batch_size"], progress=bar.update)
        rows[label] = {"kind": kind, "values": values, "time_s": round(time.perf_counter() - began, 1)}
        if progress:
            shown = "  ".join(f"{k} {v:.3f}" for k, v in values.items() if v is not None)
            tqdm.write(f"[{key}] {label:<24} {shown}", file=sys.stderr)
    bar.close()
    return {"n_images": n, "metrics": [label for label, _ in table["metrics"]], "rows": rows}


def faithfulness_rows(record: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per (model, method or baseline) of the faithfulness tables in a benchmark ``record``."""
    rows = []
    for m in record["models"]:
        table = m.get("faithfulness") or {}
        for label, r in (table.get("rows") or {}).items():
            rows.append({"model": m["key"], "model_label": m["label"], "method": label, "kind": r["kind"],
                         "values": r["values"], "time_s": r.get("time_s")})
    return rows


def markdown_section(record: Mapping[str, Any]) -> list[str]:
    """The "Faithfulness and sanity" section of ``localization.md`` (no lines when the table is off)."""
    info = record.get("faithfulness")
    rows = faithfulness_rows(record)
    if not info or not rows:
        return []
    titles = ", ".join(f"`{c['title']}`" for c in info["columns"])
    lines = ["", "## Faithfulness and sanity", "",
             f"The first {info['n_images']} held-out lesion images, the same maps as above (ground-truth class, "
             "min-max normalized); the mean over images of each metric (`medcam list metrics`; "
             "docs/attribution.md). Arrows give the better direction; the best method per column is in bold; "
             "baselines are the model-free maps scored under each model (a floor). Metrics that recompute maps "
             "(model randomisation) do not apply to baselines; a dash is a value that is undefined on every "
             "image (e.g. the rank correlation of constant maps). "
             f"Columns: {titles}; parameters that differ from a metric's defaults are in its name, all of them "
             "are in `localization.json` (`spec.faithfulness`).", ""]
    lines.append(faithfulness_markdown(rows, info["columns"]))
    return lines
