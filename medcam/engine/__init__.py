"""Training and evaluation: :class:`Trainer`, :class:`SegmenterTrainer`, :class:`TrainConfig`, :func:`evaluate`,
:func:`evaluate_segmenter`, cross-validation.

    from medcam.engine import Trainer, TrainConfig
    trainer = Trainer("tiny_classifier", TrainConfig(epochs=8), out_dir="runs/demo")
    result = trainer.fit(train_set, val_set)

See ``docs/training.md``.
"""
from __future__ import annotations

from .config import TrainConfig
from .distributed import DistContext
from .evaluate import Predictions, evaluate, predict
from .seg_evaluate import evaluate_segmenter
from .seg_trainer import SegmenterTrainer
from .trainer import Callback, EarlyStopping, FitResult, Trainer

__all__ = ["Trainer", "SegmenterTrainer", "TrainConfig", "FitResult", "Callback", "EarlyStopping", "DistContext",
           "evaluate", "evaluate_segmenter", "predict", "Predictions"]
