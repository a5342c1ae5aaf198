"""The exceptions medcam raises, one small hierarchy.

Each error subclasses the built-in that fits, so ``except KeyError`` or
``except ValueError`` in user code keeps working, and every one subclasses
:class:`MedcamError` so the CLI can print it as one clear line.
"""
from __future__ import annotations

__all__ = [
    "MedcamError",
    "UnknownNameError",
    "NameClashError",
    "PluginError",
    "SpecError",
    "CapabilityError",
    "ShapeError",
    "DataError",
    "CheckpointError",
    "TrainingError",
    "ImageValueError",
    "AttributionError",
    "OutputError",
]


class MedcamError(Exception):
    """Base class of every error medcam raises on purpose."""


class UnknownNameError(MedcamError, KeyError):
    """A name that no registry holds; the message lists close matches."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class NameClashError(MedcamError, ValueError):
    """Two providers registered the same name in one registry."""


class PluginError(MedcamError, ImportError):
    """A plugin failed to import or does not follow the plugin contract."""


class SpecError(MedcamError, ValueError):
    """A model, segmenter or part spec is malformed; the message gives the spec path."""


class CapabilityError(SpecError):
    """A spec asks a part for a capability (a protocol of :mod:`medcam.capabilities`) it does not offer."""


class ShapeError(MedcamError, ValueError):
    """A tensor argument has the wrong shape, dtype or size."""


class DataError(MedcamError, ValueError):
    """A data set file is missing, unreadable or inconsistent; the message names the file."""


class CheckpointError(MedcamError, ValueError):
    """A checkpoint file is not a medcam checkpoint, is truncated or corrupt, unsafe, or not the expected file."""


class TrainingError(MedcamError, RuntimeError):
    """Training cannot go on (e.g. the loss became NaN or infinite); the message says what to change."""


class ImageValueError(MedcamError, ValueError):
    """An image tensor holds NaN or infinite values, or values outside [0, 1] (e.g. 0-255 floats)."""


class AttributionError(MedcamError, ValueError):
    """An attribution argument the model cannot satisfy: a target class or a layer it does not have."""


class OutputError(MedcamError, OSError):
    """An output file or folder cannot be written (a file where a folder is needed, the disk is full, ...)."""
