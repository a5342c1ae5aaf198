"""One servable model after model selection: refit on all the data, or a fold ensemble.

After k-fold cross-validation (or a train/val run) the models that produced
the estimate each saw only part of the data. Two ways to end with one model:

* **refit** (:func:`refit`): train once more on all the training data, with
  the epoch count the validation data chose (:func:`choose_epochs`), and no
  validation set. The learning rate follows the same schedule as the runs it
  was chosen from (``config.epochs`` long) and training stops after the chosen
  epoch, so the refit model is what those runs had at that epoch, trained on
  more data.
* **ensemble** (:func:`save_fold_ensemble`): the k fold models as one
  :class:`~medcam.ensemble.MedcamEnsemble` (mean of their logits), no
  further training.

Both write one checkpoint that ``medcam explain``, ``medcam eval`` and
``medcam app`` load like any model. :func:`~medcam.engine.runs.cross_validate`
uses them (``final="refit"`` or ``"ensemble"``); a train/val run can refit on
train + val with :func:`refit` the same way.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Mapping, Sequence

from medcam.errors import SpecError

from .config import TrainConfig
from .distributed import DistContext
from .seg_trainer import trainer_for
from .trainer import Callback, FitResult, Trainer

__all__ = ["FINAL_MODES", "choose_epochs", "refit", "refit_after_validation", "save_fold_ensemble", "finish_folds"]

#: What k-fold training ends with: a fold ensemble, a model refit on all the data, or nothing.
FINAL_MODES = ("ensemble", "refit", "none")


def choose_epochs(histories: Sequence[Sequence[Mapping[str, Any]]], monitor: str,
                  mode: str) -> tuple[int, list[float | None]]:
    """The epoch count with the best validation ``monitor`` averaged over runs.

    ``E* = argbest_e mean_f m_f(e)`` over the epochs every run reached (runs
    stopped early are shorter), where ``m_f(e)`` is run ``f``'s validation
    metric after epoch ``e`` (``history[e - 1]["val"][monitor]``). Ties go to
    the earlier epoch.

    Args:
        histories: one per run (fold), the records of ``metrics.jsonl``.
        monitor: the metric (``TrainConfig.monitor``).
        mode: ``"max"`` or ``"min"``.

    Returns:
        ``(E*, the mean curve)`` with ``E*`` 1-based.

    Raises:
        SpecError: no run has validation metrics for ``monitor``.
    """
    if not histories or not all(histories):
        raise SpecError("choosing the epoch count needs the validation history of every run")
    common = min(len(h) for h in histories)
    curve: list[float | None] = []
    for e in range(common):
        values = []
        for history in histories:
            val = history[e].get("val") or {}
            value = val.get(monitor)
            if value is not None and not math.isnan(float(value)):
                values.append(float(value))
        curve.append(sum(values) / len(values) if values else None)
    defined = [(i, v) for i, v in enumerate(curve) if v is not None]
    if not defined:
        raise SpecError(f"no run has a validation '{monitor}' to choose the epoch count from")
    values = [v for _, v in defined]
    target = max(values) if mode == "max" else min(values)
    first = next(i for i, v in defined if v == target)
    return first + 1, curve


def refit(spec: Any, config: TrainConfig | Mapping[str, Any] | None, train_set: Any, *, epochs: int,
          out_dir: str | Path | None, data_info: Mapping[str, Any] | None = None,
          callbacks: Sequence[Callback] = (), dist: DistContext | None = None, resume: bool = False,
          run_name: str | None = None) -> tuple[Trainer, FitResult]:
    """Train ``spec`` on ``train_set`` (all the training data, no validation) for ``epochs`` epochs.

    The schedule is ``config``'s (``config.epochs`` long; early stopping, which
    needs validation data, is switched off) and training stops after
    ``epochs`` (:meth:`Trainer.fit`'s ``stop_after``).

    Returns:
        the trainer (its model holds the refit weights) and the fit result.
    """
    cfg = TrainConfig.from_dict(config)
    if not 1 <= int(epochs) <= cfg.epochs:
        raise SpecError(f"refit: epochs must be in 1..{cfg.epochs} (the schedule's length), got {epochs}")
    cfg = cfg.replace(early_stopping=None)
    trainer = trainer_for(spec)(spec, cfg, out_dir=out_dir, callbacks=callbacks, data_info=data_info, dist=dist,
                                run_name=run_name)
    fit = trainer.fit(train_set, None, resume=resume, stop_after=int(epochs))
    return trainer, fit


def refit_after_validation(trainer: Trainer, fit: FitResult, full: Any, parts: Mapping[str, Any], augment: Any,
                           cfg: TrainConfig, out: Path, info: Mapping[str, Any], callbacks: Sequence[Callback],
                           dist: DistContext) -> tuple[Trainer, dict[str, Any]]:
    """Refit on train + val (``parts["indices"]``) for the epoch count ``fit``'s validation history chose.

    Writes the refit run to ``out/refit`` and its model to ``out/model.pt``; returns the
    refit trainer and ``{"epochs", "images", "path"}``.
    """
    if parts["val"] is None:
        raise SpecError("refit: needs a validation part to choose the epoch count (--val > 0)")
    epochs, _ = choose_epochs([fit.history], cfg.monitor, cfg.mode)
    pool = sorted(parts["indices"]["train"] + parts["indices"]["val"])
    refit_dir = out / "refit"
    refit_trainer, _ = refit(trainer.model.spec, cfg, full.subset(pool, augment=augment), epochs=epochs,
                             out_dir=refit_dir, data_info={**info, "refit_of": str(out)}, callbacks=callbacks,
                             dist=dist)
    if dist.is_main:
        import shutil

        shutil.copyfile(refit_dir / "last.pt", out / "model.pt")
    return refit_trainer, {"epochs": epochs, "images": len(pool), "path": str(out / "model.pt")}


def save_fold_ensemble(checkpoints: Sequence[str | Path], path: str | Path | None, **metadata: Any) -> Any:
    """Load the fold models at ``checkpoints`` and return them as one ensemble, saved at ``path`` (None: not saved)."""
    import medcam
    from medcam.ensemble import ensemble_of

    ensemble = ensemble_of([medcam.load(p) for p in checkpoints])
    if path is not None:
        medcam.save(ensemble, path, members=[str(p) for p in checkpoints], **metadata)
    return ensemble


def finish_folds(final: str, *, spec: Mapping[str, Any], config: TrainConfig, out: Path,
                 histories: Sequence[Sequence[Mapping[str, Any]]], train_set: Any,
                 data_info: Mapping[str, Any], callbacks: Sequence[Callback] = (), dist: DistContext | None = None,
                 resume: bool = False, run_name: str | None = None) -> tuple[Any, dict[str, Any]]:
    """The one model a k-fold run ends with, saved as ``out/model.pt``.

    Args:
        final: ``"ensemble"`` (the folds' last-epoch models, ``out/fold<i>/last.pt``, averaged) or
            ``"refit"`` (trained on ``train_set``, every non-test image, in ``out/refit``, for the epoch
            count of :func:`choose_epochs` over the folds' ``histories``).
        spec, config: the folds' resolved spec and settings.
        data_info: JSON facts about the data, stored in the checkpoint.

    Returns:
        ``(model, info)``; ``info`` says what was made: ``{"kind", "path", ...}``
        (``members`` for an ensemble; ``epochs``, ``chosen_by``, ``curve``,
        ``train_images`` and ``run`` for a refit).
    """
    import medcam

    if final not in FINAL_MODES or final == "none":
        raise SpecError(f"final: expected 'ensemble' or 'refit', got {final!r}")
    path = out / "model.pt"
    folds = len(histories)
    if final == "ensemble":
        members = [out / f"fold{i + 1}" / "last.pt" for i in range(folds)]
        main = dist is None or dist.is_main
        model = save_fold_ensemble(members, path if main else None, final="ensemble", folds=folds,
                                   data=dict(data_info), config=config.to_dict())
        return model, {"kind": "ensemble", "path": str(path), "members": [str(m) for m in members]}
    epochs, curve = choose_epochs(histories, config.monitor, config.mode)
    trainer, _ = refit(spec, config, train_set, epochs=epochs, out_dir=out / "refit", callbacks=callbacks,
                       dist=dist, resume=resume, data_info={**data_info, "final": "refit"},
                       run_name=f"{run_name}_refit" if run_name else None)
    chosen_by = f"the best mean validation {config.monitor} over the {folds} folds"
    if trainer.dist.is_main:
        medcam.save(trainer.model, path, final="refit", epochs=epochs, chosen_by=chosen_by, curve=curve,
                    data={**data_info, "final": "refit"}, config=config.to_dict())
    return trainer.model, {"kind": "refit", "path": str(path), "epochs": epochs, "chosen_by": chosen_by,
                           "curve": curve, "train_images": len(train_set), "run": str(out / "refit")}
