"""One way to name a segmenter wherever one is asked for: a checkpoint file, a registered name or a spec.

``attention_box``'s ``segmenter``, ``medcam explain --segmenter``, ``medcam app
--segmenter`` and ``medcam segment`` all accept:

* a checkpoint written by ``medcam.save`` of a segmenter (``.pt``, ``.pth``, ``.ckpt``, ``.bin``,
  or any existing file that is not a spec file);
* a YAML/JSON segmenter spec file (``.yaml``, ``.yml``, ``.json``);
* a registered segmenter name (``lung_fields``, ``unet``; ``medcam list segmenters``) or a
  segmenter spec mapping; trainable networks built this way have random weights, so this form is
  meant for training-free segmenters such as ``lung_fields``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

from .errors import CheckpointError, SpecError

__all__ = ["CHECKPOINT_SUFFIXES", "SPEC_SUFFIXES", "open_segmenter"]

CHECKPOINT_SUFFIXES: tuple[str, ...] = (".pt", ".pth", ".ckpt", ".bin")
SPEC_SUFFIXES: tuple[str, ...] = (".yaml", ".yml", ".json")


def open_segmenter(source: Any, *, what: str = "segmenter", map_location: Any = "cpu",
                   sha256: str | None = None) -> Any:
    """A :class:`~medcam.model.MedcamSegmenter` from a checkpoint path, a spec file, a name or a spec mapping.

    Args:
        source: see the module docstring; a built segmenter is returned as it is.
        what: how the user gave it, for messages (``"--segmenter"``, ``"attention_box.segmenter"``).
        map_location: device for checkpoint weights.
        sha256: expected digest of a checkpoint file (refused for names and specs: nothing to check).

    Raises:
        FileNotFoundError: a checkpoint or spec path that does not exist.
        CheckpointError: a checkpoint that holds a classifier.
        SpecError, UnknownNameError: a bad spec or an unknown segmenter name.
    """
    from .build import build_segmenter
    from .checkpoint import load
    from .model import MedcamSegmenter

    if isinstance(source, MedcamSegmenter):
        return source
    if isinstance(source, (str, os.PathLike)):
        path = Path(os.fspath(source))
        suffix = path.suffix.lower()
        if suffix not in SPEC_SUFFIXES and (path.is_file() or suffix in CHECKPOINT_SUFFIXES):
            if not path.is_file():
                raise FileNotFoundError(f"{what}: checkpoint '{path}' does not exist")
            net = load(path, map_location=map_location, sha256=sha256)
            if not isinstance(net, MedcamSegmenter):
                raise CheckpointError(f"{what} '{path}' holds a classifier, not a segmenter; give a segmenter "
                                      f"checkpoint (medcam.build_segmenter + medcam.save) or name (medcam list "
                                      f"segmenters)")
            return net
        if os.sep in os.fspath(source) and suffix not in SPEC_SUFFIXES:
            raise FileNotFoundError(f"{what}: '{path}' does not exist (give a segmenter checkpoint, a spec file or a "
                                    f"segmenter name such as lung_fields)")
    elif not isinstance(source, Mapping):
        raise SpecError(f"{what}: expected a checkpoint path, a segmenter name or spec, got {source!r}")
    if sha256 is not None:
        raise SpecError(f"{what}: a sha256 checks a checkpoint file; '{source}' is a segmenter name or spec "
                        f"(nothing to check): drop the digest option")
    return build_segmenter(source).to(map_location).eval()
