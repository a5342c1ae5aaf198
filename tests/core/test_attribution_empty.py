"""Empty maps: flagged per map, one warning per call, advice that fits the call."""
from __future__ import annotations

import torch

import medcam
from medcam.attribution import explain
from medcam.attribution_empty import empty_map_advice


def test_empty_maps_warn_once_per_call_with_advice():
    import warnings

    from medcam.attribution import EmptyMapWarning

    torch.manual_seed(0)
    model = medcam.build_model({"name": "tiny_classifier", "num_classes": 3, "preprocess": {"size": 96}}).eval()
    images = torch.rand(4, 3, 96, 96)  # 3 x 3 maps at the last level
    with torch.no_grad():
        active = int(model.forward_features(images)[-1].mean((0, 2, 3)).argmax())
        model.head.fc.weight[2] = -0.5  # class 2's score falls with almost every activation: Grad-CAM is empty
        model.head.fc.weight[2, active] = 0.01  # ... but LayerCAM keeps this channel's positive evidence
        model.head.fc.bias.copy_(torch.tensor([5.0, 0.0, -5.0]))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = explain(model, images, "gradcam", target=2, details=True)
    assert result.empty.tolist() == [True] * 4 and float(result.maps.abs().sum()) == 0.0
    messages = [str(w.message) for w in caught if issubclass(w.category, EmptyMapWarning)]
    assert len(messages) == 1  # once per call, not per image
    assert messages[0].startswith("gradcam: 4 of 4 maps are empty (all zero) for class '2'")
    assert "as for a class the model does not predict; try method gradcam++ or layercam" in messages[0]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        layer = explain(model, images, "layercam", target=2, details=True)
        raw = explain(model, images, "gradcam", target=2, raw=True, details=True)
    assert not layer.empty.any() and raw.empty is None and not caught


def test_advice_wording():
    cli = empty_map_advice("gradcam", 1, 1, ["malignant"], cli=True)
    assert cli == ("gradcam: the map is empty (all zero) for class 'malignant': the score has no positive evidence "
                   "at this layer, as for a class the model does not predict; try --method gradcam++ or layercam, "
                   "or --target predicted")
    own = empty_map_advice("layercam", 2, 8, predicted=True)
    assert own == ("layercam: 2 of 8 maps are empty (all zero): the score has no positive evidence at this layer, "
                   "even for the predicted class; try method gradcam++")
