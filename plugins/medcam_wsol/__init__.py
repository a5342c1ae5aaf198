"""medcam's WSOL plugin: foreground prediction maps and localization-steering losses.

* the ``fpm`` head (:mod:`medcam_wsol.fpm_head`): BAS-style class maps plus the
  SR method's foreground prediction map with non-linear modulation and fusion;
* the ``foreground_control`` and ``bas`` losses (:mod:`medcam_wsol.erasing`),
  which re-score a masked feature map with frozen weights (:mod:`medcam_wsol.frozen`);
* the ``attention_box`` loss (:mod:`medcam_wsol.attention`): a differentiable
  Grad-CAM pushed into a region given by segmenter or batch boxes
  (:mod:`medcam_wsol.regions`);
* presets ``vmamba_wsol``, ``resnet50_wsol``, ``pvt_wsol``, ``*_attention_box``
  and ``resnet18_lesion_attention`` (:mod:`medcam_wsol.entries`).

The entry points name the light factories in :mod:`medcam_wsol.entries`; the
implementation modules are imported when something is built. See ``docs/methods.md``.
"""
