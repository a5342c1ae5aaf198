"""Reference boxes and masks (segmenter, batch boxes, batch masks), rule resolution, allowed regions."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import medcam
from medcam.boxes import union_box
from medcam.errors import CheckpointError, SpecError
from medcam_wsol.regions import ReferenceSource, allowed_regions, check_rules, load_segmenter, resolve_rules

SEG_SPEC = {"name": "unet", "encoder": {"name": "tiny_cnn", "width": 4}, "decoder_channels": [16, 8, 8, 4],
            "preprocess": {"size": 32}}
CLASSES = ["No Finding", "Effusion", "Pneumothorax"]


def test_rules_resolution():
    assert resolve_rules(None, CLASSES) == ["inside"] * 3
    rules = check_rules({"Effusion": "lower", "pneumothorax": "upper", "0": None})
    assert resolve_rules(rules, CLASSES) == [None, "lower", "upper"]
    assert resolve_rules({"-1": "outside"}, CLASSES) == [None, None, "outside"]
    with pytest.raises(SpecError, match="did you mean 'Effusion'"):
        resolve_rules({"Efusion": "lower"}, CLASSES)
    with pytest.raises(SpecError, match="not a class"):
        resolve_rules({"3": "lower"}, CLASSES)
    with pytest.raises(SpecError, match="did you mean 'lower'"):
        check_rules({"Effusion": "lowr"})
    with pytest.raises(SpecError, match="mapping"):
        check_rules(["lower"])


def test_rules_for_classes_the_model_lacks():
    seed = {"Effusion": "lower", "Pneumothorax": "upper"}
    with pytest.raises(SpecError, match="'Pneumothorax' is not a class .* or set missing_classes: ignore"):
        resolve_rules(seed, ["No Finding", "Effusion"])
    assert resolve_rules(seed, ["No Finding", "Effusion"], missing="ignore") == [None, "lower"]
    assert resolve_rules(seed, CLASSES, missing="ignore") == [None, "lower", "upper"]


def test_boxes_source_unions_boxes_and_falls_back_to_the_image():
    src = ReferenceSource("boxes")
    images = torch.rand(3, 3, 20, 30)
    batch = {"boxes": [torch.tensor([[2.0, 3.0, 5.0, 6.0], [10.0, 1.0, 12.0, 4.0]]), torch.zeros(0, 4),
                       [[1.0, 1.0, 2.0, 2.0]]]}
    boxes, masks = src(batch, images)
    assert masks is None
    assert boxes.tolist() == [[2.0, 1.0, 12.0, 6.0], [0.0, 0.0, 30.0, 20.0], [1.0, 1.0, 2.0, 2.0]]
    with pytest.raises(SpecError, match="batch\\['boxes'\\]"):
        src({}, images)


def test_mask_source():
    src = ReferenceSource("mask")
    mask = torch.zeros(2, 10, 12, dtype=torch.bool)
    mask[0, 2:5, 3:9] = True
    boxes, masks = src({"mask": mask}, torch.rand(2, 3, 10, 12))
    assert boxes.tolist() == [[3.0, 2.0, 9.0, 5.0], [0.0, 0.0, 12.0, 10.0]]
    assert torch.equal(masks, mask)


def test_segmenter_source_from_a_checkpoint_matches_a_direct_run(tmp_path):
    net = medcam.build_segmenter(SEG_SPEC)
    path = tmp_path / "lungs.pt"
    medcam.save(net, path)
    src = ReferenceSource("segmenter", str(path), threshold=0.5).train()
    assert not src.segmenter.training and not any(p.requires_grad for p in src.segmenter.parameters())
    images = torch.rand(2, 1, 48, 64)  # grey images at another size than the segmenter's 32 x 32
    boxes, masks = src({}, images)
    with torch.no_grad():
        ref = net.eval()(F.interpolate(images.expand(-1, 3, -1, -1), size=(32, 32), mode="bilinear",
                                       align_corners=False))
        ref = F.interpolate((torch.sigmoid(ref) > 0.5).float(), size=(48, 64), mode="nearest")[:, 0] > 0.5
    assert masks.shape == (2, 48, 64) and torch.equal(masks, ref)
    assert torch.equal(boxes, union_box(ref, empty="image"))


def test_segmenter_from_a_spec_and_errors(tmp_path):
    assert isinstance(load_segmenter(SEG_SPEC), medcam.MedcamSegmenter)
    with pytest.raises(SpecError, match="needs a segmenter checkpoint"):
        ReferenceSource("segmenter")
    with pytest.raises(SpecError, match="only used with source 'segmenter'"):
        ReferenceSource("boxes", SEG_SPEC)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        ReferenceSource("segmenter", str(tmp_path / "missing.pt"))
    model_path = tmp_path / "model.pt"
    medcam.save(medcam.build_model("tiny_classifier"), model_path)
    with pytest.raises(CheckpointError, match="not a segmenter"):
        load_segmenter(str(model_path))
    with pytest.raises(SpecError, match="did you mean 'segmenter'"):
        ReferenceSource("segmentor")


def test_allowed_regions_rules():
    boxes = torch.tensor([[2.0, 2.0, 6.0, 6.0]]).repeat(5, 1)
    mask = torch.zeros(5, 8, 8, dtype=torch.bool)
    mask[:, 0, 0] = True
    out = allowed_regions(boxes, mask, ["inside", "upper", "lower", "outside", "mask"], (8, 8))
    assert out[0].sum() == 16 and out[0, 2:6, 2:6].all()
    assert out[1].sum() == 8 and out[1, 2:4, 2:6].all()
    assert out[2].sum() == 8 and out[2, 4:6, 2:6].all()
    assert out[3].sum() == 64 - 16 and not out[3, 2:6, 2:6].any()
    assert torch.equal(out[4], mask[4])
    with pytest.raises(SpecError, match="needs a mask source"):
        allowed_regions(boxes[:1], None, ["mask"], (8, 8))
