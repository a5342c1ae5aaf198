"""Light factories of the VMamba plugin: metadata plus a deferred import.

Imports only the standard library, :mod:`medcam.registry`, :mod:`medcam.features`
and the torch-free :mod:`medcam_vmamba.configs`; torch and the architecture load
inside the factories. Registered names:

* backbones: one per configuration in :data:`medcam_vmamba.configs.CONFIGS`
  (``vmamba_tiny_s1l8``, ..., ``vanilla_vmamba_base``, ``vmamba_tiny_sr``), the
  aliases ``vmamba_tiny/small/base`` and ``vmamba`` (any configuration);
* head: ``vmamba_classifier`` (LayerNorm -> global average pool -> Linear);
* models: ``<configuration>_in1k`` presets, the official ImageNet-1K classifiers.
"""
from __future__ import annotations

from typing import Any, Callable

from medcam.registry import Preset, describe

from .configs import ALIASES, CONFIGS, STRIDES, VMambaConfig, get_config, make_config

CITATION = "Liu et al., VMamba: Visual State Space Model, NeurIPS 2024"
SR_CITATION = (CITATION + "; Wang et al., Weakly supervised chest X-ray abnormality localization with "
               "non-linear modulation and foreground control, Scientific Reports 2024")


def _summary(name: str, cfg: VMambaConfig) -> str:
    params = cfg.num_params() / 1e6
    return (f"{cfg.official}: depths {list(cfg.depths)}, dims {cfg.dims}, d_state {cfg.d_state}, "
            f"ssm_ratio {cfg.ssm_ratio:g}, {params:.2f}M parameters with a 1000-class head")


def _backbone_factory(name: str) -> Callable[..., Any]:
    """The registered factory of configuration ``name`` (an alias gets its target's architecture)."""
    cfg = get_config(name)

    def factory(in_chans: int = 3, pretrained: bool = False, checkpoint_path: str | None = None,
                out_indices: list[int] | None = None, drop_path_rate: float = cfg.drop_path_rate,
                out_norm: bool = True, grad_checkpointing: bool = False, kernel_backend: str = "auto") -> Any:
        from .factories import build_backbone

        return build_backbone(name, cfg, in_chans=in_chans, pretrained=pretrained, checkpoint_path=checkpoint_path,
                              out_indices=out_indices, drop_path_rate=drop_path_rate, out_norm=out_norm,
                              grad_checkpointing=grad_checkpointing, kernel_backend=kernel_backend)

    target = f" (alias of {ALIASES[name]})" if name in ALIASES else ""
    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = (
        f"VMamba backbone '{name}'{target}: {_summary(name, cfg)}.\n\n"
        "Levels: stage outputs before downsampling, (B, dims * 2**i, H / s_i, W / s_i) at strides 4, 8, 16, 32, "
        "through a LayerNorm each when out_norm (as VMamba's Backbone_VSSM). Input H, W divisible by 32.\n"
        "pretrained: load the official ImageNet-1K weights (downloaded once); checkpoint_path: load a file; "
        "out_indices: levels to return; drop_path_rate: stochastic depth; grad_checkpointing: save memory; "
        "kernel_backend: auto (by device), torch, triton or mamba (forced: an error, never a silent fallback)."
    )
    meta = dict(summary=_summary(name, cfg) + target, citation=SR_CITATION if name == "vmamba_tiny_sr" else CITATION,
                channels=cfg.channels, strides=list(STRIDES), cam_level=-1, layout="tokens",
                params_1k=round(cfg.num_params() / 1e6, 2), checkpoint=cfg.url)
    return describe(**meta)(factory)


vanilla_vmamba_tiny = _backbone_factory("vanilla_vmamba_tiny")
vanilla_vmamba_small = _backbone_factory("vanilla_vmamba_small")
vanilla_vmamba_base = _backbone_factory("vanilla_vmamba_base")
vmamba_tiny_s2l5 = _backbone_factory("vmamba_tiny_s2l5")
vmamba_small_s2l15 = _backbone_factory("vmamba_small_s2l15")
vmamba_base_s2l15 = _backbone_factory("vmamba_base_s2l15")
vmamba_tiny_s1l8 = _backbone_factory("vmamba_tiny_s1l8")
vmamba_small_s1l20 = _backbone_factory("vmamba_small_s1l20")
vmamba_base_s1l20 = _backbone_factory("vmamba_base_s1l20")
vmamba_tiny_sr = _backbone_factory("vmamba_tiny_sr")
vmamba_tiny = _backbone_factory("vmamba_tiny")
vmamba_small = _backbone_factory("vmamba_small")
vmamba_base = _backbone_factory("vmamba_base")


@describe(
    summary="VMamba with any configuration (depths, dims, d_state, ratios, gating, downsample/stem versions)",
    citation=CITATION,
    channels=[96, 192, 384, 768],
    strides=list(STRIDES),
    cam_level=-1,
    layout="tokens",
)
def vmamba(in_chans: int = 3, depths: tuple[int, ...] = (2, 2, 9, 2), dims: int = 96, d_state: int = 16,
           ssm_ratio: float = 2.0, mlp_ratio: float = 4.0, gate: bool = True, conv_bias: bool = True,
           downsample: str = "v2", patch_embed: str = "v1", dt_rank: int | None = None, d_conv: int = 3,
           drop_path_rate: float = 0.1, out_indices: list[int] | None = None, out_norm: bool = True,
           grad_checkpointing: bool = False, checkpoint_path: str | None = None, kernel_backend: str = "auto") -> Any:
    """A VMamba backbone of any configuration (defaults: the official ``VSSM`` class defaults).

    Levels have ``dims * (1, 2, 4, 8)`` channels at strides 4, 8, 16, 32. See
    :class:`medcam_vmamba.configs.VMambaConfig` for each parameter; e.g. a tiny
    test model: ``{"name": "vmamba", "depths": [1, 1, 1, 1], "dims": 16}``.
    """
    from .factories import build_backbone

    cfg = make_config(depths=depths, dims=dims, d_state=d_state, ssm_ratio=ssm_ratio, mlp_ratio=mlp_ratio,
                      gate=gate, conv_bias=conv_bias, downsample=downsample, patch_embed=patch_embed,
                      dt_rank=dt_rank, d_conv=d_conv, drop_path_rate=drop_path_rate, official="custom")
    return build_backbone("vmamba", cfg, in_chans=in_chans, checkpoint_path=checkpoint_path,
                          out_indices=out_indices, out_norm=out_norm, grad_checkpointing=grad_checkpointing,
                          kernel_backend=kernel_backend)


@describe(
    summary="VMamba's classifier: LayerNorm -> global average pooling -> Linear (loads official weights)",
    citation=CITATION,
)
def vmamba_classifier(feature_info: Any, num_classes: int, level: int | None = None, dropout: float = 0.0,
                      checkpoint_path: str | None = None) -> Any:
    """``logits = fc(dropout(GAP(LN(F_level))))`` on level ``level`` (default: the CAM level).

    ``checkpoint_path``: an official VMamba checkpoint whose ``classifier.norm`` and
    ``classifier.head`` fill this head (then ``num_classes`` must be 1000).
    """
    from .factories import build_classifier_head

    return build_classifier_head(feature_info, num_classes, level=level, dropout=dropout,
                                 checkpoint_path=checkpoint_path)


def _in1k_preset(name: str) -> Preset:
    cfg = CONFIGS[name]
    return Preset(
        {"backbone": {"name": name, "out_norm": False}, "head": {"name": "vmamba_classifier"},
         "num_classes": 1000, "preprocess": {"size": [224, 224]}},
        summary=f"{cfg.official} ImageNet-1K classifier, the official architecture (top-1 {cfg.top1}); "
                f"weights: medcam_vmamba.load_official_checkpoint(model, '{name}' or a path)",
        citation=SR_CITATION if name == "vmamba_tiny_sr" else CITATION,
        checkpoint=cfg.url,
    )


vanilla_vmamba_tiny_in1k = _in1k_preset("vanilla_vmamba_tiny")
vanilla_vmamba_small_in1k = _in1k_preset("vanilla_vmamba_small")
vanilla_vmamba_base_in1k = _in1k_preset("vanilla_vmamba_base")
vmamba_tiny_s2l5_in1k = _in1k_preset("vmamba_tiny_s2l5")
vmamba_small_s2l15_in1k = _in1k_preset("vmamba_small_s2l15")
vmamba_base_s2l15_in1k = _in1k_preset("vmamba_base_s2l15")
vmamba_tiny_s1l8_in1k = _in1k_preset("vmamba_tiny_s1l8")
vmamba_small_s1l20_in1k = _in1k_preset("vmamba_small_s1l20")
vmamba_base_s1l20_in1k = _in1k_preset("vmamba_base_s1l20")
vmamba_tiny_sr_in1k = _in1k_preset("vmamba_tiny_sr")
