"""medcam's timm plugin: VGG, ResNet, PVT-v2, EfficientNet and DenseNet backbones, and ``timm/<any name>``.

Every backbone here is a timm model (Wightman, *PyTorch Image Models*, 2019)
turned into a medcam backbone by one generic wrapper,
:class:`medcam_timm.backbone.TimmBackbone`: ``forward(x)`` returns the feature
maps ``(B, C_i, H / s_i, W / s_i)`` of timm's feature levels, by increasing
stride, and ``feature_info`` describes them.

Modules:

* :mod:`medcam_timm.variants`: the table of registered variants and families
  (channels, strides, modules, citations, drop rates). Standard library only.
* :mod:`medcam_timm.entries`: the registered factories, derived from that table,
  and ``timm/<any name>``. Light: no torch or timm import.
* :mod:`medcam_timm.backbone`: the wrapper and the builders (timm is imported here).
* :mod:`medcam_timm.loading`: the key converter of ``checkpoint_path=`` and offline ``pretrained``
  (timm, torchvision and official-release state dicts), first-conv adaptation for ``in_chans``;
  the core (:func:`medcam.state_dict.load_weights`) reads the file and checks the fit.
* :mod:`medcam_timm.convert`: torchvision / original-release key names -> timm key names.
* :mod:`medcam_timm.report`: ``python -m medcam_timm.report`` prints the table in docs/backbones.md.
"""
