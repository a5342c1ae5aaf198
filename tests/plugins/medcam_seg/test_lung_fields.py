"""The training-free ``lung_fields`` segmenter: synthetic radiographs with a known answer, the segmenter
contract (shapes, dtypes, batches, normalization), bad input, and real NIH radiographs (``data``)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import medcam
from medcam.boxes import union_box
from medcam.errors import ShapeError, SpecError
from medcam.registry import segmenters
from medcam_seg.lung_fields import LungFields, lung_field_mask, mask_plausibility, signed_distance
from medcam_seg.postprocess import mask_boxes

def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


def test_masks_overlap_the_known_lungs(radiograph):
    for seed, size in ((0, (160, 160)), (1, (256, 256)), (2, (192, 128))):
        image, truth = radiograph(*size, seed=seed)
        mask = lung_field_mask(image)
        assert _iou(mask, truth) > 0.8, (seed, size, _iou(mask, truth))
        for lung in radiograph.lungs:  # one component on each lung
            one = radiograph.ellipse(*size, *lung)
            assert (mask & one).sum() > 0.75 * one.sum()


def test_segmenter_contract_shapes_dtypes_batches(radiograph):
    seg = medcam.build_segmenter("lung_fields")
    assert seg.spec["segmenter"] == {"name": "lung_fields", "work_size": 256, "temperature": 2.0}
    assert seg.num_classes == 1 and seg.in_chans == 3 and not list(seg.parameters())
    images = torch.stack([torch.from_numpy(radiograph(96, 160, seed=s)[0]).float() for s in range(2)]
                         + [torch.full((96, 160), 0.5)])[:, None].expand(-1, 3, -1, -1)
    logits = seg(images)
    assert logits.shape == (3, 1, 96, 160) and logits.dtype == torch.float32
    masks = seg.predict_mask(images)
    assert masks.shape == (3, 96, 160) and masks.dtype == torch.bool
    assert masks[:2].flatten(1).any(1).all() and not masks[2].any()  # a blank image has no lung fields
    assert torch.equal(seg.predict_mask(images[1:2]), masks[1:2])  # each image on its own
    truth = torch.from_numpy(radiograph(96, 160, seed=0)[1])
    assert _iou(masks[0].numpy(), truth.numpy()) > 0.75
    boxes = mask_boxes(masks[:1])
    assert int(boxes.counts[0]) == 2
    assert torch.allclose(boxes.union[0], union_box(truth[None])[0], atol=6)


def test_normalization_of_the_spec_does_not_change_the_mask(radiograph):
    image = torch.from_numpy(radiograph(128, 128, seed=3)[0]).float()[None, None]
    rgb = medcam.build_segmenter("lung_fields")  # ImageNet mean/std per channel
    grey = medcam.build_segmenter({"name": "lung_fields", "in_chans": 1, "preprocess": {"mean": 0.0, "std": 1.0}})
    assert torch.equal(rgb.predict_mask(image.expand(-1, 3, -1, -1)), grey.predict_mask(image))


def test_logits_are_a_signed_distance_and_thresholds_shrink_the_mask(radiograph):
    mask = np.zeros((9, 9), bool)
    mask[2:7, 2:7] = True
    d = signed_distance(mask)
    assert d[4, 4] == 3 and d[2, 2] == 1 and d[1, 4] == -1 and d[0, 4] == -2 and d[1, 1] == pytest.approx(-2 ** 0.5)
    net = LungFields(in_chans=1)
    image = torch.from_numpy(radiograph(256, 256, seed=4)[0]).float()[None, None]
    probs = torch.sigmoid(net(image))
    assert (probs > 0.9).sum() < (probs > 0.5).sum() < (probs > 0.1).sum()
    assert torch.equal(probs[0, 0] > 0.5, torch.from_numpy(lung_field_mask(image[0, 0].numpy())))


@pytest.mark.parametrize("shape, message", [
    ((1, 3, 64, 64), "built for in_chans=1 but the images have 3 channels"),
    ((1, 1, 0, 64), "at least 32 x 32 pixels, got \\(0, 64\\)"),  # an empty image
    ((2, 1, 16, 16), "at least 32 x 32"),
    ((64, 64), "images \\(B, 1, H, W\\)"),
])
def test_bad_images_are_refused_in_one_line(shape, message):
    with pytest.raises(ShapeError, match=message) as err:
        LungFields(in_chans=1)(torch.rand(*shape))
    assert "\n" not in str(err.value)


def test_bad_input_and_spec_errors():
    seg = medcam.build_segmenter({"name": "lung_fields", "in_chans": 1})
    with pytest.raises(ShapeError, match="3 channels but the model expects in_chans=1"):
        seg(torch.rand(1, 3, 64, 64))
    with pytest.raises(SpecError, match="num_classes: lung_fields segments one class"):
        medcam.build_segmenter({"name": "lung_fields", "num_classes": 2})
    with pytest.raises(SpecError, match="work_size: expected an integer >= 32"):
        medcam.build_segmenter({"name": "lung_fields", "work_size": 8})
    with pytest.raises(SpecError, match="temperature: expected a positive number"):
        medcam.build_segmenter({"name": "lung_fields", "temperature": 0})


def test_registered_and_described():
    assert "lung_fields" in segmenters.list()
    info = segmenters.info("lung_fields")
    assert info["value"] == "medcam_seg.entries:lung_fields"
    assert "Training-free" in info["summary"] and "Armato" in info["citation"]


def test_attention_box_with_lung_fields_gives_lung_boxes(radiograph):
    spec = {"name": "resnet50_attention_box", "backbone": {"name": "tiny_cnn", "width": 8},
            "preprocess": {"size": 96}}
    model = medcam.build_model(spec)
    assert model.spec["loss"][0]["segmenter"] == "lung_fields"
    loss_fn = medcam.build_loss(model.spec, num_classes=3)
    source = loss_fn.parts[0].reference
    assert source.segmenter.spec["segmenter"]["name"] == "lung_fields"
    pairs = [radiograph(96, 96, seed=s) for s in range(3)]
    images = torch.stack([torch.from_numpy(p[0]).float() for p in pairs])[:, None].expand(-1, 3, -1, -1)
    boxes, masks = source({}, images)
    truth = torch.stack([torch.from_numpy(p[1]) for p in pairs])
    assert masks.shape == (3, 96, 96) and torch.allclose(boxes, union_box(truth), atol=6)
    batch = {"image": images, "label": torch.tensor([0, 1, 2]), "epoch": 20}
    out = model(images, batch["label"], return_features=True)
    total, logs = loss_fn(out, batch, model)
    assert torch.isfinite(total) and logs["attention_box.attention"] > 0
    total.backward()


@pytest.mark.data
def test_real_radiographs_give_two_plausible_lungs(nih_dir):
    """The first 24 NIH sample images: a left/right pair of lungs covering 8-45 % of the film (21 of 24 measured)."""
    from PIL import Image

    files = sorted((nih_dir / "images_001" / "images").glob("*.png"))[:24]
    assert len(files) == 24
    results = [mask_plausibility(lung_field_mask(np.asarray(Image.open(p).convert("L"), dtype=np.float64) / 255))
               for p in files]
    assert sum(r["plausible"] for r in results) >= 20, [r["fraction"] for r in results]
    assert all(r["components"] <= 2 for r in results)
    assert np.median([r["fraction"] for r in results]) == pytest.approx(0.18, abs=0.06)


def test_plausibility_rule(radiograph):
    image, truth = radiograph(128, 128)
    assert mask_plausibility(truth)["plausible"] and mask_plausibility(truth)["components"] == 2
    one = truth.copy()
    one[:, 64:] = False
    assert not mask_plausibility(one)["left_right"]
    assert not mask_plausibility(np.ones((128, 128), bool))["plausible"]
