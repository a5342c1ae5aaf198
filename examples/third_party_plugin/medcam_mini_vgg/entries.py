"""The light module the entry point names: metadata plus a deferred import of the model."""
from __future__ import annotations

from typing import Any

from medcam.registry import describe


@describe(
    summary="MiniVGG: three VGG-style blocks (conv-conv-maxpool), an example third-party backbone",
    citation="Simonyan & Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, ICLR 2015",
    channels=[32, 64, 128],
    strides=[2, 4, 8],
    cam_level=-1,
    layout="map",
)
def mini_vgg(in_chans: int = 3, width: int = 32) -> Any:
    """Three blocks of two 3x3 conv + ReLU then 2x2 max pooling; levels at strides 2, 4, 8
    with ``width * (1, 2, 4)`` channels."""
    from .model import MiniVGG

    return MiniVGG(in_chans=in_chans, width=width)
