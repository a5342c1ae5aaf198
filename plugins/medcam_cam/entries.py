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


@describe(
    summary="Grad-CAM element-wise: positive parts of gradient x activation, summed over channels",
    citation="pytorch-grad-cam GradCAMElementWise (Gildenblat et al., 2021)",
    uses_gradients=True, class_specific=True,
)
def gradcamelementwise(layer: Any = None) -> Any:
    """``ReLU(sum_k ReLU(g^k * A^k))``."""
    from .gradient import GradCAMElementWise

    return GradCAMElementWise(layer)


@describe(
    summary="Eigen-Grad-CAM: first principal component of gradient x activation",
    citation="Muhammad & Yeasin, Eigen-CAM: Class Activation Map using Principal Components, IJCNN 2020 "
             "(gradient-weighted, as pytorch-grad-cam)",
    uses_gradients=True, class_specific=True,
)
def eigengradcam(layer: Any = None, center: bool = True) -> Any:
    """``O v_1`` of the ``(hw, C)`` matrix of ``g * A``; sign: positive correlation with ``sum_k g^k A^k``."""
    from .gradient import EigenGradCAM

    return EigenGradCAM(layer, center=center)


@describe(
    summary="Seg-Eigen-CAM: first principal component of |gradient| x activation, sign set by |min| vs |max|",
    citation="Chung & Ying, Seg-Eigen-CAM: Eigen-Value-Based Visual Explanations for Semantic Segmentation Models, "
             "Applied Sciences 2025",
    uses_gradients=True, class_specific=True,
)
def segeigencam(layer: Any = None) -> Any:
    """Eqs. 10-13 of the paper."""
    from .gradient import SegEigenCAM

    return SegEigenCAM(layer)


@describe(
    summary="Shapley-CAM: channels weighted by the gradient minus half the Hessian-vector product",
    citation="Cai et al., CAMs as Shapley Value-based Explainers, arXiv:2501.06261, 2025",
    uses_gradients=True, class_specific=True,
)
def shapleycam(layer: Any = None, score: str = "logit") -> Any:
    """``w_k = mean(g - HA / 2)``; ``score``: logit | rest (``z_c - CE(z, c)``)."""
    from .gradient import ShapleyCAM

    return ShapleyCAM(layer, score=score)


@describe(
    summary="Finer-CAM: a gradient CAM of the target against its most similar classes",
    citation="Zhang et al., Finer-CAM: Spotting the Difference Reveals Finer Details for Visual Explanation, "
             "CVPR 2025",
    uses_gradients=True, class_specific=True,
)
def finercam(layer: Any = None, base: Any = None, alpha: float = 1.0, ranks: list[int] = [1, 2, 3]  # noqa: B006
             ) -> Any:
    """Score ``sum_j p_j (z_c - alpha z_j) / sum_j p_j`` over the ``ranks``-th closest classes ``j``;
    ``base``: a gradient method name or part spec (None: gradcam)."""
    from .wrappers import FinerCAM

    return FinerCAM(layer, base=base or "gradcam", alpha=alpha, ranks=ranks)


@describe(
    summary="KPCA-CAM: first kernel-PCA component (sigmoid kernel) of the activations (class-agnostic)",
    citation="Karmani et al., KPCA-CAM: Visual Explainability of Deep Computer Vision Models using Kernel PCA, "
             "MMSP 2024",
    uses_gradients=False, class_specific=False,
)
def kpcacam(layer: Any = None, gamma: float | None = None, coef0: float = 1.0) -> Any:
    """Kernel ``tanh(gamma <a, b> + coef0)``, ``gamma`` default ``1 / C``."""
    from .activation import KPCACAM

    return KPCACAM(layer, gamma=gamma, coef0=coef0)


@describe(
    summary="FEM: channels weighted by their share of k-sigma outlier positions (class-agnostic)",
    citation="Fuad et al., Features Understanding in 3D CNNs for Actions Recognition in Video, IPTA 2020",
    uses_gradients=False, class_specific=False,
)
def fem(layer: Any = None, k: float = 2.0) -> Any:
    """``w_k = mean_ij 1[A^k_ij > mu_k + k sigma_k]``, ``L = sum_k w_k A^k``."""
    from .activation import FEM

    return FEM(layer, k=k)


@describe(
    summary="FullGrad: input-gradient and every layer's bias-gradient maps, summed (input resolution)",
    citation="Srinivas & Fleuret, Full-Gradient Representation for Neural Network Visualization, NeurIPS 2019",
    uses_gradients=True, class_specific=True,
)
def fullgrad() -> Any:
    """Reads every Conv2d / BatchNorm2d with a bias; no layer of its own choosing."""
    from .fullgrad import FullGrad

    return FullGrad(None)


@describe(
    summary="Sobel edges of the image: a model-free baseline (input resolution)",
    citation="Sobel & Feldman, A 3x3 isotropic gradient operator for image processing, 1968 "
             "(pytorch-grad-cam's sobel_cam)",
    uses_gradients=False, class_specific=False,
)
def sobelcam() -> Any:
    """``(|S_x * G| + |S_y * G|) / 2`` of the grey image."""
    from .input_space import SobelCAM

    return SobelCAM()


@describe(
    summary="Guided backpropagation: input gradient through ReLUs that pass only positive gradients",
    citation="Springenberg et al., Striving for Simplicity: The All Convolutional Net, ICLR Workshops 2015",
    uses_gradients=True, class_specific=True,
)
def guidedbackprop(batch_size: int = 32) -> Any:
    """Every ``nn.ReLU`` is guided during the call (restored afterwards)."""
    from .guided import GuidedBackprop

    return GuidedBackprop(batch_size)


@describe(
    summary="Guided Grad-CAM: guided backpropagation times the upsampled Grad-CAM map",
    citation="Selvaraju et al., Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization, "
             "ICCV 2017",
    uses_gradients=True, class_specific=True,
)
def guidedgradcam(layer: Any = None, batch_size: int = 32) -> Any:
    """``sum_ch R_0 * Up(Grad-CAM)``."""
    from .guided import GuidedGradCAM

    return GuidedGradCAM(layer, batch_size=batch_size)


@describe(
    summary="Refine-CAM: product of a base method's normalized maps over several layers",
    citation="pytorch-grad-cam 1.5.7 RefineCAM; arXiv:2605.14641, 2026",
    uses_gradients=True, class_specific=True,
)
def refinecam(layers: list[Any] | None = None, base: Any = None) -> Any:
    """``layers``: level indices or module names (None: every backbone level); ``base``: None = gradcam++."""
    from .wrappers import RefineCAM

    return RefineCAM(layers, base=base or "gradcam++")


@describe(
    summary="SESS: a base method on multi-scale sliding-window patches, score-weighted and fused",
    citation="Tyagi et al., SESS: Saliency Enhancing with Scaling and Sliding, ECCV 2022",
    uses_gradients=True, class_specific=True,
)
def sess(base: Any = None, scales: list[int] | None = None, num_scales: int = 12, scale_step: float = 2 / 7,
         window: int | None = None, step: int | None = None, pre_filter: float = 0.0, theta: float = 0.0,
         pool: str = "mean", smooth: bool = True, batch_size: int = 32, progress: bool = True) -> Any:
    """One image at a time; ``num_scales`` x windows patches per image; ``base``: None = gradcam."""
    from .wrappers import SESS

    return SESS(base=base or "gradcam", scales=scales, num_scales=num_scales, scale_step=scale_step, window=window, step=step,
                pre_filter=pre_filter, theta=theta, pool=pool, smooth=smooth, batch_size=batch_size,
                progress=progress)


@describe(
    summary="Smooth Grad-CAM++: Grad-CAM++ with derivatives averaged over noisy copies of the image",
    citation="Omeiza et al., Smooth Grad-CAM++: An Enhanced Inference Level Visualization Technique for Deep "
             "Convolutional Neural Network Models, arXiv:1908.01224, 2019",
    uses_gradients=True, class_specific=True,
)
def smoothgradcampp(layer: Any = None, samples: int = 4, std: float = 0.3, seed: int | None = 0) -> Any:
    """Registered as ``smoothgradcam++``; ``samples`` noisy copies, noise ``std`` on the [0, 1] image."""
    from .score_variants import SmoothGradCAMPlusPlus

    return SmoothGradCAMPlusPlus(layer, samples=samples, std=std, seed=seed)


@describe(
    summary="SS-CAM: Score-CAM with noisy channel masks, score gains averaged over draws",
    citation="Wang, Naidu et al., SS-CAM: Smoothed Score-CAM for Sharper Visual Feature Localization, "
             "arXiv:2006.14255, 2020",
    uses_gradients=False, class_specific=True,
)
def sscam(layer: Any = None, samples: int = 35, std: float = 2.0, seed: int | None = 0, batch_size: int = 32,
          progress: bool = True) -> Any:
    """``B x C x samples`` forward passes, ``batch_size`` at a time."""
    from .score_variants import SSCAM

    return SSCAM(layer, samples=samples, std=std, seed=seed, batch_size=batch_size, progress=progress)


@describe(
    summary="IS-CAM: Score-CAM gains integrated along scaled channel masks",
    citation="Naidu et al., IS-CAM: Integrated Score-CAM for Axiomatic-based Explanations, arXiv:2010.03023, 2020",
    uses_gradients=False, class_specific=True,
)
def iscam(layer: Any = None, samples: int = 10, coefficients: str = "linear", batch_size: int = 32,
          progress: bool = True) -> Any:
    """``coefficients``: linear (``i / N``) | cumulative (torchcam's)."""
    from .score_variants import ISCAM

    return ISCAM(layer, samples=samples, coefficients=coefficients, batch_size=batch_size, progress=progress)
