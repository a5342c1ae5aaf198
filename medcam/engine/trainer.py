"""The training loop: a model spec + a :class:`TrainConfig` + data sets -> checkpoints and logs.

Plain PyTorch. One :class:`Trainer` drives one model::

    trainer = Trainer({"name": "tiny_classifier", "num_classes": 3}, TrainConfig(epochs=8), out_dir="runs/a")
    result = trainer.fit(train_set, val_set)          # writes runs/a/{last,best}.pt, metrics.jsonl, summary_*.txt
    trainer.fit(train_set, val_set, resume=True)      # after a crash: continues from runs/a/last.pt

What it does each epoch: reseeds from ``(seed, epoch)``; draws the epoch's
order (shuffled or class-balanced, sharded over processes under ``torchrun``);
runs forward / loss / backward with optional autocast, gradient clipping and
per-step learning-rate schedule; evaluates on the validation set; writes the
JSON-lines record and the summary, then the checkpoint (atomically: ``last.pt``
marks the epoch done, so a kill at any moment resumes to the files of an
uninterrupted run); keeps the best checkpoint by ``config.monitor``; stops
early when asked.

Batches are dicts (``docs/architecture.md``, "Batch"): ``"image"`` ``(B, C, H, W)``
in [0, 1], ``"label"`` ``(B,)`` int64 or ``(B, K)`` multi-hot, optional ``"mask"``,
``"boxes"``, ``"path"``; the trainer adds ``"epoch"`` (0-based) for losses that
change with it, and calls the model with ``return_features=True`` when a loss
declares ``needs_features`` (see :mod:`medcam.loss`).
"""
from __future__ import annotations

import contextlib
import copy
import math
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm
from medcam.progress import show_bar

from medcam.capabilities import needs_features as reads_features
from medcam.checkpoint import read_checkpoint, save
from medcam.errors import CheckpointError, DataError, SpecError, TrainingError

from .batch import class_counts, class_names_of, labels_of, to_device
from .config import CLASSIFIER_MONITORS, TrainConfig
from .distributed import DistContext
from .evaluate import default_collate, evaluate
from .fit_parts import Callback, EarlyStopping, FitResult
from .logs import RunFiles, run_tag
from .optim import LRSchedule, build_optimizer
from .sampler import EpochSampler, class_balanced_weights, wants_balance
from .seeding import derive_seed, seed_everything

__all__ = ["Trainer", "FitResult", "Callback", "EarlyStopping"]


def _amp(mode: str, device: torch.device) -> tuple[torch.dtype | None, bool]:
    """``(autocast dtype or None, use a GradScaler)`` for ``config.amp`` on ``device``."""
    if mode == "off" or (mode == "auto" and device.type != "cuda"):
        return None, False
    if mode == "bf16":
        return torch.bfloat16, False
    if device.type != "cuda":
        raise SpecError(f"train.amp: 'fp16' needs a CUDA device (this run uses {device}); use 'bf16' or 'off'")
    if mode == "auto" and torch.cuda.is_bf16_supported():
        return torch.bfloat16, False
    return torch.float16, True


def _compact(metrics: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Metrics for the per-epoch log: everything but the confusion matrix."""
    if metrics is None:
        return None
    return {k: v for k, v in metrics.items() if k != "confusion_matrix"}


class Trainer:
    """Train one medcam model.

    Args:
        model: a model spec (preset name, mapping or YAML/JSON path; the model is
            built after seeding, so the seed fixes the initial weights) or a built
            :class:`~medcam.model.MedcamModel`.
        config: a :class:`TrainConfig` or a mapping of its settings.
        out_dir: folder for checkpoints and logs (nothing is written without it).
        callbacks: :class:`Callback` objects.
        data_info: JSON facts about the data (stored in checkpoints and the summary).
        collate_fn: batches items (default: the data package's collate).
        dist: the process group context (default: from torchrun's environment).
        run_name: the run's name (its summary file is ``summary_<run_name>.txt``); default:
            :func:`~medcam.engine.logs.run_tag` of the spec and settings.
    """

    def __init__(self, model: Any, config: TrainConfig | Mapping[str, Any] | None = None, *,
                 out_dir: str | Path | None = None, callbacks: Sequence[Callback] = (),
                 data_info: Mapping[str, Any] | None = None, collate_fn: Callable[..., Any] | None = None,
                 dist: DistContext | None = None, run_name: str | None = None):
        self.config = TrainConfig.from_dict(config)
        self.dist = dist or DistContext.from_env(self.config.device)
        self.device = self.dist.device
        seed_everything(self.config.seed)
        self.model = model if isinstance(model, nn.Module) else self._build(model)
        if not hasattr(self.model, "spec"):
            raise SpecError("Trainer needs a model built by medcam.build_model (it has no .spec)")
        if self.model.spec.get("ensemble"):
            raise SpecError("ensemble: an ensemble is made of trained models (medcam train --folds K --final ensemble, "
                            "or medcam.ensemble.ensemble_of), not trained as one; remove 'ensemble' from the spec")
        if self.config.monitor not in self.monitors:
            raise SpecError(f"train.monitor: '{self.config.monitor}' is not a metric of this model; it monitors "
                            f"{', '.join(self.monitors)}")
        self.model.to(self.device)
        self.callbacks = list(callbacks)
        self.data_info = dict(data_info or {})
        self.collate_fn = collate_fn or default_collate()
        if out_dir is not None and self.dist.is_main:
            from medcam.outputs import output_folder

            output_folder(out_dir)  # a file or an unwritable folder: refused now, not after the first epoch
        self.run_name = run_name or run_tag(self.model.spec, self.config)
        self.files = RunFiles(out_dir, self.run_name) if out_dir is not None else None
        self.amp_dtype, use_scaler = _amp(self.config.amp, self.device)
        self.scaler = torch.amp.GradScaler(self.device.type) if use_scaler else None
        self.history: list[dict[str, Any]] = []
        self.stopper = EarlyStopping(self.config.mode, self.config.early_stopping)
        self._best_state: dict[str, Tensor] | None = None
        self._best_metrics: dict[str, Any] | None = None
        self.net: nn.Module = self.model
        if self.dist.enabled:
            if self.config.sync_bn:
                if self.device.type != "cuda":
                    raise SpecError("train.sync_bn: synchronized batch norm needs CUDA devices (PyTorch's "
                                    "SyncBatchNorm has no CPU implementation); set it to false")
                self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)

    #: Validation metrics ``config.monitor`` may name.
    monitors: tuple[str, ...] = CLASSIFIER_MONITORS
    #: The name of the training score :meth:`_correct` adds up (logged per epoch next to the loss).
    train_score: str = "accuracy"
    train_score_label: str = "acc"

    # ------------------------------------------------------------------ what a kind of model changes
    @staticmethod
    def _build(spec: Any) -> nn.Module:
        """The model of a spec (a classifier here; :class:`~medcam.engine.seg_trainer.SegmenterTrainer` builds segmenters)."""
        from medcam.build import build_model

        return build_model(spec)

    def _forward(self, batch: Mapping[str, Any], needs_features: bool) -> Any:
        """The training forward pass: the model's output the loss reads."""
        return self.net(batch["image"], batch["label"], return_features=needs_features)

    def _correct(self, output: Any, batch: Mapping[str, Any]) -> float:
        """Sum over the batch of each item's :attr:`train_score` (here accuracy: 1 correct, 0 wrong)."""
        logits = output.logits.detach().float()
        if logits.shape == batch["label"].shape:  # multi-label: exact-match accuracy
            return float(((logits > 0) == (batch["label"] > 0.5)).all(1).sum())
        return float((logits.argmax(1) == batch["label"]).sum())

    def _loss_and_counts(self, labels: Tensor) -> tuple[nn.Module, list[int]]:
        """The spec's loss and the training set's class counts (which it may weight by)."""
        from medcam.build import build_loss

        num_classes = int(self.model.spec["num_classes"])
        counts = class_counts(labels, num_classes)
        loss_fn = build_loss(self.model.spec, num_classes=num_classes, multilabel=bool(self.model.spec["multilabel"]))
        loss_fn.set_class_counts(counts)
        return loss_fn, counts

    # ------------------------------------------------------------------ helpers
    def log(self, text: str) -> None:
        """Print a line above the progress bars (main process, unless progress is off)."""
        if self.dist.is_main and self.config.progress:
            tqdm.write(text, file=sys.stderr)

    def _check_labels(self, train_set: Dataset) -> Tensor:
        labels = labels_of(train_set)
        multilabel = bool(self.model.spec["multilabel"])
        if multilabel != (labels.dim() == 2):
            raise DataError(f"the model is {'multi-label' if multilabel else 'single-label'} but the training "
                            f"labels have shape {tuple(labels.shape)}; set 'multilabel' in the spec accordingly")
        return labels

    def _loader(self, dataset: Dataset, sampler: EpochSampler) -> DataLoader:
        return DataLoader(dataset, batch_size=self.config.batch_size // self.dist.world_size, sampler=sampler,
                          num_workers=self.config.num_workers, collate_fn=self.collate_fn,
                          pin_memory=self.device.type == "cuda", drop_last=False)

    def evaluate(self, dataset: Dataset, *, desc: str = "eval") -> dict[str, Any]:
        """Metrics of the current weights on ``dataset`` (see :func:`medcam.engine.evaluate`)."""
        return evaluate(self.model, dataset, batch_size=self.config.eval_batch, device=self.device,
                        num_workers=self.config.num_workers, collate_fn=self.collate_fn, dist=self.dist,
                        amp_dtype=self.amp_dtype, progress=self.config.progress, desc=desc,
                        class_names=self.model.spec.get("class_names") or class_names_of(dataset))

    # ------------------------------------------------------------------ checkpoints
    def _save(self, path: Path, epoch: int, val: Mapping[str, Any] | None, train: Mapping[str, Any],
              training_state: Any, stopped_early: bool) -> None:
        save(self.model, path, training_state=training_state, epoch=epoch, metrics=val, train=train,
             config=self.config.to_dict(), data=self.data_info, history=self.history,
             best_epoch=self.stopper.best_epoch, monitor=self.config.monitor, stopped_early=stopped_early)

    def _resume(self, optimizer: torch.optim.Optimizer, schedule: LRSchedule) -> tuple[int, bool]:
        """Load ``last.pt``; return ``(epochs done, stopped early)``. ``(0, False)`` when there is no checkpoint."""
        if self.files is None:
            raise SpecError("resume needs an output folder (out_dir) holding last.pt")
        if not self.files.last.is_file():
            self.log(f"resume: no checkpoint at {self.files.last}; starting from scratch")
            return 0, False
        ckpt = read_checkpoint(self.files.last, map_location=self.device)
        if ckpt.spec != self.model.spec:
            raise CheckpointError(f"cannot resume from {self.files.last}: it was trained with a different model spec")
        state = ckpt.training_state
        if not isinstance(state, Mapping) or "optimizer" not in state:
            raise CheckpointError(f"cannot resume from {self.files.last}: it holds no training state")
        saved = TrainConfig.from_dict(ckpt.metadata.get("config"))
        diffs = self.config.differences(saved)
        if diffs:
            raise CheckpointError(f"cannot resume from {self.files.last}: the training settings changed "
                                  f"({'; '.join(diffs)}); use a new --out folder or the original settings")
        if saved.epochs != self.config.epochs and self.config.scheduler in ("cosine", "linear"):
            raise CheckpointError(f"cannot resume from {self.files.last} with epochs={self.config.epochs}: it was "
                                  f"trained for {saved.epochs} epochs and the {self.config.scheduler} schedule "
                                  f"depends on the total")
        self.model.load_state_dict(ckpt.state_dict)
        optimizer.load_state_dict(state["optimizer"])
        schedule.load_state_dict(state["schedule"])
        if self.scaler is not None and state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.stopper.load_state_dict(state["stopper"])
        self.history = list(ckpt.metadata.get("history") or [])
        if self.dist.is_main:  # last.pt is the authority: logs written after it, or lost, are rewritten from it
            self.files.write_history(self.history)
        done = int(state["epoch"])
        if self.files.best.is_file() and self.stopper.best_epoch is not None:
            self._best_metrics = read_checkpoint(self.files.best).metadata.get("metrics")
        self.log(f"resumed from {self.files.last} after epoch {done}")
        return done, bool(ckpt.metadata.get("stopped_early"))

    # ------------------------------------------------------------------ training
    def _train_epoch(self, loader: DataLoader, loss_fn: nn.Module, optimizer: torch.optim.Optimizer,
                     schedule: LRSchedule, epoch: int) -> dict[str, float]:
        self.net.train()
        needs_features = reads_features(loss_fn)
        sums: dict[str, float] = {}
        seen, correct = 0, 0.0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.config.epochs}", leave=False, file=sys.stderr,
                   disable=not show_bar(self.config.progress and self.dist.is_main), dynamic_ncols=True)
        for step, batch in enumerate(bar):
            batch = to_device(batch, self.device)
            batch["epoch"] = epoch
            autocast = (torch.autocast(self.device.type, dtype=self.amp_dtype) if self.amp_dtype is not None
                        else contextlib.nullcontext())
            with autocast:
                output = self._forward(batch, needs_features)
                total, logs = loss_fn(output, batch, self.model)
            if not torch.isfinite(total):
                raise TrainingError(f"the loss became {float(total.detach())} at epoch {epoch + 1}, step {step + 1} "
                                    f"(terms: {logs}); lower the learning rate, set grad_clip, or turn amp off")
            optimizer.zero_grad(set_to_none=True)
            if self.scaler is not None:
                self.scaler.scale(total).backward()
                if self.config.grad_clip:
                    self.scaler.unscale_(optimizer)
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
                self.scaler.step(optimizer)
                self.scaler.update()
            else:
                total.backward()
                if self.config.grad_clip:
                    nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
                optimizer.step()
            schedule.step()
            n = batch["image"].shape[0]
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value * n
            seen += n
            with torch.no_grad():
                correct += self._correct(output, batch)
            bar.set_postfix(loss=f"{sums['total'] / seen:.4f}", lr=f"{schedule.lr:.2e}", refresh=False)
            for cb in self.callbacks:
                cb.on_step_end(self, epoch, step, logs)
        keys = sorted(sums)
        totals = self.dist.sum(torch.tensor([seen, correct] + [sums[k] for k in keys], dtype=torch.float64))
        seen_all = max(float(totals[0]), 1.0)
        out = {"loss": float(totals[2 + keys.index("total")]) / seen_all if "total" in keys else math.nan,
               self.train_score: float(totals[1]) / seen_all}
        out.update({k: float(v) / seen_all for k, v in zip(keys, totals[2:].tolist()) if k != "total"})
        return out

    def fit(self, train_set: Dataset, val_set: Dataset | None = None, *, resume: bool = False,
            stop_after: int | None = None) -> FitResult:
        """Train for ``config.epochs`` epochs (fewer when early stopping triggers).

        Args:
            train_set: items with ``"image"`` and ``"label"`` (see the module docstring).
            val_set: evaluated after every epoch; selects the best checkpoint and
                drives early stopping and the plateau schedule. Without it, the
                last epoch counts as the best.
            resume: continue from ``out_dir/last.pt`` (same spec and settings; a run
                killed mid-epoch restarts that epoch and ends with the same weights
                as an uninterrupted run).
            stop_after: end after this many epochs of the ``config.epochs`` schedule
                (the learning rate follows the full schedule up to there): the model
                a longer run had after epoch ``stop_after``. Refitting on all the data
                with an epoch count chosen on validation data uses it
                (:mod:`medcam.engine.refit`).
        """
        cfg = self.config
        end = cfg.epochs if stop_after is None else int(stop_after)
        if not 1 <= end <= cfg.epochs:
            raise SpecError(f"stop_after: expected 1..{cfg.epochs} (the schedule's epochs), got {stop_after!r}")
        if len(train_set) == 0:  # type: ignore[arg-type]
            raise DataError("the training set is empty")
        if val_set is None and cfg.early_stopping is not None:
            raise SpecError("train.early_stopping: needs a validation set")
        labels = self._check_labels(train_set)
        loss_fn, counts = self._loss_and_counts(labels)
        loss_fn.to(self.device)
        balance, why = wants_balance(cfg.balanced_sampler, counts, bool(self.model.spec.get("multilabel")))
        weights = class_balanced_weights(labels, len(counts)) if balance else None
        sampler = EpochSampler(len(train_set), batch_size=cfg.batch_size, weights=weights,  # type: ignore[arg-type]
                               seed=cfg.seed, num_replicas=self.dist.world_size, rank=self.dist.rank, drop_last=True)
        loader = self._loader(train_set, sampler)
        optimizer = build_optimizer(self.model, cfg)
        schedule = LRSchedule(optimizer, cfg, steps_per_epoch=len(loader))
        self.stopper = EarlyStopping(cfg.mode, cfg.early_stopping)
        start, stopped = (self._resume(optimizer, schedule) if resume else (0, False))
        if not self.data_info.get("class_counts"):
            self.data_info["class_counts"] = counts
        if start == 0:
            self.history, self._best_metrics = [], None
        if start < end and not stopped:
            self.log(self._header(len(train_set), counts, balance, why))  # type: ignore[arg-type]
        if stopped or start >= end:
            self.log(f"nothing to do: the run in {self.files.dir if self.files else '?'} already finished")
            return self._result(stopped)
        for epoch in range(start, end):
            began = time.perf_counter()
            seed_everything(derive_seed(cfg.seed, epoch, self.dist.rank))
            sampler.set_epoch(epoch)
            for cb in self.callbacks:
                cb.on_epoch_start(self, epoch)
            lr = schedule.lr
            scheduled = loss_fn.schedule_values(epoch)
            train_logs = self._train_epoch(loader, loss_fn, optimizer, schedule, epoch)
            lr_last = schedule.last_lr
            self.dist.sync_buffers(self.model)
            val = self.evaluate(val_set, desc=f"val {epoch + 1}/{cfg.epochs}") if val_set is not None else None
            value = (val[cfg.monitor] if val is not None else
                     (train_logs["loss"] if cfg.monitor == "loss" else None))
            schedule.step_epoch(value, cfg.mode)
            improved = self.stopper.update(value, epoch + 1) if val is not None else True
            if val is None:
                self.stopper.best_epoch = epoch + 1
            record = {"epoch": epoch + 1, "lr": lr, "time_s": round(time.perf_counter() - began, 3),
                      "schedule": {"lr": lr, "lr_last_step": lr_last, **scheduled},
                      "train": train_logs, "val": _compact(val)}
            self.history.append(record)
            stopped = self.stopper.should_stop and epoch + 1 < end
            done = stopped or epoch + 1 == end
            if improved:
                self._best_metrics = val
                if self.files is None:
                    self._best_state = {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
            if self.files is not None and self.dist.is_main:
                state = {"epoch": epoch + 1, "optimizer": optimizer.state_dict(), "schedule": schedule.state_dict(),
                         "scaler": self.scaler.state_dict() if self.scaler is not None else None,
                         "stopper": self.stopper.state_dict()}
                # the logs first, last.pt last: last.pt marks the epoch done, so a kill in between makes
                # resume re-run the epoch (and rewrite the logs) instead of leaving them an epoch short
                self.files.write_history(self.history)
                self.files.write_summary(spec=self.model.spec, config=cfg, history=self.history,
                                         best=self.best_record(), data=self.data_info,
                                         status="finished" if done else "running")
                if improved:
                    self._save(self.files.best, epoch + 1, val, train_logs, None, stopped_early=stopped)
                self._save(self.files.last, epoch + 1, val, train_logs, state, stopped_early=stopped)
            self.dist.barrier()
            self.log(self._epoch_line(record, improved and val is not None))
            for cb in self.callbacks:
                cb.on_epoch_end(self, epoch, record)
            if stopped:
                self.log(f"early stopping: {cfg.monitor} has not improved for {cfg.early_stopping} epochs")
                break
        return self._result(stopped)

    def best_record(self) -> dict[str, Any] | None:
        """``{"epoch", "metrics"}`` of the best epoch so far, or None."""
        if self.stopper.best_epoch is None:
            return None
        return {"epoch": self.stopper.best_epoch, "metrics": self._best_metrics}

    def _result(self, stopped: bool) -> FitResult:
        last = self.history[-1]["val"] if self.history else None
        return FitResult(history=list(self.history), best_epoch=self.stopper.best_epoch,
                         best_metrics=copy.deepcopy(self._best_metrics), last_metrics=last, stopped_early=stopped,
                         files=self.files)

    def _header(self, n: int, counts: Sequence[int], balance: bool, why: str) -> str:
        """The run's first line: the data, the settings that shape it, and where it runs.

        Every default that depends on the data or the machine (class balance, threads)
        is printed here, so a run never differs from what its log says.
        """
        cfg = self.config
        names = (self.model.spec.get("class_names") or self.data_info.get("class_names")  # a segmenter: the data's
                 or [str(i) for i in range(len(counts))])
        per_class = ", ".join(f"{name} {int(c)}" for name, c in zip(names, counts))
        warmup = f" + {cfg.warmup_epochs:g} warm-up epochs" if cfg.warmup_epochs else ""
        scale = f", backbone x{cfg.backbone_lr_scale:g}" if cfg.backbone_lr_scale != 1 else ""
        where = f"{self.device.type}, {torch.get_num_threads()} threads" if self.device.type == "cpu" \
            else str(self.device)
        return (f"train: {n} images ({per_class}); balanced sampling {'on' if balance else 'off'} ({why}); "
                f"{cfg.optimizer} lr {cfg.lr:g}{scale}, {cfg.scheduler}{warmup}, {cfg.epochs} epochs of batch "
                f"{cfg.batch_size}; seed {cfg.seed}; {where}")

    @staticmethod
    def _val_parts(val: Mapping[str, Any]) -> list[str]:
        """The validation metrics of the per-epoch line."""
        auc = val.get("auc")
        return [f"| val loss {val['loss']:.4f}", f"acc {val['accuracy']:.3f}", f"bacc {val['balanced_accuracy']:.3f}",
                f"auc {auc:.3f}" if auc is not None else "auc -"]

    def _epoch_line(self, record: Mapping[str, Any], best: bool) -> str:
        val = record.get("val") or {}
        parts = [f"epoch {record['epoch']:>3}/{self.config.epochs}", f"loss {record['train']['loss']:.4f}",
                 f"{self.train_score_label} {record['train'][self.train_score]:.3f}"]
        if val:
            parts += self._val_parts(val)
        parts += [f"| lr {record['lr']:.2e}"]
        parts += [f"{k} {v:.4g}" for k, v in (record.get("schedule") or {}).items() if not k.startswith("lr")]
        parts += [f"{record['time_s']:.1f}s"]
        return "  ".join(parts) + ("  *best" if best else "")

    def load_best(self) -> nn.Module:
        """Put the best epoch's weights into the model (from ``best.pt``, or memory without ``out_dir``)."""
        if self.files is not None and self.files.best.is_file():
            self.model.load_state_dict(read_checkpoint(self.files.best, map_location=self.device).state_dict)
        elif self._best_state is not None:
            self.model.load_state_dict(self._best_state)
        return self.model
