"""medcam's basic bundled plugin: a tiny CNN backbone, the linear (GAP + FC) head and cross-entropy.

The entry points in medcam's ``pyproject.toml`` name the light factories in
:mod:`medcam_basic.entries`; the architecture code lives in the other modules and
is imported only when something is built.
"""
