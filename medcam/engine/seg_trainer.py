"""Training a segmenter with the classifier's engine: :class:`SegmenterTrainer`.

The loop, checkpoints (``last.pt`` / ``best.pt``), resume, early stopping,
schedules, ``metrics.jsonl`` and summaries are :class:`~medcam.engine.trainer.Trainer`'s;
a segmenter changes what a step computes and how validation scores it::

    trainer = SegmenterTrainer({"name": "unet", "encoder": "tiny_cnn", "in_chans": 1}, {"epochs": 8},
                               out_dir="runs/seg")
    trainer.fit(train_set, val_set)        # items need "mask" (B, H, W) bool

* forward: ``logits = segmenter(images)`` ``(B, 1, H, W)``; the spec's loss (default
  soft Dice + BCE, :data:`medcam.spec.DEFAULT_SEGMENTER_LOSS`) reads them and ``batch["mask"]``;
* training score ``mean_dice``: the mean per-image Dice of ``sigmoid(logits) > 0.5`` (an image
  with neither true nor predicted foreground scores 1);
* validation: :func:`~medcam.engine.seg_evaluate.evaluate_segmenter` (Dice, IoU,
  box accuracy, loss); the best checkpoint is chosen by ``dice`` unless ``monitor`` says otherwise.
"""
from __future__ import annotations

from typing import Any, Mapping

from torch import Tensor, nn
from torch.utils.data import Dataset

from medcam.errors import SpecError
from medcam.metrics.masks import dice

from .batch import class_counts, class_names_of, labels_of
from .config import SEGMENTER_MONITORS, TrainConfig
from .seg_evaluate import MASK_THRESHOLD, evaluate_segmenter, require_masks
from .trainer import Trainer

__all__ = ["SegmenterTrainer", "check_segmenter_classes", "trainer_for"]


def check_segmenter_classes(spec: Mapping[str, Any]) -> None:
    """Raise unless the segmenter spec predicts one mask channel (the data sets' masks are binary)."""
    if int(spec.get("num_classes", 1)) != 1:
        raise SpecError(f"num_classes: the data sets' masks are binary (one foreground channel), so a trained "
                        f"segmenter has num_classes: 1, got {spec['num_classes']}")


class SegmenterTrainer(Trainer):
    """Train one :class:`~medcam.model.MedcamSegmenter`; arguments as :class:`Trainer`.

    ``model`` is a segmenter spec (name, mapping or YAML/JSON path) or a built
    segmenter; ``config`` a :class:`TrainConfig` or a mapping (whose ``monitor``
    defaults to ``dice``).
    """

    monitors = SEGMENTER_MONITORS
    train_score = "mean_dice"  # not "dice": that is the loss term's name in the logs
    train_score_label = "dice"

    def __init__(self, model: Any, config: TrainConfig | Mapping[str, Any] | None = None, **kwargs: Any):
        if not isinstance(config, TrainConfig):
            config = {"monitor": SEGMENTER_MONITORS[0], **dict(config or {})}
        super().__init__(model, config, **kwargs)
        from medcam.model import MedcamSegmenter

        if not isinstance(self.model, MedcamSegmenter):
            raise SpecError(f"SegmenterTrainer trains segmenters (medcam.build_segmenter), got a "
                            f"{type(self.model).__name__}; train classifiers with Trainer")
        check_segmenter_classes(self.model.spec)
        self._image_classes = 0

    @staticmethod
    def _build(spec: Any) -> nn.Module:
        from medcam.build import build_segmenter

        return build_segmenter(spec)

    def _forward(self, batch: Mapping[str, Any], needs_features: bool) -> Tensor:
        return self.net(batch["image"])

    def _correct(self, output: Tensor, batch: Mapping[str, Any]) -> float:
        pred = output.detach()[:, 0] > 0  # sigmoid(logit) > 0.5
        return float(dice(pred, batch["mask"].bool()).sum())

    def _check_labels(self, train_set: Dataset) -> Tensor:
        require_masks(train_set, "the training set")
        labels = labels_of(train_set)
        names = class_names_of(train_set)
        self._image_classes = labels.shape[1] if labels.dim() == 2 else (
            len(names) if names else int(labels.max()) + 1 if labels.numel() else 1)
        return labels

    def _loss_and_counts(self, labels: Tensor) -> tuple[nn.Module, list[int]]:
        """The spec's segmentation loss and the image class counts (for ``balanced_sampler``)."""
        from medcam.build import build_loss

        loss_fn = build_loss(self.model.spec, num_classes=self.model.num_classes, multilabel=False)
        return loss_fn, class_counts(labels, self._image_classes)

    def evaluate(self, dataset: Dataset, *, desc: str = "eval") -> dict[str, Any]:
        """Dice, IoU and box accuracy of the current weights on ``dataset`` (:func:`evaluate_segmenter`)."""
        return evaluate_segmenter(self.model, dataset, batch_size=self.config.eval_batch, device=self.device,
                                  num_workers=self.config.num_workers, collate_fn=self.collate_fn, dist=self.dist,
                                  amp_dtype=self.amp_dtype, progress=self.config.progress, desc=desc,
                                  threshold=MASK_THRESHOLD)

    @staticmethod
    def _val_parts(val: Mapping[str, Any]) -> list[str]:
        def num(key: str) -> str:
            return "-" if val.get(key) is None else f"{val[key]:.3f}"

        return [f"| val loss {val['loss']:.4f}", f"dice {num('dice')}", f"iou {num('iou')}",
                f"box_acc {num('box_acc')}"]


def trainer_for(spec: Any) -> type[Trainer]:
    """The trainer of a spec (name, mapping or path): :class:`SegmenterTrainer` for a segmenter spec, else :class:`Trainer`."""
    from medcam.spec_segmenter import spec_kind

    return SegmenterTrainer if spec_kind(spec) == "segmenter" else Trainer
