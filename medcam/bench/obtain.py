"""A benchmark's models: train each one or find its checkpoint (:func:`obtain_model`).

A model's spec gets the benchmark's input size and, with ``init_from``, starts its backbone
from an earlier model's checkpoint; a checkpoint found in ``--checkpoints`` is used only
after checking that it was trained with the same model spec, training settings and split.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any, Mapping

from tqdm.auto import tqdm

from medcam.errors import CheckpointError

from .spec import BenchSpec, ModelEntry

__all__ = ["obtain_model", "compact", "log"]


def log(text: str, progress: bool) -> None:
    """Print ``text`` above the progress bars (to stderr) when ``progress`` is on."""
    if progress:
        tqdm.write(text, file=sys.stderr)


def _model_source(entry: ModelEntry, size: int | None) -> Any:
    """The entry's model spec with the benchmark's input size."""
    from medcam.spec import deep_merge, load_spec

    raw = load_spec(entry.spec)
    if size is not None:
        raw = deep_merge(raw, {"preprocess": {"size": [size, size]}})
    return raw


def _with_backbone_from(source: Any, checkpoint: Path) -> Any:
    """``source`` whose backbone starts from ``checkpoint`` (``init_from``).

    The checkpoint's weights replace any ``pretrained: true`` of the spec (a preset's ImageNet start):
    a backbone takes one weight source, and the earlier model was itself trained from that start.
    """
    from medcam.engine.runs import provisional_spec
    from medcam.spec import deep_merge
    from medcam.state_dict import start_from_checkpoint

    backbone = provisional_spec(source).get("backbone")
    return deep_merge(source, {"backbone": start_from_checkpoint(backbone, checkpoint)})


def _train_settings(spec: BenchSpec, entry: ModelEntry, source: Any, progress: bool) -> dict[str, Any]:
    """The model's own ``train`` settings (a preset's), then the benchmark's, then the entry's."""
    from medcam.engine.config import TrainConfig
    from medcam.engine.runs import provisional_spec

    own = provisional_spec(source).get("train") or {}
    merged = {"seed": spec.seed, **own, **spec.train, **entry.train, "progress": progress}
    return TrainConfig.from_dict(merged).to_dict()


def _check_checkpoint(path: Path, source: Any, settings: Mapping[str, Any], data_cfg: Any) -> None:
    """Refuse a checkpoint trained with another model spec, other training settings or another split."""
    from medcam.checkpoint import read_checkpoint, without_weight_sources
    from medcam.engine.config import TrainConfig
    from medcam.engine.runs import fit_spec_to_data, open_dataset

    ckpt = read_checkpoint(path)
    full = open_dataset(data_cfg, ckpt.spec)
    wanted = without_weight_sources(fit_spec_to_data(source, full))
    if wanted != without_weight_sources(ckpt.spec):
        diff = sorted(k for k in set(wanted) | set(ckpt.spec) if wanted.get(k) != ckpt.spec.get(k))
        raise CheckpointError(f"{path} was trained with another model spec (differs in: {', '.join(diff)}); "
                              f"retrain it (leave out --checkpoints) or point to the matching checkpoint")
    saved = ckpt.metadata.get("config")
    if saved is not None:
        diffs = TrainConfig.from_dict(settings).differences(TrainConfig.from_dict(saved),
                                                            ignore=("progress", "num_workers", "device",
                                                                    "eval_batch_size"))
        if diffs:
            raise CheckpointError(f"{path} was trained with other settings ({'; '.join(diffs)}); retrain it or "
                                  f"use the benchmark's settings")
    info = ckpt.metadata.get("data") or {}
    for key in ("val", "test", "split_seed", "groups", "augment"):
        if key in info and info[key] != getattr(data_cfg, key):
            raise CheckpointError(f"{path} was trained on another split or augmentation (data.{key}: "
                                  f"{info[key]!r}, the benchmark uses {getattr(data_cfg, key)!r})")


def obtain_model(spec: BenchSpec, entry: ModelEntry, data_cfg: Any, out: Path, checkpoints: Path | None,
            overwrite: bool, progress: bool, obtained: Mapping[str, Path]) -> dict[str, Any]:
    """Train the model of ``entry`` or find its checkpoint; returns ``{"path", "trained", "train_time_s", "settings", ...}``.

    ``obtained``: checkpoint of every earlier model by key (for ``init_from``).
    """
    which = spec.eval["checkpoint"]
    if entry.checkpoint is not None:
        path = Path(entry.checkpoint)
        if not path.is_file():
            raise FileNotFoundError(f"models.{entry.key}.checkpoint: '{path}' does not exist")
        return {"path": path, "trained": False, "train_time_s": None, "settings": None, "source": None}
    source = _model_source(entry, spec.size)
    if entry.init_from is not None:
        source = _with_backbone_from(source, obtained[entry.init_from])
    settings = _train_settings(spec, entry, source, progress)
    if checkpoints is not None:
        path = checkpoints / entry.key / f"{which}.pt"
        if path.is_file():
            _check_checkpoint(path, source, settings, data_cfg)
            return {"path": path, "trained": False, "train_time_s": None, "settings": settings, "source": source}
    from medcam.engine.runs import train_on_folder

    run_dir = out / "models" / entry.key
    if (run_dir / "last.pt").exists() or (run_dir / "best.pt").exists():
        if not overwrite:
            raise CheckpointError(f"{run_dir} already holds a training run; pass --checkpoints {out / 'models'} to "
                                  f"reuse it or --overwrite to retrain")
        for name in ("last.pt", "best.pt"):
            (run_dir / name).unlink(missing_ok=True)
    log(f"[{entry.key}] training ({settings['epochs']} epochs)", progress)
    began = time.perf_counter()
    result = train_on_folder(source, data_cfg, settings, run_dir)
    return {"path": run_dir / f"{which}.pt", "trained": True, "train_time_s": round(time.perf_counter() - began, 1),
            "settings": settings, "source": source, "best_epoch": result.get("best_epoch"),
            "val": compact(result.get("val"))}


def compact(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The classification numbers of a metrics dict the report keeps (``None`` stays ``None``)."""
    if metrics is None:
        return None
    return {k: metrics.get(k) for k in ("n", "accuracy", "balanced_accuracy", "auc", "macro_f1", "loss")
            if k in metrics}
