"""unet / unet++ / fpn / deeplabv3+ (smp decoders) on medcam backbones with different stride layouts."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.errors import ShapeError, SpecError
from medcam.model import MedcamSegmenter
from medcam.registry import backbones
from medcam_seg.smp_nets import default_decoder_channels, low_level_index

ARCHS = ["unet", "unet++", "fpn", "deeplabv3+"]
# stride-4-first (tiny_cnn, like PVT/VMamba) and stride-2-first (Tiramisu encoder, like ResNet)
ENCODERS = [{"name": "tiny_cnn", "width": 8}, {"name": "tiramisu56_encoder", "drop_rate": 0.0}]
# registered timm backbones, each paired with the decoders that exercise its layout
REAL_ENCODERS = [
    ("resnet18", "unet"), ("resnet18", "deeplabv3+"),   # strides 2..32
    ("pvt_v2_b0", "unet++"), ("pvt_v2_b0", "fpn"),      # token model, strides 4..32
    ("vgg11", "unet++"),                                # strides 1..32: the stride-1 level is smp's first entry
    ("efficientnet_b0", "fpn"),                         # two levels at stride 32: the last one is used
]


def _params(module):
    return {n: p for n, p in module.named_parameters()}


def _check_forward_backward(arch, encoder):
    seg = medcam.build_segmenter({"name": arch, "encoder": encoder, "in_chans": 1, "num_classes": 2})
    assert isinstance(seg, MedcamSegmenter)
    x = torch.rand(2, 1, 64, 64)
    logits = seg(x)
    assert logits.shape == (2, 2, 64, 64) and torch.isfinite(logits).all()
    logits.square().mean().backward()
    params = _params(seg.net)
    first_encoder_weight = next(p for n, p in params.items() if n.startswith("encoder.backbone."))
    head_weight = next(p for n, p in params.items() if n.startswith("head."))
    assert first_encoder_weight.grad is not None and first_encoder_weight.grad.abs().sum() > 0
    assert head_weight.grad is not None and head_weight.grad.abs().sum() > 0
    return seg


@pytest.mark.parametrize("encoder", ENCODERS, ids=lambda e: e["name"])
@pytest.mark.parametrize("arch", ARCHS)
def test_shapes_and_backward(arch, encoder):
    _check_forward_backward(arch, encoder)


@pytest.mark.slow
@pytest.mark.parametrize("encoder, arch", REAL_ENCODERS)
def test_registered_timm_backbones_as_encoders(encoder, arch):
    if encoder not in backbones:
        pytest.skip(f"backbone '{encoder}' is not registered")
    seg = _check_forward_backward(arch, encoder)
    bridge = seg.net.encoder
    assert bridge.strides == sorted(set(bridge.all_strides))
    if encoder == "efficientnet_b0":
        assert bridge.all_strides[-2:] == [32, 32] and bridge.levels[-1] == len(bridge.all_strides) - 1


@pytest.mark.parametrize("arch", ARCHS)
def test_three_channels_and_one_class(arch):
    seg = medcam.build_segmenter({"name": arch, "encoder": {"name": "tiny_cnn", "width": 8}}).eval()
    a, b = torch.rand(1, 3, 64, 32), torch.rand(1, 3, 64, 32)
    out_a, out_b = seg(a), seg(b)
    assert out_a.shape == (1, 1, 64, 32)
    assert not torch.allclose(out_a, out_b)  # the logits depend on the image
    assert seg.predict_mask(a).shape == (1, 64, 32)


def test_decoders_work_at_the_strides_the_encoder_has():
    """No fake zero-channel level for a stride-4-first encoder: the last decoder stage is the last real one."""
    x = torch.rand(1, 3, 64, 64)
    unet = medcam.build_segmenter({"name": "unet", "encoder": {"name": "tiny_cnn", "width": 8}}).net
    assert len(unet.decoder.blocks) == 4  # one per real level (4, 8, 16, 32)
    assert all(p.numel() > 0 for p in unet.parameters())
    assert unet.decode(x, unet.encoder(x)).shape == (1, 32, 64, 64)  # last block upsamples 4 -> 1
    upp = medcam.build_segmenter({"name": "unet++", "encoder": {"name": "tiny_cnn", "width": 8}}).net
    assert upp.decode(x, upp.encoder(x)).shape[-2:] == (32, 32)  # half of stride 4, then resized
    fpn = medcam.build_segmenter({"name": "fpn", "encoder": {"name": "tiny_cnn", "width": 8}}).net
    assert fpn.decode(x, fpn.encoder(x)).shape == (1, 128, 16, 16)
    dl = medcam.build_segmenter({"name": "deeplabv3+", "encoder": {"name": "tiny_cnn", "width": 8}}).net.eval()
    assert dl.low == 0 and dl.atrous_rates == [3, 6, 9]  # (6, 12, 18) at stride 16 -> same pixels at stride 32
    assert dl.decode(x, dl.encoder(x)).shape == (1, 256, 16, 16)


def test_default_decoder_channels_and_low_level_choice():
    assert default_decoder_channels(5) == [256, 128, 64, 32, 16]
    assert default_decoder_channels(3) == [256, 128, 64]
    assert default_decoder_channels(6) == [256, 128, 64, 32, 16, 16]
    assert low_level_index([2, 4, 8, 16, 32]) == 1
    assert low_level_index([4, 8, 16, 32]) == 0
    assert low_level_index([1, 2, 4, 8]) == 2
    assert low_level_index([8, 16, 32]) == 0
    assert low_level_index([32]) is None and low_level_index([1, 32]) is None


def test_input_size_must_be_divisible_by_the_largest_stride():
    seg = medcam.build_segmenter({"name": "unet", "encoder": "tiny_cnn"})
    with pytest.raises(ShapeError, match=r"unet input \(encoder 'tiny_cnn'\): height and width must be divisible "
                                         r"by 32, got \(50, 64\); resize or pad to \(64, 64\)"):
        seg(torch.rand(1, 3, 50, 64))


@pytest.mark.parametrize("spec, message", [
    ({"name": "fpn", "encoder": {"name": "tiny_cnn", "out_indices": [1, 2, 3]}},
     r"segmenter\.encoder: fpn needs at least 4 levels .* strides \[8, 16, 32\]"),
    ({"name": "unet++", "encoder": {"name": "tiny_cnn", "out_indices": [0, 2, 3]}},
     r"segmenter\.encoder: unet\+\+ needs at least 2 levels with doubling strides, but 'tiny_cnn' gives "
     r"strides \[4, 16, 32\]"),
    ({"name": "deeplabv3+", "encoder": {"name": "tiny_cnn", "out_indices": [3]}},
     r"segmenter\.encoder: deeplabv3\+ needs a low-level level"),
    ({"name": "unet", "encoder": "tiny_cnn", "decoder_channels": [64, 32]},
     r"segmenter\.decoder_channels: expected 4 positive integers \(one per encoder level, strides \[4, 8, 16, 32\]\)"),
    ({"name": "unet", "encoder": "tiny_cnn", "attention_type": "sce"}, r"did you mean 'scse'\?"),
    ({"name": "unet++", "encoder": "tiny_cnn", "attention_type": "scse", "decoder_channels": [64, 32, 16, 8]},
     r"segmenter\.attention_type: 'scse' needs at least 16 channels in every decoder block and encoder level"),
    ({"name": "fpn", "encoder": "tiny_cnn", "merge_policy": "ad"}, r"segmenter\.merge_policy: .*did you mean 'add'\?"),
    ({"name": "fpn", "encoder": "tiny_cnn", "segmentation_channels": 48}, r"multiple of 32"),
    ({"name": "deeplabv3+", "encoder": "tiny_cnn", "atrous_rates": [6, 12]}, r"segmenter\.atrous_rates: expected 3"),
    ({"name": "unet", "encoder": {"name": "tiny_cnn", "widht": 8}},
     r"segmenter\.encoder\.widht: unknown parameter; did you mean 'width'\?"),
    ({"name": "unet", "decoder_chanels": [1]}, r"segmenter\.decoder_chanels: unknown parameter; did you mean"),
])
def test_configuration_errors(spec, message):
    with pytest.raises(SpecError, match=message):
        medcam.build_segmenter(spec)


def test_spec_round_trip_rebuilds_the_same_architecture():
    seg = medcam.build_segmenter({"name": "unet++", "encoder": {"name": "tiny_cnn", "width": 16},
                                  "decoder_channels": [64, 32, 16, 16], "attention_type": "scse", "in_chans": 1})
    again = medcam.build_segmenter(seg.spec)
    assert again.spec == seg.spec
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in seg.state_dict().items()}
    assert seg.net.encoder.spec == {"name": "tiny_cnn", "width": 16, "out_indices": None, "checkpoint_path": None}
