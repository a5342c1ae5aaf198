"""medcam's CAM plugin: class activation map methods as batched, differentiable tensor ops.

Registered names: ``medcam list attributions``. The entry points name the
light factories in :mod:`medcam_cam.entries`; the methods live in
:mod:`medcam_cam.gradient`, :mod:`medcam_cam.perturbation`,
:mod:`medcam_cam.activation` and :mod:`medcam_cam.input_space` (methods at
input resolution) and follow :class:`medcam.attribution.Attribution`.
"""
