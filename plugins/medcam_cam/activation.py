"""Methods that read activations or the model's own maps, without gradients:
CAM, Eigen-CAM, KPCA-CAM, FEM, a random baseline and the FPM readout.

Notation as in :mod:`medcam_cam.gradient`: ``A^k`` is channel ``k`` of the
target layer's activations ``(B, C, h, w)``. Every method returns raw maps
``(B, T, h, w)``, one per target.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from medcam.attribution import Attribution, AttributionContext
from medcam.capabilities import CamWeightsHead, ClassMapHead, require
from medcam.errors import AttributionError, CapabilityError, ShapeError, SpecError
from medcam.model import MedcamModel, ModelOutput

from .gradient import weighted_sum
from medcam.projection import first_component, kernel_first_component

__all__ = ["CAM", "EigenCAM", "KPCACAM", "FEM", "RandomCAM", "FPMReadout"]


def _cam_head(model: nn.Module | None) -> nn.Module:
    """The model's head when it offers class activation maps: ``cam_weights()`` or ``class_maps()``."""
    head = model.head if isinstance(model, MedcamModel) else None
    if isinstance(head, (CamWeightsHead, ClassMapHead)):
        return head
    kind = type(head).__name__ if head is not None else type(model).__name__
    raise CapabilityError(f"cam needs a head with level and cam_weights() (pool, then linear: CamWeightsHead) or "
                          f"class_maps() (ClassMapHead); {kind} has neither (use gradcam, which works with any head)")


class CAM(Attribution):
    """Class activation mapping (Zhou et al., "Learning Deep Features for Discriminative
    Localization", CVPR 2016, eq. 2).

    For a head ``y^c = sum_k w^c_k GAP(A^k) + b^c``:  ``M^c = sum_k w^c_k A^k``
    (no ReLU), with ``w`` from the head's ``cam_weights()`` ``(K, C)`` and ``A``
    the level the head pools (``head.level``). A head that computes its class maps
    itself (:class:`medcam.capabilities.ClassMapHead`: the FPM head's classification
    branch, VMamba's LayerNorm + linear) gives ``M^c = class_maps(features)[c]``.
    """

    def default_level(self, model: nn.Module) -> int | None:
        return int(_cam_head(model).level)

    def check_model(self, model: nn.Module) -> None:
        """Refuse (at assembly) a model whose head offers no class activation maps."""
        _cam_head(model)

    def compute(self, ctx: AttributionContext) -> Tensor:
        head = _cam_head(ctx.model)
        if ctx.layer is None or ctx.layer.level != int(head.level):
            where = ctx.layer.name if ctx.layer is not None else "no layer"
            raise ValueError(f"cam weights apply to the level the head pools (level {int(head.level)}), "
                             f"not {where}; leave layer unset")
        if not isinstance(head, CamWeightsHead):
            return self._head_maps(ctx, head)
        return weighted_sum(self.channel_weights(ctx), ctx.require_activations())

    @staticmethod
    def _head_maps(ctx: AttributionContext, head: nn.Module) -> Tensor:
        """``(B, T, h, w)``: the head's own class maps of each target."""
        if ctx.features is None:
            raise AttributionError("cam on a class-map head needs the backbone levels (a MedcamModel output "
                                   "with return_features=True)")
        features = list(ctx.features)
        features[int(head.level)] = ctx.require_activations()  # the captured level (in the graph)
        maps = head.class_maps(features)                               # (B, K, h, w)
        b, t = ctx.targets.shape
        return maps.gather(1, ctx.targets[:, :, None, None].expand(b, t, *maps.shape[-2:]))

    def channel_weights(self, ctx: AttributionContext) -> Tensor:
        """``(B, T, C)``: the head's class weights ``w^c_k`` of each target."""
        head = require(_cam_head(ctx.model), CamWeightsHead, "head", "cam's per-channel weights")
        weights = head.cam_weights()                                   # (K, C)
        acts = ctx.require_activations()
        if weights.dim() != 2 or weights.shape[1] != acts.shape[1]:
            raise ShapeError(f"cam_weights() is {tuple(weights.shape)} but level {head.level} has "
                             f"{acts.shape[1]} channels; expected (K, {acts.shape[1]})")
        return weights[ctx.targets].to(acts.dtype)

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        return self.channel_weights(ctx)[..., None, None] * ctx.require_activations()[:, None]


class EigenCAM(Attribution):
    """Eigen-CAM (Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal
    Components", IJCNN 2020).

    With ``O`` the ``(h w, C)`` activation matrix of one image and
    ``O = U S V^T`` its singular value decomposition, ``L = O v_1`` (projection on
    the first right singular vector). Class-agnostic: every target gets the same map.

    ``center=True`` subtracts each channel's spatial mean from ``O`` first (a
    PCA, as pytorch-grad-cam does). The sign of ``v_1`` is arbitrary; medcam
    picks the sign that correlates positively with the channel-mean activation
    map (pytorch-grad-cam does not, and its ReLU then can erase the map).
    """

    def __init__(self, layer: int | str | None = None, center: bool = False):
        super().__init__(layer)
        self.center = bool(center)

    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        b, c, h, w = acts.shape
        maps = first_component(acts, self.center)[:, None]
        return maps.expand(b, ctx.targets.shape[1], h, w)


class KPCACAM(Attribution):
    """KPCA-CAM (Karmani et al., "KPCA-CAM: Visual Explainability of Deep Computer Vision
    Models using Kernel PCA", MMSP 2024): Eigen-CAM with kernel PCA.

    The positions of the centred ``(h w, C)`` activation matrix are projected on the first
    kernel principal component under ``k(a, b) = tanh(gamma <a, b> + coef0)`` (the sigmoid
    kernel; ``gamma`` default ``1 / C``, as scikit-learn's ``KernelPCA`` that pytorch-grad-cam
    calls): ``L = sqrt(lambda_1) a_1`` of the double-centred kernel matrix (Schölkopf, Smola &
    Müller, Neural Computation 1998). Class-agnostic; the sign correlates positively with the
    channel sum of the activations.
    """

    def __init__(self, layer: int | str | None = None, gamma: float | None = None, coef0: float = 1.0):
        super().__init__(layer)
        self.gamma = gamma
        self.coef0 = float(coef0)

    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        b, _, h, w = acts.shape
        maps = kernel_first_component(acts, self.gamma, self.coef0)[:, None]
        return maps.expand(b, ctx.targets.shape[1], h, w)


class FEM(Attribution):
    """FEM, the feature explanation method (Fuad et al., "Features Understanding in 3D CNNs
    for Actions Recognition in Video", IPTA 2020): channels weighted by the share of their
    positions that are outliers by the ``k``-sigma rule,

    ``w_k = mean_ij 1[A^k_ij > mu_k + k sigma_k]`` (``mu_k``, ``sigma_k`` the spatial mean and
    population standard deviation of channel ``k``) and ``L = sum_k w_k A^k``. Class-agnostic.
    """

    def __init__(self, layer: int | str | None = None, k: float = 2.0):
        super().__init__(layer)
        self.k = float(k)

    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        b, _, h, w = acts.shape
        maps = weighted_sum(self._weights(acts)[:, None], acts)
        return maps.expand(b, ctx.targets.shape[1], h, w)

    def _weights(self, acts: Tensor) -> Tensor:
        mean = acts.mean(dim=(-2, -1), keepdim=True)
        std = acts.std(dim=(-2, -1), keepdim=True, correction=0)
        return (acts > mean + self.k * std).to(acts.dtype).mean(dim=(-2, -1))        # (B, C)

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        terms = (self._weights(acts)[..., None, None] * acts)[:, None]
        return terms.expand(-1, ctx.targets.shape[1], -1, -1, -1)


class RandomCAM(Attribution):
    """Random baseline: a control for localization metrics.

    ``mode="weights"``: ``L = ReLU(sum_k w_k A^k)`` with ``w_k ~ U(-1, 1)``
    (Grad-CAM's form with random channel weights, as pytorch-grad-cam's
    RandomCAM); ``mode="noise"``: ``L ~ U(0, 1)`` per position. ``seed`` makes
    it reproducible (the same seed gives the same maps).
    """

    MODES = ("weights", "noise")

    def __init__(self, layer: int | str | None = None, mode: str = "weights", seed: int | None = None):
        super().__init__(layer)
        if mode not in self.MODES:
            raise SpecError(f"random.mode: expected one of {', '.join(self.MODES)}, got {mode!r}")
        self.mode = mode
        self.seed = seed

    def compute(self, ctx: AttributionContext) -> Tensor:
        acts = ctx.require_activations()
        b, c, h, w = acts.shape
        t = ctx.targets.shape[1]
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device=acts.device)
            generator.manual_seed(int(self.seed))
        if self.mode == "noise":
            return torch.rand((b, t, h, w), generator=generator, device=acts.device, dtype=acts.dtype)
        weights = torch.rand((b, t, c), generator=generator, device=acts.device, dtype=acts.dtype) * 2 - 1
        return F.relu(weighted_sum(weights, acts))

    def channel_terms(self, ctx: AttributionContext) -> Tensor:
        if self.mode == "noise":
            raise ValueError("random with mode='noise' has no per-channel terms; eigen_smooth does not apply")
        acts = ctx.require_activations()
        b, c = acts.shape[:2]
        generator = None
        if self.seed is not None:
            generator = torch.Generator(device=acts.device)
            generator.manual_seed(int(self.seed))
        weights = torch.rand((b, ctx.targets.shape[1], c), generator=generator, device=acts.device,
                             dtype=acts.dtype) * 2 - 1
        return weights[..., None, None] * acts[:, None]


class FPMReadout(Attribution):
    """Foreground prediction map readout: the map a WSOL head computes itself.

    Returns ``output.maps[key][b, c]`` for target ``c`` (a single-channel map
    serves every class). Needs a model whose head puts ``(B, K, h, w)`` (or
    ``(B, 1, h, w)``) maps in :attr:`ModelOutput.maps`.
    """

    uses_layer = False

    def __init__(self, key: str = "fpm"):
        super().__init__(None)
        self.key = key

    def compute(self, ctx: AttributionContext) -> Tensor:
        maps = ctx.output.maps if isinstance(ctx.output, ModelOutput) else {}
        if self.key not in maps:
            available = ", ".join(sorted(maps)) or "none"
            raise ValueError(f"fpm reads output.maps['{self.key}'], which this model does not produce "
                             f"(its maps: {available}); use a model with a foreground prediction map head, "
                             f"or a CAM method such as gradcam")
        fpm = maps[self.key]
        b, t = ctx.targets.shape
        if not isinstance(fpm, Tensor) or fpm.dim() != 4 or fpm.shape[0] != b:
            shape = tuple(fpm.shape) if isinstance(fpm, Tensor) else type(fpm).__name__
            raise ShapeError(f"output.maps['{self.key}'] must be (B={b}, K, h, w), got {shape}")
        if fpm.shape[1] == 1:
            return fpm.expand(b, t, *fpm.shape[2:])
        if fpm.shape[1] != ctx.logits.shape[1]:
            raise ShapeError(f"output.maps['{self.key}'] has {fpm.shape[1]} channels; expected 1 or one per "
                             f"class ({ctx.logits.shape[1]})")
        index = ctx.targets[:, :, None, None].expand(b, t, *fpm.shape[2:])
        return fpm.gather(1, index)
