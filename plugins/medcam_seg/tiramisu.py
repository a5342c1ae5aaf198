"""FC-DenseNet ("The One Hundred Layers Tiramisu", Jegou et al., CVPR Workshops 2017), in plain torch.

Building blocks, as in the paper (Section 3 and Table 1):

* dense layer ``H_l``: BN -> ReLU -> 3x3 conv (``growth`` maps) -> dropout(0.2); its input is
  the concatenation of the block input and every earlier layer's output,
  ``x_l = H_l([x_0, x_1, ..., x_{l-1}])``;
* transition down: BN -> ReLU -> 1x1 conv (same channel count) -> dropout -> 2x2 max pooling;
* transition up: 3x3 transposed conv, stride 2, on the feature maps to upsample,
  then concatenated with the skip connection of the same resolution.

Network (Table 2 configurations in :data:`medcam_seg.configs.TIRAMISU_CONFIGS`): a 3x3
conv to 48 maps; five (dense block, transition down) pairs, each block's full
output (input + new maps) saved as a skip; a bottleneck dense block; five
(transition up, dense block) pairs. To keep the up path linear in size, only the
*new* maps of the bottleneck and of each up-path dense block are upsampled (not
their inputs); the last block's full output goes to a 1x1 conv giving the logits.

Pooling uses ``ceil_mode`` and the upsampled maps are cropped to their skip, so
any input size works (the paper crops the same way).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, NamedTuple, Sequence

import torch
from torch import Tensor, nn

from medcam.errors import SpecError
from medcam.features import FeatureInfo, FeatureLevel, normalize_out_indices
from medcam.model import check_images
from medcam.state_dict import load_weights

from .configs import TIRAMISU_CONFIGS, TIRAMISU_FIRST_CONV, TIRAMISU_STRIDES, tiramisu_encoder_channels

__all__ = ["DenseLayer", "DenseBlock", "TransitionDown", "TransitionUp", "TiramisuEncoder", "FCDenseNet",
           "TiramisuBackbone", "tiramisu_encoder_keys"]


def _check_config(depth: int, in_chans: int) -> dict:
    """The configuration of FC-DenseNet``depth`` (``drop_rate`` is declared by the registered factories)."""
    if depth not in TIRAMISU_CONFIGS:
        raise SpecError(f"tiramisu depth must be one of {sorted(TIRAMISU_CONFIGS)}, got {depth}")
    if isinstance(in_chans, bool) or not isinstance(in_chans, int) or in_chans < 1:
        raise SpecError(f"in_chans must be a positive integer, got {in_chans!r}")
    return TIRAMISU_CONFIGS[depth]


class DenseLayer(nn.Sequential):
    """BN -> ReLU -> 3x3 conv to ``growth`` maps -> dropout: ``(B, C, H, W) -> (B, growth, H, W)``."""

    def __init__(self, in_channels: int, growth: int, drop_rate: float):
        super().__init__(nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True),
                         nn.Conv2d(in_channels, growth, 3, padding=1, bias=True), nn.Dropout2d(drop_rate))


class DenseBlock(nn.Module):
    """``n_layers`` dense layers, each fed the concatenation of the input and all earlier outputs.

    ``forward(x)``: ``(B, C, H, W) -> (B, n_layers * growth, H, W)``, the *new* maps only;
    the block's full output is ``torch.cat([x, block(x)], 1)``.
    """

    def __init__(self, in_channels: int, growth: int, n_layers: int, drop_rate: float):
        super().__init__()
        self.layers = nn.ModuleList(DenseLayer(in_channels + i * growth, growth, drop_rate) for i in range(n_layers))
        self.out_channels = n_layers * growth

    def forward(self, x: Tensor) -> Tensor:
        stack, new = x, []
        for layer in self.layers:
            y = layer(stack)
            new.append(y)
            stack = torch.cat([stack, y], dim=1)
        return torch.cat(new, dim=1)


class TransitionDown(nn.Sequential):
    """BN -> ReLU -> 1x1 conv (channels kept) -> dropout -> 2x2 max pool (ceil): ``(B, C, H, W) ->
    (B, C, ceil(H/2), ceil(W/2))``."""

    def __init__(self, channels: int, drop_rate: float):
        super().__init__(nn.BatchNorm2d(channels), nn.ReLU(inplace=True),
                         nn.Conv2d(channels, channels, 1, bias=True), nn.Dropout2d(drop_rate),
                         nn.MaxPool2d(2, ceil_mode=True))


class TransitionUp(nn.Module):
    """3x3 transposed conv, stride 2 (channels kept), cropped to the skip and concatenated with it.

    ``forward(x, skip)``: ``(B, C, h, w)``, ``(B, S, H, W)`` with ``H <= 2h``, ``W <= 2w``
    -> ``(B, C + S, H, W)``.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.ConvTranspose2d(channels, channels, 3, stride=2, padding=1, output_padding=1, bias=True)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        up = self.conv(x)[..., : skip.shape[-2], : skip.shape[-1]]
        return torch.cat([up, skip], dim=1)


class EncoderOutput(NamedTuple):
    """What the Tiramisu down path computes.

    ``skips``: the five dense-block outputs (input + new maps) at strides 1, 2, 4, 8, 16;
    ``downs``: the five transition-down outputs at strides 2, 4, 8, 16, 32;
    ``bottleneck``: the bottleneck block's new maps at stride 32.
    """

    skips: list[Tensor]
    downs: list[Tensor]
    bottleneck: Tensor


class TiramisuEncoder(nn.Module):
    """The FC-DenseNet down path: 3x3 conv to 48 maps, 5 x (dense block, transition down), bottleneck block.

    Args:
        depth: 56, 67 or 103 (the paper's configurations).
        in_chans: image channels.
        drop_rate: dropout probability of every dense layer and transition down.
    """

    def __init__(self, depth: int, in_chans: int = 3, drop_rate: float = 0.2):
        super().__init__()
        cfg = _check_config(depth, in_chans)
        self.depth = depth
        growth = cfg["growth"]
        self.stem = nn.Conv2d(in_chans, TIRAMISU_FIRST_CONV, 3, padding=1, bias=True)
        channels = TIRAMISU_FIRST_CONV
        self.blocks, self.transitions = nn.ModuleList(), nn.ModuleList()
        self.skip_channels: list[int] = []
        for n_layers in cfg["down"]:
            self.blocks.append(DenseBlock(channels, growth, n_layers, drop_rate))
            channels += n_layers * growth
            self.skip_channels.append(channels)
            self.transitions.append(TransitionDown(channels, drop_rate))
        self.down_channels = channels
        self.bottleneck = DenseBlock(channels, growth, cfg["bottleneck"], drop_rate)

    def stage(self, i: int, x: Tensor) -> tuple[Tensor, Tensor]:
        """Run down stage ``i`` (0-4) on its input; returns ``(skip, transition-down output)``.

        Stage 0 takes the image ``(B, in_chans, H, W)`` (it applies the first conv).
        """
        if i == 0:
            x = self.stem(x)
        skip = torch.cat([x, self.blocks[i](x)], dim=1)
        return skip, self.transitions[i](skip)

    def forward(self, x: Tensor) -> EncoderOutput:
        skips, downs = [], []
        for i in range(len(self.blocks)):
            skip, x = self.stage(i, x)
            skips.append(skip)
            downs.append(x)
        return EncoderOutput(skips, downs, self.bottleneck(x))


def _init_weights(module: nn.Module) -> None:
    """He initialization (as the paper) for convs, unit/zero BN."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _stem_prefixes(keys: Iterable[str]) -> list[str]:
    return [k[: -len("stem.weight")] for k in keys if k == "stem.weight" or k.endswith(".stem.weight")]


def tiramisu_encoder_keys(state: dict[str, Tensor], reference: Mapping[str, Any]) -> dict[str, Tensor]:
    """Key converter (:data:`medcam.state_dict.Converter`): the Tiramisu down path of ``state`` in the layout of
    ``reference`` (a :class:`TiramisuEncoder` or a :class:`TiramisuBackbone`).

    The file may hold the encoder alone, a :class:`TiramisuBackbone` (``encoder.``, with its
    ``final_norm``), an :class:`FCDenseNet` (``encoder.``), a medcam classifier (``backbone.encoder.``)
    or segmenter (``net.encoder.``) state dict: the encoder is found by its one ``stem.weight``;
    everything else in the file (heads, the up path) is left out.

    Raises:
        ValueError: the file holds no Tiramisu encoder, or more than one.
    """
    stems = _stem_prefixes(state)
    if len(stems) != 1:
        raise ValueError(f"expected one Tiramisu encoder (a 'stem.weight' key), found {len(stems)}")
    source, target = stems[0], _stem_prefixes(reference)[0]
    parts = {source: target}
    if source.endswith("encoder.") and target.endswith("encoder."):  # a backbone's final BN-ReLU
        parts[source[: -len("encoder.")] + "final_norm."] = target[: -len("encoder.")] + "final_norm."
    return {parts[p] + k[len(p):]: v for k, v in state.items() for p in parts if k.startswith(p)}


class FCDenseNet(nn.Module):
    """FC-DenseNet segmenter: normalized images ``(B, in_chans, H, W)`` -> logits ``(B, num_classes, H, W)``.

    Args:
        depth: 56, 67 or 103 (Table 2 of Jegou et al. 2017).
        in_chans: image channels.
        num_classes: output channels (1 for a binary mask).
        drop_rate: dropout probability (paper: 0.2).
        encoder_checkpoint: optional state dict file to initialize the down path
            (see :func:`tiramisu_encoder_keys`), e.g. a classifier trained on ``tiramisu103_encoder``.
    """

    def __init__(self, depth: int, in_chans: int = 3, num_classes: int = 1, drop_rate: float = 0.2,
                 encoder_checkpoint: str | None = None):
        super().__init__()
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
            raise SpecError(f"num_classes must be a positive integer, got {num_classes!r}")
        cfg = _check_config(depth, in_chans)
        growth = cfg["growth"]
        self.depth, self.in_chans, self.num_classes = depth, in_chans, num_classes
        self.encoder = TiramisuEncoder(depth, in_chans, drop_rate)
        self.ups, self.up_blocks = nn.ModuleList(), nn.ModuleList()
        to_upsample = self.encoder.bottleneck.out_channels
        for skip_channels, n_layers in zip(reversed(self.encoder.skip_channels), cfg["up"]):
            self.ups.append(TransitionUp(to_upsample))
            stack = to_upsample + skip_channels
            self.up_blocks.append(DenseBlock(stack, growth, n_layers, drop_rate))
            to_upsample = n_layers * growth
        self.classifier = nn.Conv2d(stack + to_upsample, num_classes, 1, bias=True)
        _init_weights(self)
        if encoder_checkpoint:
            load_weights(self.encoder, encoder_checkpoint, what=f"FC-DenseNet{depth}'s encoder",
                         convert=tiramisu_encoder_keys)

    @property
    def cam_layer(self) -> str:
        """The module CAM methods read by default: the bottleneck dense block."""
        return "encoder.bottleneck"

    def forward(self, x: Tensor) -> Tensor:
        check_images(x, self.in_chans, what=f"tiramisu{self.depth} input")
        enc = self.encoder(x)
        new = enc.bottleneck
        last = len(self.ups) - 1
        for i, (up, block) in enumerate(zip(self.ups, self.up_blocks)):
            stack = up(new, enc.skips[last - i])
            new = block(stack)
        return self.classifier(torch.cat([stack, new], dim=1))

    def extra_repr(self) -> str:
        return f"depth={self.depth}, in_chans={self.in_chans}, num_classes={self.num_classes}"


class TiramisuBackbone(nn.Module):
    """The FC-DenseNet down path as a medcam backbone (seed: a pneumothorax classifier on FC-DenseNet103).

    Levels (strides 2, 4, 8, 16, 32): the outputs of transitions down 1-4, then the
    bottleneck block's full output (transition-down-5 maps + new maps) after a final
    BN-ReLU (the dense layers are pre-activation, so their output is not normalized;
    DenseNet's classifier does the same). Channels are
    :func:`medcam_seg.configs.tiramisu_encoder_channels`.

    ``forward(x)``: ``(B, in_chans, H, W)`` -> list of ``(B, C_i, ceil(H/s_i), ceil(W/s_i))``.
    ``forward_from(x, level)`` runs the stages after output level ``level``.
    """

    #: forward_from(levels[k], k) reproduces levels[k + 1:] (medcam.capabilities.RescorableBackbone)
    forward_from_exact = True

    def __init__(self, depth: int, in_chans: int = 3, pretrained: bool = False, drop_rate: float = 0.2,
                 out_indices: Sequence[int] | None = None, checkpoint_path: str | None = None):
        super().__init__()
        if pretrained:
            raise SpecError(f"tiramisu{depth}_encoder: no pretrained weights exist; train one or pass "
                            f"checkpoint_path= (a state dict file)")
        self.depth = depth
        self.encoder = TiramisuEncoder(depth, in_chans, drop_rate)
        channels = tiramisu_encoder_channels(depth)
        self.final_norm = nn.Sequential(nn.BatchNorm2d(channels[-1]), nn.ReLU(inplace=True))
        self.out_indices = normalize_out_indices(out_indices, len(channels))
        modules = [f"encoder.transitions.{i}" for i in range(4)] + ["final_norm"]
        self.feature_info = FeatureInfo([FeatureLevel(channels[i], TIRAMISU_STRIDES[i], modules[i])
                                         for i in self.out_indices])
        _init_weights(self)
        if checkpoint_path:  # the final BN too when the file has it
            load_weights(self, checkpoint_path, what=f"FC-DenseNet{depth}'s encoder", convert=tiramisu_encoder_keys,
                         allow_missing=("final_norm.*",))

    def _stage(self, i: int, x: Tensor) -> Tensor:
        _, x = self.encoder.stage(i, x)
        if i == len(self.encoder.blocks) - 1:
            x = self.final_norm(torch.cat([x, self.encoder.bottleneck(x)], dim=1))
        return x

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for i in range(self.out_indices[-1] + 1):
            x = self._stage(i, x)
            if i in self.out_indices:
                out.append(x)
        return out

    def forward_from(self, x: Tensor, level: int) -> list[Tensor]:
        """Given output level ``level``'s map, run the later stages and return the later levels."""
        out = []
        for i in range(self.out_indices[level] + 1, self.out_indices[-1] + 1):
            x = self._stage(i, x)
            if i in self.out_indices:
                out.append(x)
        return out
