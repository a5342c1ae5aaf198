"""Reading weights files: one reader for every backbone family and weights source.

A weights file is read with ``torch.load(map_location="cpu", weights_only=True)``
(no arbitrary unpickling) or, for ``.safetensors``, with safetensors. What it
holds is unwrapped to a flat ``{name: tensor}`` mapping:

* a medcam checkpoint (:func:`medcam.checkpoint.save`) gives its backbone's
  weights (``backbone.`` prefix removed), so a new model can start from a trained one;
* ``{"state_dict": ...}`` / ``{"model": ...}`` wrappers (Lightning, official releases)
  are opened, up to three levels deep;
* a ``module.`` prefix on every key (``DataParallel``) is removed.

Key *names* stay as the file has them; converting them to a backbone's layout is
the job of the plugin's converter.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from .errors import CheckpointError

__all__ = ["read_state_dict", "unwrap_state_dict"]

_SHOWN = 5  # offending keys listed in an error


def unwrap_state_dict(raw: Any, where: str) -> dict[str, Any]:
    """The flat ``{name: tensor}`` inside ``raw`` (what ``torch.load`` returned); ``where`` names it in errors.

    Raises:
        CheckpointError: ``raw`` holds no mapping of tensors.
    """
    from torch import Tensor

    from .checkpoint import backbone_weights, is_medcam_checkpoint

    if is_medcam_checkpoint(raw):  # a whole medcam model: keep its backbone
        raw = backbone_weights(raw, where)
    for _ in range(3):
        if not isinstance(raw, Mapping):
            break
        inner = next((raw[k] for k in ("state_dict", "model") if isinstance(raw.get(k), Mapping)), None)
        if inner is None:
            break
        raw = inner
    if not isinstance(raw, Mapping) or not raw:
        raise CheckpointError(f"{where} holds no state dict (found {type(raw).__name__})")
    not_tensors = [k for k, v in raw.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(f"{where} is not a state dict: entries {not_tensors[:_SHOWN]} are not tensors "
                              f"(expected {{name: tensor}}, optionally under 'state_dict' or 'model')")
    state = {str(k): v for k, v in raw.items()}
    if all(k.startswith("module.") for k in state):
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def read_state_dict(path: str | Path) -> dict[str, Any]:
    """The tensors of the weights file ``path``, unwrapped (see the module docstring).

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is not readable as weights, or holds no state dict.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file '{path}' does not exist")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            raw: Any = load_file(str(path), device="cpu")
        else:
            raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and safetensors errors all mean "not a readable weights file"
        raise CheckpointError(f"'{path}' is not a weights file torch.load(weights_only=True) can read: "
                              f"{type(err).__name__}: {err}") from err
    return unwrap_state_dict(raw, f"'{path}'")
