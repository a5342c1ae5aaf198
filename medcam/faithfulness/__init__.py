"""Faithfulness, sanity and pointing metrics of attribution maps, as registered metrics.

    import medcam
    maps = medcam.explain(model, images, "gradcam", target=labels)
    medcam.build_metric("deletion")(model, images, maps, target=labels)      # (B,) deletion AUC
    medcam.build_metric("model_randomization").run(model, images, target=labels, method="gradcam")

Registered names (``medcam list metrics``; light declarations in
:mod:`medcam.faithfulness.entries`): ``deletion``, ``insertion`` (RISE),
``road`` (ROAD with noisy linear imputation), ``average_drop``,
``increase_in_confidence`` (Grad-CAM++), ``confidence_change``
(pytorch-grad-cam's perturbation-confidence metric), ``pointing_game``,
``energy_pointing_game`` (Score-CAM), ``model_randomization`` (Adebayo et al.),
``complexity``, ``coherency``, ``adcc`` (Poppi et al.) and ``arcc``
(pytorch-grad-cam). The protocol is :class:`~medcam.faithfulness.base.AttributionMetric`.

Attributes are imported lazily, so the registry reads the entries without torch.
"""
from __future__ import annotations

from medcam._lazy import lazy_attributes

_LAZY = {
    "AttributionMetric": "medcam.faithfulness.base",
    "MetricResult": "medcam.faithfulness.base",
    "MetricInputs": "medcam.faithfulness.base",
    "Deletion": "medcam.faithfulness.deletion",
    "Insertion": "medcam.faithfulness.deletion",
    "ROAD": "medcam.faithfulness.road",
    "AverageDrop": "medcam.faithfulness.confidence",
    "IncreaseInConfidence": "medcam.faithfulness.confidence",
    "ConfidenceChange": "medcam.faithfulness.confidence",
    "PointingGame": "medcam.faithfulness.pointing",
    "EnergyPointingGame": "medcam.faithfulness.pointing",
    "ModelRandomization": "medcam.faithfulness.randomization",
    "Complexity": "medcam.faithfulness.arcc",
    "Coherency": "medcam.faithfulness.arcc",
    "ADCC": "medcam.faithfulness.arcc",
    "ARCC": "medcam.faithfulness.arcc",
    "noisy_linear_impute": "medcam.faithfulness.imputation",
    "spearman": "medcam.faithfulness.similarity",
    "ssim": "medcam.faithfulness.similarity",
}

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
__all__ = sorted(_LAZY)
