"""Localization, mask and classification metrics.

* Box localization (WSOL; Choe et al., CVPR 2020): :func:`max_box_acc`,
  :func:`max_box_acc_v2`, :func:`gt_known_loc`, :func:`top1_loc`,
  :func:`box_iou_curves`, :func:`wsol_boxes`.
* Pixel localization: :func:`pxap`, :func:`pixel_iou_curves`.
* Box overlap: :func:`box_iou`, :func:`box_iobb`, :func:`best_box_overlap`.
* ChestX-ray8 protocol (Wang et al., CVPR 2017): :func:`chestxray8_boxes`,
  :class:`ChestXray8Table`.
* Fixed-threshold box readout (the SR seed: threshold 0.83, IoU > 0.1):
  :func:`threshold_box_accuracy`.
* Segmentation masks: :func:`dice`, :func:`mask_iou`.
* Segmentation masks: :func:`dice`, :func:`mask_iou`; a segmenter over a data set:
  :func:`mask_stats`, :func:`segmentation_metrics`.
* Streaming over a data loader: :class:`LocalizationAccumulator`.

Definitions, sources and conventions: ``docs/metrics.md``.
"""
from __future__ import annotations

from ._inputs import cam_thresholds, normalize_maps
from .accumulator import LocalizationAccumulator
from .chestxray import (CHESTXRAY8_IOBB_THRESHOLDS, CHESTXRAY8_IOU_THRESHOLDS, CHESTXRAY8_THRESHOLDS, ChestXray8Table,
                        chestxray8_boxes, match_boxes)
from .classification import balanced_accuracy, classification_metrics, confusion_matrix, roc_auc
from .iou import best_box_overlap, box_area, box_iobb, box_iou
from .masks import dice, mask_iou
from .pxap import pixel_iou_curves, pxap
from .readout import SR_IOU, SR_THRESHOLD, threshold_box_accuracy, threshold_boxes
from .segmentation import mask_stats, segmentation_metrics
from .wsol import box_iou_curves, gt_known_loc, max_box_acc, max_box_acc_v2, top1_loc, wsol_boxes
