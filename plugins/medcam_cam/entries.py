"""Light factories of the CAM plugin: metadata plus a deferred import.

Nothing heavy is imported here (no torch), so ``medcam list attributions`` and
``medcam info gradcam`` read this module cheaply. Every factory returns a
:class:`medcam.attribution.Attribution`; ``layer`` (``None`` = the backbone's
``cam_level``, a level index or a module name) is the default layer of the
built method and can be overridden per call.
"""
from __future__ import annotations

from typing import Any

from medcam.registry import describe


@describe(
    summary="CAM: class weights of a GAP + linear head times the pooled level (no gradients)",
    citation="Zhou et al., Learning Deep Features for Discriminative Localization, CVPR 2016",
    uses_gradients=False, class_specific=True,
)
def cam(layer: Any = None) -> Any:
    """``M^c = sum_k w^c_k A^k`` from the head's ``cam_weights()``; ``layer`` must be the head's level."""
    from .activation import CAM

    return CAM(layer)


@describe(
    summary="Grad-CAM: channels weighted by spatially averaged gradients, then ReLU",
    citation="Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based "
             "Localization, ICCV 2017",
    uses_gradients=True, class_specific=True,
)
def gradcam(layer: Any = None) -> Any:
    """``ReLU(sum_k mean_ij(dy^c/dA^k_ij) A^k)``."""
    from .gradient import GradCAM

    return GradCAM(layer)


@describe(
    summary="Grad-CAM++: positive gradients weighted by higher-order terms (paper's exp score)",
    citation="Chattopadhay et al., Grad-CAM++: Generalized Gradient-based Visual Explanations for Deep "
             "Convolutional Networks, WACV 2018",
    uses_gradients=True, class_specific=True,
)
def gradcampp(layer: Any = None) -> Any:
    """Registered as ``gradcam++``; weights ``sum_ij alpha_ij ReLU(exp(y^c) g_ij)``."""
    from .gradient import GradCAMPlusPlus

    return GradCAMPlusPlus(layer)


@describe(
    summary="XGrad-CAM: gradients weighted by normalized activations (sensitivity and conservation axioms)",
    citation="Fu et al., Axiom-based Grad-CAM: Towards Accurate Visualization and Explanation of CNNs, BMVC 2020",
    uses_gradients=True, class_specific=True,
)
def xgradcam(layer: Any = None) -> Any:
    """``ReLU(sum_k (sum_ij A^k_ij g^k_ij / sum_ab A^k_ab) A^k)``."""
    from .gradient import XGradCAM

    return XGradCAM(layer)


@describe(
    summary="LayerCAM: element-wise positive gradients times activations (good at shallow layers)",
    citation="Jiang et al., LayerCAM: Exploring Hierarchical Class Activation Maps for Localization, IEEE TIP 2021",
    uses_gradients=True, class_specific=True,
)
def layercam(layer: Any = None) -> Any:
    """``ReLU(sum_k ReLU(g^k) * A^k)``."""
    from .gradient import LayerCAM

    return LayerCAM(layer)


@describe(
    summary="HiResCAM: element-wise gradients times activations, no averaging (faithful; signed)",
    citation="Draelos & Carin, Use HiResCAM instead of Grad-CAM for faithful explanations of convolutional "
             "neural networks, arXiv:2011.08891, 2020",
    uses_gradients=True, class_specific=True,
)
def hirescam(layer: Any = None) -> Any:
    """``sum_k g^k * A^k``."""
    from .gradient import HiResCAM

    return HiResCAM(layer)


@describe(
    summary="Score-CAM: channels weighted by the class probability of the input masked by each channel",
    citation="Wang et al., Score-CAM: Score-Weighted Visual Explanations for Convolutional Neural Networks, "
             "CVPR Workshops 2020",
    uses_gradients=False, class_specific=True,
)
def scorecam(layer: Any = None, batch_size: int = 32, score: str = "auto", progress: bool = True) -> Any:
    """One forward pass per (image, channel), ``batch_size`` at a time; ``score``: auto | softmax | sigmoid | logit."""
    from .perturbation import ScoreCAM

    return ScoreCAM(layer, batch_size=batch_size, score=score, progress=progress)


@describe(
    summary="Eigen-CAM: projection of the activations on their first singular vector (class-agnostic)",
    citation="Muhammad & Yeasin, Eigen-CAM: Class Activation Map using Principal Components, IJCNN 2020",
    uses_gradients=False, class_specific=False,
)
def eigencam(layer: Any = None, center: bool = False) -> Any:
    """``O v_1`` for the ``(hw, C)`` activation matrix ``O``; ``center=True`` makes it a PCA."""
    from .activation import EigenCAM

    return EigenCAM(layer, center=center)


@describe(
    summary="Ablation-CAM: channels weighted by the relative score drop when each is zeroed",
    citation="Desai & Ramaswamy, Ablation-CAM: Visual Explanations for Deep Convolutional Network via "
             "Gradient-free Localization, WACV 2020",
    uses_gradients=False, class_specific=True,
)
def ablationcam(layer: Any = None, batch_size: int = 64, progress: bool = True) -> Any:
    """Re-runs the model from the target layer once per (image, channel), ``batch_size`` at a time."""
    from .perturbation import AblationCAM

    return AblationCAM(layer, batch_size=batch_size, progress=progress)


@describe(
    summary="Random baseline: random channel weights (or uniform noise) as a control for localization metrics",
    citation=None,
    uses_gradients=False, class_specific=False,
)
def random(layer: Any = None, mode: str = "weights", seed: int | None = None) -> Any:
    """``mode="weights"``: ``ReLU(sum_k w_k A^k)``, ``w ~ U(-1, 1)``; ``mode="noise"``: ``U(0, 1)`` maps."""
    from .activation import RandomCAM

    return RandomCAM(layer, mode=mode, seed=seed)


@describe(
    summary="FPM: the foreground prediction map a WSOL head computes (output.maps['fpm'])",
    citation=None,
    uses_gradients=False, class_specific=True,
)
def fpm(key: str = "fpm") -> Any:
    """Reads ``output.maps[key]`` ``(B, K, h, w)`` of a model whose head produces it."""
    from .activation import FPMReadout

    return FPMReadout(key)


@describe(
    summary="Integrated Gradients: path integral of input gradients from a baseline image (input resolution)",
    citation="Sundararajan, Taly & Yan, Axiomatic Attribution for Deep Networks, ICML 2017",
    uses_gradients=True, class_specific=True,
)
def integrated_gradients(steps: int = 50, rule: str = "gausslegendre", baseline: str = "black", batch_size: int = 32,
                         progress: bool = True) -> Any:
    """``sum_ch (x - x') * int_0^1 dy^c(x' + a (x - x'))/dx da``; ``rule``: gausslegendre | riemann_* ."""
    from .input_space import IntegratedGradients

    return IntegratedGradients(steps=steps, rule=rule, baseline=baseline, batch_size=batch_size, progress=progress)


@describe(
    summary="Input x gradient: the image times the gradient of the target logit (input resolution)",
    citation="Shrikumar et al., Not Just a Black Box: Learning Important Features Through Propagating Activation "
             "Differences, arXiv:1605.01713, 2016",
    uses_gradients=True, class_specific=True,
)
def input_x_gradient(batch_size: int = 32) -> Any:
    """``sum_ch x * dy^c/dx``."""
    from .input_space import InputXGradient

    return InputXGradient(batch_size=batch_size)


@describe(
    summary="Occlusion: mean drop of the target logit when a sliding patch covering each pixel is blacked out",
    citation="Zeiler & Fergus, Visualizing and Understanding Convolutional Networks, ECCV 2014",
    uses_gradients=False, class_specific=True,
)
def occlusion(window: int = 16, stride: int = 8, baseline: str = "black", batch_size: int = 64,
              progress: bool = True) -> Any:
    """One forward pass per (image, patch position), ``batch_size`` at a time."""
    from .input_space import Occlusion

    return Occlusion(window=window, stride=stride, baseline=baseline, batch_size=batch_size, progress=progress)
