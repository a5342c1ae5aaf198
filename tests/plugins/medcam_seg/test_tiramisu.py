"""FC-DenseNet (Tiramisu): the paper's configurations, parameter counts, any input size, encoder backbone."""
from __future__ import annotations

import pytest
import torch

import medcam
from medcam.errors import CheckpointError, SpecError
from medcam_seg.configs import TIRAMISU_CONFIGS, TIRAMISU_PAPER_PARAMS, TIRAMISU_PARAMS
from medcam_seg.tiramisu import FCDenseNet, TiramisuBackbone


def closed_form_params(depth: int, in_chans: int, num_classes: int) -> int:
    """Parameter count of FC-DenseNet written out from the paper's description (independent of the module).

    3x3 conv in->48 (+bias); dense layer on c maps: BN (2c) + 3x3 conv c->k (+k); transition down on c:
    BN (2c) + 1x1 conv c->c (+c); transition up on u maps: 3x3 transposed conv u->u (+u); the up path
    upsamples only the new maps of the previous block; 1x1 conv to the classes on the last full stack.
    """
    cfg = TIRAMISU_CONFIGS[depth]
    k = cfg["growth"]

    def block(c: int, n: int) -> int:
        return sum(2 * (c + i * k) + (c + i * k) * k * 9 + k for i in range(n))

    total, c, skips = in_chans * 48 * 9 + 48, 48, []
    for n in cfg["down"]:
        total += block(c, n)
        c += n * k
        skips.append(c)
        total += 2 * c + c * c + c
    total += block(c, cfg["bottleneck"])
    up = cfg["bottleneck"] * k
    for skip, n in zip(reversed(skips), cfg["up"]):
        total += up * up * 9 + up
        stack = up + skip
        total += block(stack, n)
        up = n * k
    return total + (stack + up) * num_classes + num_classes


@pytest.mark.parametrize("depth", [56, 67, 103])
def test_parameter_count_is_the_papers_architecture(depth):
    model = FCDenseNet(depth, in_chans=3, num_classes=11)  # CamVid: 11 classes
    count = sum(p.numel() for p in model.parameters())
    assert count == closed_form_params(depth, 3, 11) == TIRAMISU_PARAMS[depth]
    # Table 2: 1.5M / 3.5M / 9.4M. 67 and 103 match within 1.1%. FC-DenseNet56 built exactly as the paper
    # describes has 1.38M (-8.2%): independent re-implementations report the same (1.4M; SimJeg/FC-DenseNet
    # issue #31), so the table's 1.5M cannot be met without changing the architecture.
    tolerance = 0.09 if depth == 56 else 0.05
    assert abs(count / TIRAMISU_PAPER_PARAMS[depth] - 1) < tolerance, count


@pytest.mark.parametrize("depth, within", [(56, None), (67, 0.005), (103, 0.005)])
def test_count_in_the_authors_framework_convention(depth, within):
    """The paper's code (SimJeg/FC-DenseNet) is in Lasagne, whose ``lasagne.layers.count_params`` by default
    includes each BatchNormLayer's ``mean`` and ``inv_std`` (non-trainable, but parameters there).

    Counted that way, 67 and 103 land within 0.5% of Table 2 (3.50M, 9.43M), which confirms the
    architecture. FC-DenseNet56 gives 1.40M, the figure independent re-implementations report
    (SimJeg/FC-DenseNet issue #31), not the table's 1.5M: the table entry disagrees with the paper's own
    architecture, and no layer of the description can be changed to reach it.
    """
    model = FCDenseNet(depth, in_chans=3, num_classes=11)
    weights = sum(p.numel() for p in model.parameters())
    bn_statistics = sum(m.running_mean.numel() + m.running_var.numel()
                        for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d))
    count = weights + bn_statistics
    if within is None:
        assert round(count / 1e6, 1) == 1.4 and abs(count / TIRAMISU_PAPER_PARAMS[56] - 1) > 0.05, count
    else:
        assert abs(count / TIRAMISU_PAPER_PARAMS[depth] - 1) < within, count


def test_up_path_forwards_only_the_new_maps_of_each_block():
    model = FCDenseNet(103, num_classes=2)
    k = 16
    # transition up i upsamples the new maps of the previous block: bottleneck 15, then 12, 10, 7, 5 layers
    assert [up.conv.in_channels for up in model.ups] == [15 * k, 12 * k, 10 * k, 7 * k, 5 * k]
    # "m" of the paper's Table 2 (with the authors' README correction): stacks 1088, 816, ... and 256 at the end
    stacks = [block.layers[0][0].num_features for block in model.up_blocks]
    assert stacks[:2] == [656 + 240, 464 + 192] and stacks[0] + 12 * k == 1088 and stacks[1] + 10 * k == 816
    assert model.classifier.in_channels == 256


@pytest.mark.parametrize("in_chans", [1, 3])
def test_any_input_size_shapes_and_backward(in_chans):
    model = FCDenseNet(56, in_chans=in_chans, num_classes=2)
    x = torch.rand(1, in_chans, 50, 38)  # not divisible by 32: ceil pooling + cropped upsampling
    logits = model(x)
    assert logits.shape == (1, 2, 50, 38)
    logits.mean().backward()
    assert model.encoder.stem.weight.grad.abs().sum() > 0 and model.classifier.weight.grad.abs().sum() > 0


def test_built_through_the_registry():
    seg = medcam.build_segmenter({"name": "tiramisu56", "in_chans": 1, "drop_rate": 0.0}).eval()
    assert seg(torch.rand(1, 1, 32, 32)).shape == (1, 1, 32, 32)
    with pytest.raises(SpecError, match=r"segmenter\.drop_rate: expected a number in \[0, 1\), got 1\.5"):
        medcam.build_segmenter({"name": "tiramisu67", "drop_rate": 1.5})


def test_encoder_backbone_contract():
    backbone = medcam.build_backbone("tiramisu56_encoder", in_chans=1)
    info = backbone.feature_info
    assert info.channels() == [96, 144, 192, 240, 336] and info.strides() == [2, 4, 8, 16, 32]
    assert info.cam_level == 4 and info.modules()[-1] == "final_norm"
    feats = backbone(torch.rand(2, 1, 50, 70))
    assert [tuple(f.shape[1:]) for f in feats] == [(96, 25, 35), (144, 13, 18), (192, 7, 9), (240, 4, 5), (336, 2, 3)]
    assert feats[-1].min() >= 0  # after the final BN-ReLU
    module_names = dict(backbone.named_modules())
    assert all(name in module_names for name in info.modules())


def test_encoder_forward_from_and_out_indices():
    backbone = TiramisuBackbone(56, in_chans=3, drop_rate=0.2).eval()
    x = torch.rand(1, 3, 64, 64)
    feats = backbone(x)
    later = backbone.forward_from(feats[1], 1)
    assert len(later) == 3 and all(torch.allclose(a, b, atol=1e-5) for a, b in zip(later, feats[2:]))
    part = TiramisuBackbone(56, out_indices=[1, 3]).eval()
    part.load_state_dict(backbone.state_dict())
    out = part(x)
    assert part.feature_info.strides() == [4, 16]
    assert torch.allclose(out[0], feats[1], atol=1e-5) and torch.allclose(out[1], feats[3], atol=1e-5)
    with pytest.raises(SpecError, match=r"out of range"):
        TiramisuBackbone(56, out_indices=[5])
    with pytest.raises(SpecError, match=r"no pretrained weights exist"):
        medcam.build_backbone({"name": "tiramisu103_encoder", "pretrained": True})


def test_classifier_on_the_encoder():
    model = medcam.build_model({"backbone": "tiramisu56_encoder", "num_classes": 2, "in_chans": 1})
    assert model(torch.rand(2, 1, 64, 64)).logits.shape == (2, 2)


def _equal_encoders(a, b) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_weights_transfer_between_classifier_backbone_and_segmenter(tmp_path):
    classifier = medcam.build_model({"backbone": "tiramisu56_encoder", "num_classes": 2})
    path = tmp_path / "classifier.pt"
    torch.save(classifier.state_dict(), path)  # keys "backbone.encoder.*", "backbone.final_norm.*", "head.*"
    seg = FCDenseNet(56, num_classes=1, encoder_checkpoint=str(path))
    assert _equal_encoders(seg.encoder, classifier.backbone.encoder)
    backbone = TiramisuBackbone(56, checkpoint_path=str(path))
    assert _equal_encoders(backbone, classifier.backbone)  # final_norm too
    seg_path = tmp_path / "segmenter.pt"
    torch.save({"state_dict": seg.state_dict()}, seg_path)  # keys "encoder.*", "ups.*", ...
    from_seg = TiramisuBackbone(56, checkpoint_path=str(seg_path))
    assert _equal_encoders(from_seg.encoder, seg.encoder)


def test_checkpoint_errors(tmp_path):
    path = tmp_path / "t67.pt"
    torch.save(FCDenseNet(67).state_dict(), path)
    with pytest.raises(CheckpointError, match=r"does not fit FC-DenseNet56's encoder"):
        TiramisuBackbone(56, checkpoint_path=str(path))
    other = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match=r"expected one Tiramisu encoder"):
        FCDenseNet(56, encoder_checkpoint=str(other))
    with pytest.raises(FileNotFoundError, match=r"missing\.pt"):
        TiramisuBackbone(56, checkpoint_path=str(tmp_path / "missing.pt"))
