from __future__ import annotations

import pytest
import torch

from medcam.boxes import component_boxes, connected_components
from medcam.data.transforms import AUGMENT_PRESETS, Augment, affine, hflip, intensity
from medcam.errors import SpecError


def _sample(h: int = 32, w: int = 48) -> dict:
    mask = torch.zeros(h, w, dtype=torch.bool)
    mask[4:12, 6:20] = True
    mask[20:28, 30:44] = True
    image = torch.rand(3, h, w)
    image[:, mask] = 1.0
    labels, counts = connected_components(mask[None])
    boxes = component_boxes(labels, counts)[0]
    return {"image": image, "mask": mask, "boxes": boxes, "box_labels": torch.tensor([1, 2])}


def _mask_boxes(mask: torch.Tensor) -> torch.Tensor:
    labels, counts = connected_components(mask[None])
    return component_boxes(labels, counts)[0]


def test_hflip_moves_image_mask_and_boxes_together():
    s = _sample()
    out = hflip(s)
    assert torch.equal(out["image"], s["image"].flip(-1)) and torch.equal(out["mask"], s["mask"].flip(-1))
    got = sorted(out["boxes"].tolist())
    assert got == sorted(_mask_boxes(out["mask"]).tolist())


@pytest.mark.parametrize("angle, translate, scale", [(0.0, (5.0, -3.0), 1.0), (90.0, (0.0, 0.0), 1.0),
                                                      (12.0, (2.0, 1.0), 0.9)])
def test_affine_keeps_boxes_around_the_transformed_mask(angle, translate, scale):
    s = _sample(48, 48)
    out = affine(s, angle, translate, scale)
    assert out["image"].shape == s["image"].shape and out["mask"].dtype == torch.bool
    mask_boxes = _mask_boxes(out["mask"])
    assert len(out["boxes"]) == len(mask_boxes) == 2
    # the corner-mapped box contains the box of the resampled mask, and is tight for axis-aligned moves
    for mb in mask_boxes:
        containing = [(b[0] <= mb[0] + 0.5) & (b[1] <= mb[1] + 0.5) & (b[2] >= mb[2] - 0.5) & (b[3] >= mb[3] - 0.5)
                      for b in out["boxes"]]
        assert any(bool(c) for c in containing)
    if angle in (0.0, 90.0) and scale == 1.0:
        assert sorted(out["boxes"].round().tolist()) == sorted(mask_boxes.tolist())


def test_affine_translation_is_exact_for_whole_pixels():
    s = _sample()
    out = affine(s, 0.0, (3.0, 2.0), 1.0)
    assert torch.equal(out["mask"][2:, 3:], s["mask"][:-2, :-3])
    assert torch.allclose(out["image"][:, 2:, 3:], s["image"][:, :-2, :-3], atol=1e-5)
    assert torch.allclose(out["boxes"], s["boxes"] + torch.tensor([3.0, 2.0, 3.0, 2.0]))


def test_boxes_pushed_outside_are_dropped_with_their_labels():
    s = _sample()
    out = affine(s, 0.0, (30.0, 0.0), 1.0)  # the right lesion (x 30..44) leaves the 48-px image
    assert out["boxes"].tolist() == [[36.0, 4.0, 48.0, 12.0]] and out["box_labels"].tolist() == [1]


def test_intensity_stays_in_unit_range_and_matches_formula():
    x = torch.tensor([[[0.0, 0.5, 1.0]]])
    out = intensity(x, brightness=0.1, contrast=1.5, gamma=1.0)
    expected = ((x - 0.5) * 1.5 + 0.5 + 0.1).clamp(0, 1)
    assert torch.allclose(out, expected)
    assert intensity(x, gamma=2.0).tolist() == [[[0.0, 0.25, 1.0]]]


def test_augment_is_reproducible_with_a_generator():
    aug = Augment.from_config("default")
    s = _sample()
    a = aug(s, torch.Generator().manual_seed(7))
    b = aug(s, torch.Generator().manual_seed(7))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])
    assert torch.equal(a["boxes"], b["boxes"])
    assert 0.0 <= float(a["image"].min()) and float(a["image"].max()) <= 1.0


def test_augment_config_presets_mappings_and_errors():
    assert Augment.from_config(None) is None and Augment.from_config(False) is None
    assert Augment.from_config("flip") == Augment(hflip=0.5)
    assert Augment.from_config({"preset": "light", "hflip": 0.0}).degrees == AUGMENT_PRESETS["light"]["degrees"]
    assert Augment.from_config({"scale": 0.1}).scale == (0.9, 1.1)
    with pytest.raises(SpecError, match="augment: unknown preset 'defualt'; did you mean 'default'"):
        Augment.from_config("defualt")
    with pytest.raises(SpecError, match="augment.hflp: unknown key; did you mean 'hflip'"):
        Augment.from_config({"hflp": 0.5})
    with pytest.raises(SpecError, match=r"augment.hflip: a probability in \[0, 1\]"):
        Augment.from_config({"hflip": 2})
