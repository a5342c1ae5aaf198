"""medcam's segmentation plugin.

* ``unet``, ``unet++``, ``fpn``, ``deeplabv3+``: segmentation-models-pytorch
  decoders on ANY registered medcam backbone, bridged through its ``feature_info``
  (:mod:`medcam_seg.smp_nets`, :mod:`medcam_seg.bridge`);
* ``tiramisu56`` / ``tiramisu67`` / ``tiramisu103``: FC-DenseNet (Jegou et al. 2017),
  and their down paths as classification backbones ``tiramisu*_encoder``
  (:mod:`medcam_seg.tiramisu`);
* ``attention_resunet``: a residual U-Net with additive attention gates
  (:mod:`medcam_seg.attention_resunet`);
* mask -> components -> boxes post-processing for any segmenter
  (:mod:`medcam_seg.postprocess`, built on :mod:`medcam.boxes`).
* the segmentation losses ``dice`` and ``mask_bce`` (:mod:`medcam_seg.losses`),
  which a segmenter spec's ``loss`` list takes.

The entry points in medcam's ``pyproject.toml`` name the light factories in
:mod:`medcam_seg.entries`; torch, smp and the architecture modules are imported
only when something is built.
"""
