"""Checkpoints: spec + weights + metadata in one file, loadable without code.

The file is a PyTorch zip archive holding only tensors and plain containers::

    {"format": "medcam.checkpoint", "format_version": 1,
     "kind": "model" | "segmenter",
     "spec": "<resolved spec as JSON>", "metadata": "<user metadata as JSON>",
     "state_dict": {name: tensor}, "training_state": {...} | None,
     "sha256": "<digest of everything above>"}

Loading uses ``torch.load(weights_only=True)``, which refuses to unpickle
arbitrary Python objects. The stored digest detects files that changed after
saving by accident (a truncated copy, a flipped bit): it is **not** a defence
against tampering, since whoever can rewrite the file can rewrite the digest
too. To know a file is the one you expect, compare it with a digest you got
from a trusted place: ``load(path, sha256="...")`` (``--sha256`` on the
command line), the sha256 of the file's bytes as ``sha256sum`` prints it.
Writes go to a temporary file that is renamed into place, so a crash or a full
disk never leaves a half-written checkpoint under the final name (the previous
file, if any, stays as it was).
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import Tensor, nn

from .errors import CheckpointError, OutputError
from .outputs import describe_os_error
from .state_dict import WEIGHT_PARAMETERS

__all__ = ["save", "load", "read_checkpoint", "Checkpoint", "FORMAT", "FORMAT_VERSION", "is_medcam_checkpoint",
           "backbone_weights", "check_payload", "verify_sha256", "without_weight_sources"]

FORMAT = "medcam.checkpoint"
FORMAT_VERSION = 1


@dataclass
class Checkpoint:
    """The verified content of a checkpoint file (see :func:`read_checkpoint`)."""

    kind: str
    spec: dict[str, Any]
    state_dict: dict[str, Tensor]
    metadata: dict[str, Any]
    training_state: Any
    path: str


def _digest(obj: Any, h: "hashlib._Hash") -> None:
    if isinstance(obj, Tensor):
        t = obj.detach().cpu().contiguous()
        h.update(f"T{t.dtype}{tuple(t.shape)}".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, Mapping):
        h.update(b"{")
        for key in sorted(obj, key=str):
            h.update(repr(key).encode())
            _digest(obj[key], h)
        h.update(b"}")
    elif isinstance(obj, (list, tuple)):
        h.update(b"[")
        for item in obj:
            _digest(item, h)
        h.update(b"]")
    else:
        h.update(repr(obj).encode())


def _checksum(payload: Mapping[str, Any]) -> str:
    h = hashlib.sha256()
    _digest({k: v for k, v in payload.items() if k != "sha256"}, h)
    return h.hexdigest()


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, sort_keys=True)
    except TypeError as err:
        raise CheckpointError(f"{what} must be JSON-serializable (numbers, strings, lists, dicts): {err}") from err


def save(model: nn.Module, path: str | os.PathLike[str], *, training_state: Any = None, **metadata: Any) -> Path:
    """Write ``model`` (a built medcam model or segmenter) with its spec to ``path``.

    Args:
        model: a :class:`~medcam.model.MedcamModel` or :class:`~medcam.model.MedcamSegmenter`.
        path: destination file; parent folders are created.
        training_state: optional tensors/containers for resuming (optimizer,
            scheduler, epoch, RNG states). Only tensors, numbers, strings,
            lists and dicts: anything else would make the file unloadable safely.
        **metadata: JSON-serializable facts to keep (metrics, data set, notes).

    Returns:
        The path written.
    """
    from .model import MedcamModel, MedcamSegmenter

    if isinstance(model, MedcamModel):
        kind = "model"
    elif isinstance(model, MedcamSegmenter):
        kind = "segmenter"
    else:
        raise CheckpointError(f"medcam.save expects a model built by medcam.build_model or build_segmenter, "
                              f"got {type(model).__name__}")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": kind,
        "spec": _to_json(model.spec, "the model spec"),
        "metadata": _to_json(metadata, "checkpoint metadata"),
        "state_dict": state,
        "training_state": training_state,
    }
    payload["sha256"] = _checksum(payload)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        _write(payload, os.fdopen(fd, "wb"), target)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _write(payload: Mapping[str, Any], handle: Any, target: Path) -> None:
    """``torch.save`` into ``handle`` (then flushed, synced and closed); a failed write is an
    :class:`OutputError` that says why (the disk is full, ...) instead of torch's "unexpected pos"."""
    writer = _Writer(handle)
    try:
        torch.save(payload, writer)
        handle.flush()
        os.fsync(handle.fileno())
        handle.close()
    except (OSError, RuntimeError) as err:
        cause = writer.error or (err if isinstance(err, OSError) else None)
        try:
            handle.close()
        except OSError:  # the buffered rest cannot be written either
            pass
        if cause is None:
            raise
        raise OutputError(f"could not write checkpoint '{target}': {describe_os_error(cause)}; nothing was "
                          f"written under that name") from err


class _Writer:
    """The file object ``torch.save`` writes through, remembering the OSError of a failed write
    (torch turns it into a RuntimeError without the reason, e.g. the disk being full)."""

    def __init__(self, handle: Any):
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as err:
            self.error = err
            raise

    def flush(self) -> None:
        self.handle.flush()


def verify_sha256(path: str | os.PathLike[str], expected: str) -> str:
    """Check that the file's sha256 (of its bytes, as ``sha256sum`` prints it) is ``expected``.

    Returns:
        the digest (lowercase hex).

    Raises:
        CheckpointError: ``expected`` is not 64 hexadecimal characters, or the file's digest differs.
    """
    from .bench.provenance import file_digest

    want = str(expected).strip().lower()
    if len(want) != 64 or any(c not in "0123456789abcdef" for c in want):
        raise CheckpointError(f"sha256: expected 64 hexadecimal characters (as sha256sum prints), got {expected!r}")
    actual = file_digest(path)
    if actual != want:
        raise CheckpointError(f"'{path}' has sha256 {actual}, not the expected {want}: it is not the file you "
                              f"expect (another file, a different version, or altered)")
    return actual


def read_checkpoint(path: str | os.PathLike[str], map_location: str | torch.device = "cpu", *,
                    sha256: str | None = None) -> Checkpoint:
    """Read and verify a checkpoint without building the model.

    Args:
        path: the file.
        map_location: where tensors go.
        sha256: the digest of the file's bytes you expect (from a trusted source); checked
            before anything is unpickled. The stored digest alone detects corruption, not tampering.

    Raises:
        FileNotFoundError: no such file.
        CheckpointError: not a medcam checkpoint, truncated or corrupt, changed
            after saving, holding Python objects other than tensors and plain
            containers (a possibly malicious pickle), or not matching ``sha256``.
    """
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint '{p}' does not exist")
    if sha256 is not None:
        verify_sha256(p, sha256)
    if not zipfile.is_zipfile(p):
        raise CheckpointError(f"'{p}' is not a medcam checkpoint: not a PyTorch zip archive "
                              f"(truncated, or a different file format)")
    try:
        payload = torch.load(p, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"refusing to load '{p}': it contains Python objects other than tensors and plain "
                              f"containers, which could run arbitrary code (possibly a malicious pickle): {err}") from err
    except Exception as err:  # zip/stream errors from a truncated or corrupt archive
        raise CheckpointError(f"'{p}' is corrupt or truncated and cannot be read: {type(err).__name__}: {err}") from err
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{p}' is a PyTorch file but not a medcam checkpoint (no '{FORMAT}' marker); "
                              f"for a plain state dict, build the model and use load_state_dict")
    check_payload(payload, f"'{p}'")
    try:
        spec = json.loads(payload["spec"])
        metadata = json.loads(payload["metadata"])
    except (KeyError, TypeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"'{p}': spec or metadata is unreadable: {err}") from err
    return Checkpoint(kind=payload["kind"], spec=spec, state_dict=payload["state_dict"], metadata=metadata,
                      training_state=payload.get("training_state"), path=str(p))


def check_payload(payload: Mapping[str, Any], where: str) -> None:
    """Refuse a loaded checkpoint of a newer format, or whose content no longer matches its stored digest.

    ``where`` names the file in errors.
    """
    if payload.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{where} has checkpoint format {payload.get('format_version')}; this medcam reads "
                              f"up to {FORMAT_VERSION}: upgrade medcam")
    if payload.get("sha256") != _checksum(payload):
        raise CheckpointError(f"{where} failed its integrity check: its content changed after it was saved "
                              f"(corrupt or altered); pass the file's expected sha256 to tell a trusted file")


def is_medcam_checkpoint(obj: Any) -> bool:
    """Whether ``obj`` (what ``torch.load`` returned) is a file written by :func:`save`."""
    return isinstance(obj, Mapping) and obj.get("format") == FORMAT


#: Where a medcam checkpoint keeps a backbone's weights, first match wins: a model's backbone, the
#: medcam backbone under a segmenter's encoder (U-Net & co.), a segmenter's own encoder (Tiramisu).
BACKBONE_PARTS = ("backbone.", "net.encoder.backbone.", "net.encoder.")


def backbone_weights(payload: Mapping[str, Any], where: str) -> dict[str, Tensor]:
    """The backbone's tensors of a loaded medcam checkpoint, its prefix (:data:`BACKBONE_PARTS`) removed.

    For backbones whose ``checkpoint_path`` names a saved medcam model (a new model
    starting from a trained one's backbone, ``init_from``). ``where`` names the file in errors.

    Raises:
        CheckpointError: the checkpoint holds no backbone or encoder weights.
    """
    state = payload.get("state_dict")
    state = state if isinstance(state, Mapping) else {}
    for prefix in BACKBONE_PARTS:
        weights = {str(k)[len(prefix):]: v for k, v in state.items() if str(k).startswith(prefix)}
        if weights:
            return weights
    raise CheckpointError(f"{where} is a medcam checkpoint without 'backbone.*' or 'net.encoder.*' weights")


def without_weight_sources(spec: Any) -> Any:
    """A copy of ``spec`` with every ``pretrained``/``checkpoint_path`` switched off, at any depth.

    Rebuilding a saved model must not download weights or read the file it was
    first initialised from (which may not exist on this machine): the
    checkpoint's own state dict replaces them anyway.
    """
    if isinstance(spec, Mapping):
        return {k: (WEIGHT_PARAMETERS[k] if k in WEIGHT_PARAMETERS and v not in (None, False)
                    else without_weight_sources(v)) for k, v in spec.items()}
    if isinstance(spec, list):
        return [without_weight_sources(v) for v in spec]
    return spec


def load(path: str | os.PathLike[str], map_location: str | torch.device = "cpu", *,
         sha256: str | None = None) -> nn.Module:
    """Rebuild the model stored at ``path`` from its spec and load its weights.

    Returns the model in eval mode, with ``checkpoint_metadata`` (the saved
    metadata dict) attached. No code is needed besides the installed plugins
    that provide the spec's names. Weight sources in the spec (``pretrained``,
    ``checkpoint_path``) are not re-read: the checkpoint holds the weights.
    ``model.spec`` is the spec as saved.

    ``sha256``: the file's expected digest (``sha256sum model.pt``), from a
    source you trust; a different file raises :class:`CheckpointError` before
    anything in it is read. The digest stored inside the file detects
    corruption only: someone who can rewrite the file can rewrite it too.
    """
    from .build import build_model, build_segmenter

    ckpt = read_checkpoint(path, map_location=map_location, sha256=sha256)
    builder = build_model if ckpt.kind == "model" else build_segmenter
    model = builder(without_weight_sources(ckpt.spec))
    model.spec = ckpt.spec
    try:
        model.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as err:
        raise CheckpointError(f"'{path}': weights do not fit the architecture its spec builds "
                              f"(was a plugin changed since saving?): {err}") from err
    model.checkpoint_metadata = ckpt.metadata
    return model.to(map_location).eval()
