"""medcam's CAM plugin: class activation map methods as batched, differentiable tensor ops.

Registered names (``medcam list attributions``): ``cam``, ``gradcam``,
``gradcam++``, ``xgradcam``, ``layercam``, ``hirescam``, ``scorecam``,
``eigencam``, ``ablationcam``, ``random`` and ``fpm``. The entry points name
the light factories in :mod:`medcam_cam.entries`; the methods live in
:mod:`medcam_cam.gradient`, :mod:`medcam_cam.perturbation` and
:mod:`medcam_cam.activation` and follow :class:`medcam.attribution.Attribution`.
"""
