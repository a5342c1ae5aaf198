"""The medcam web app (``medcam app CHECKPOINT``; extra ``[app]``: ``pip install 'medcam[app]'``).

Upload an image, see the predicted class with per-class confidence, the
attribution overlay (method chosen from the registry), the segmentation mask
and the boxes, and download the JSON record. Built with Gradio (see
``docs/app.md`` for why); Gradio is imported only when the app is built, so
``import medcam`` works without the extra.
"""
from __future__ import annotations

import importlib
from typing import Any

from ..errors import MedcamError

__all__ = ["require_gradio", "build_app", "launch", "AppDependencyError"]

#: The Gradio major version the app is written for (see the ``[app]`` extra in pyproject.toml).
GRADIO_MAJOR = 6


class AppDependencyError(MedcamError, ImportError):
    """The ``[app]`` extra (Gradio) is missing or too old."""


def require_gradio() -> Any:
    """Import and return ``gradio``, or raise :class:`AppDependencyError` saying how to install it."""
    try:
        gradio = importlib.import_module("gradio")
    except ImportError as err:
        raise AppDependencyError("medcam app needs the [app] extra (Gradio): pip install 'medcam[app]' "
                                 f"(import failed: {err})") from err
    major = str(getattr(gradio, "__version__", "0")).split(".")[0]
    if not major.isdigit() or int(major) < GRADIO_MAJOR:
        raise AppDependencyError(f"medcam app needs gradio>={GRADIO_MAJOR}, found {gradio.__version__}: "
                                 f"pip install 'medcam[app]' --upgrade")
    return gradio


def build_app(*args: Any, **kwargs: Any) -> Any:
    """Build the Gradio ``Blocks`` (see :func:`medcam.app.gradio_app.build_app`)."""
    from .gradio_app import build_app as build

    return build(*args, **kwargs)


def launch(*args: Any, **kwargs: Any) -> Any:
    """Build and serve the app (see :func:`medcam.app.gradio_app.launch`)."""
    from .gradio_app import launch as serve

    return serve(*args, **kwargs)
