"""Light factories of the attribution metrics: metadata plus a deferred import.

Nothing heavy is imported here (no torch), so ``medcam list metrics`` and
``medcam info deletion`` read this module cheaply. Every factory returns a
:class:`medcam.faithfulness.base.AttributionMetric`; the metadata says what a
metric needs (``model``, ``images``, ``maps``, ``method``, ``regions``) and
which direction is better.
"""
from __future__ import annotations

from typing import Any

from medcam.registry import describe

_RISE = ("Petsiuk, Das & Saenko, RISE: Randomized Input Sampling for Explanation of Black-box Models, "
         "BMVC 2018")
_GRADCAMPP = ("Chattopadhay et al., Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep "
              "Convolutional Networks, WACV 2018")
_ROAD = ("Rong et al., A Consistent and Efficient Evaluation Strategy for Attribution Methods, ICML 2022")
_POPPI = ("Poppi et al., Revisiting The Evaluation of Class Activation Mapping for Explainability: A Novel Metric "
          "and Experimental Analysis, CVPR Workshops 2021")
_PERTURBATION = ["model", "images", "maps"]
_WITH_METHOD = ["model", "images", "maps", "method"]


@describe(summary="Deletion AUC: target probability as the most relevant pixels are removed (lower is better)",
          citation=_RISE, needs=_PERTURBATION, higher_is_better=False, unit="AUC")
def deletion(steps: int = 50, score: str = "auto", substrate: str = "black", blur_sigma: float = 5.0,
             blur_size: int = 11, batch_size: int = 64, progress: bool = False, seed: int = 0) -> Any:
    """Trapezoid area under the deletion curve over the fraction of pixels removed."""
    from .deletion import Deletion

    return Deletion(steps, score, substrate, blur_sigma, blur_size, batch_size, progress, seed)


@describe(summary="Insertion AUC: target probability as the most relevant pixels are inserted into a blurred "
                  "image (higher is better)", citation=_RISE, needs=_PERTURBATION, higher_is_better=True, unit="AUC")
def insertion(steps: int = 50, score: str = "auto", substrate: str = "blur", blur_sigma: float = 5.0,
              blur_size: int = 11, batch_size: int = 64, progress: bool = False, seed: int = 0) -> Any:
    """Trapezoid area under the insertion curve over the fraction of pixels inserted."""
    from .deletion import Insertion

    return Insertion(steps, score, substrate, blur_sigma, blur_size, batch_size, progress, seed)


@describe(summary="ROAD: score change when the most / least relevant pixels are removed and imputed "
                  "(noisy linear imputation); (LeRF - MoRF) / 2, higher is better",
          citation=_ROAD, needs=_PERTURBATION, higher_is_better=True, unit="score")
def road(order: str = "combined", fractions: list[float] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],  # noqa: B006
         noise: float = 0.01, score: str = "auto", seed: int = 0, batch_size: int = 64) -> Any:
    """``order``: combined | morf | lerf; ``fractions`` removed, each in (0, 1)."""
    from .road import ROAD

    return ROAD(order, fractions, noise, score, seed, batch_size)


@describe(summary="Average Drop %: relative drop of the target probability on the image times its map "
                  "(lower is better)", citation=_GRADCAMPP, needs=_PERTURBATION, higher_is_better=False, unit="%")
def average_drop(score: str = "auto", batch_size: int = 64) -> Any:
    """``100 max(0, Y - O) / Y`` per image."""
    from .confidence import AverageDrop

    return AverageDrop(score, batch_size)


@describe(summary="Increase in Confidence %: share of images whose target probability rises on the image times "
                  "its map (higher is better)", citation=_GRADCAMPP, needs=_PERTURBATION, higher_is_better=True,
          unit="%")
def increase_in_confidence(score: str = "auto", batch_size: int = 64) -> Any:
    """``100 * 1[Y < O]`` per image."""
    from .confidence import IncreaseInConfidence

    return IncreaseInConfidence(score, batch_size)


@describe(summary="Confidence change O - Y on the image times its map (pytorch-grad-cam's perturbation-confidence "
                  "metric; higher is better)", citation=None, needs=_PERTURBATION, higher_is_better=True,
          unit="score")
def confidence_change(score: str = "auto", batch_size: int = 64) -> Any:
    """pytorch-grad-cam's ``CamMultImageConfidenceChange``."""
    from .confidence import ConfidenceChange

    return ConfidenceChange(score, batch_size)


@describe(summary="Pointing game %: the map's maximum lies on the region, within a tolerance (higher is better)",
          citation="Zhang et al., Top-down Neural Attention by Excitation Backprop, ECCV 2016",
          needs=["maps", "regions"], higher_is_better=True, unit="%")
def pointing_game(tolerance: float = 15.0) -> Any:
    """``tolerance`` in pixels (the paper's 15; 0 = exactly on the region)."""
    from .pointing import PointingGame

    return PointingGame(tolerance)


@describe(summary="Energy-based pointing game %: share of the map's energy inside the region (higher is better)",
          citation="Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, "
                   "CVPR Workshops 2020", needs=["maps", "regions"], higher_is_better=True, unit="%")
def energy_pointing_game() -> Any:
    """``100 sum_{p in R} L_p / sum_p L_p`` per image."""
    from .pointing import EnergyPointingGame

    return EnergyPointingGame()


@describe(summary="Model randomisation sanity check: Spearman / SSIM between maps of the trained and the "
                  "cascadingly randomised model (lower is better)",
          citation="Adebayo et al., Sanity Checks for Saliency Maps, NeurIPS 2018",
          needs=["model", "images", "method"], higher_is_better=False, unit="similarity")
def model_randomization(order: str = "top_down", stages: int | None = None, reduce: str = "mean", seed: int = 0,
                        progress: bool = False) -> Any:
    """``order``: top_down (cascading) | independent; ``stages``: None (every layer) or that many."""
    from .randomization import ModelRandomization

    return ModelRandomization(order, stages, reduce, seed, progress)


@describe(summary="Complexity: mean absolute map value (lower is better)", citation=_POPPI, needs=["maps"],
          higher_is_better=False, unit="fraction")
def complexity() -> Any:
    """``||L||_1 / (H W)``."""
    from .arcc import Complexity

    return Complexity()


@describe(summary="Coherency: correlation of the map with the method's map of the image times the map "
                  "(higher is better)", citation=_POPPI, needs=_WITH_METHOD, higher_is_better=True, unit="fraction")
def coherency() -> Any:
    """``(Pearson(L, method(x * L)) + 1) / 2``."""
    from .arcc import Coherency

    return Coherency()


@describe(summary="ADCC: harmonic mean of Coherency, 1 - Complexity and 1 - Average Drop (higher is better)",
          citation=_POPPI, needs=_WITH_METHOD, higher_is_better=True, unit="fraction")
def adcc(score: str = "auto", batch_size: int = 64) -> Any:
    """Poppi et al. 2021, eq. 7."""
    from .arcc import ADCC

    return ADCC(score, batch_size)


@describe(summary="ARCC: harmonic mean of Coherency, 1 - Complexity and ROAD (pytorch-grad-cam; higher is better)",
          citation="pytorch-grad-cam 1.5.7 metrics/arcc.py; Refine-CAM, arXiv:2605.14641", needs=_WITH_METHOD,
          higher_is_better=True, unit="fraction")
def arcc(fractions: list[float] = [0.2, 0.4, 0.6, 0.8], noise: float = 0.01, score: str = "auto",  # noqa: B006
         seed: int = 0, batch_size: int = 64) -> Any:
    """ROAD over ``fractions`` removed, clipped to ``[0, 1]`` after doubling."""
    from .arcc import ARCC

    return ARCC(fractions, noise, score, seed, batch_size)
