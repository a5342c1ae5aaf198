"""Named factories, one registry per kind, discovered through entry points.

A registry maps a normalized name (lowercase, ``-`` -> ``_``) to a factory: a
backbone, segmenter, head, attribution method, loss, a model preset (a spec),
a metric of attribution maps (faithfulness, sanity, pointing game), a pretrained
weights source, or a data set layout (a :class:`medcam.data.layouts.DatasetLayout`).
Names come from two places:

* entry points in the group ``medcam.<kind>`` (``medcam.backbones``, ...), read
  from installed distributions' metadata with :mod:`importlib.metadata`. The
  bundled plugins use exactly this mechanism. Reading the metadata imports
  nothing; a plugin's module is imported the first time one of its names is used.
* :meth:`Registry.register`, as a decorator or a call, for code that is already
  imported (notebooks, tests).

This module deliberately imports neither torch nor any plugin, so listing names
is fast and cannot be broken by a heavy dependency.

Example::

    from medcam.registry import backbones
    backbones.list("resnet*")          # names only, from metadata
    backbones.info("resnet50")         # summary, citation, channels, strides
    factory = backbones.get("resnet50")
"""
from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata as importlib_metadata
import os
import re
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, Mapping, Sequence, TypeVar

from .errors import NameClashError, PluginError, UnknownNameError

__all__ = [
    "Registry", "Entry", "Preset", "describe", "normalize_name", "close_matches", "did_you_mean", "suggestion",
    "REGISTRIES", "get_registry", "backbones", "segmenters", "heads", "attributions", "losses", "models", "metrics",
    "weights", "datasets", "BUNDLED_DISTRIBUTION", "AUTOLOAD_ENV",
]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

BUNDLED_DISTRIBUTION = "medcam"
AUTOLOAD_ENV = "MEDCAM_DISABLE_PLUGIN_AUTOLOAD"
META_ATTRIBUTE = "__medcam_meta__"


def normalize_name(name: str) -> str:
    """Canonical form of a registry name: stripped, lowercase, ``-`` -> ``_``."""
    if not isinstance(name, str) or not name.strip():
        raise TypeError(f"a registry name must be a non-empty string, got {name!r}")
    return name.strip().lower().replace("-", "_")


def _natural_key(text: str) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """Candidates that look like ``word``: prefix matches first, then difflib's best.

    Prefix matches win outright (``resnet5`` -> ``resnet50``, not ``resnet18``);
    otherwise the difflib matches within 0.1 of the best ratio are returned.
    """
    candidates = sorted(set(candidates), key=_natural_key)
    prefixed = [c for c in candidates if c.startswith(word) or (len(c) >= 3 and word.startswith(c))]
    if prefixed:
        return sorted(prefixed, key=lambda c: -difflib.SequenceMatcher(None, word, c).ratio())[:n]
    scored = [(difflib.SequenceMatcher(None, word, c).ratio(), c) for c in candidates]
    scored = [(s, c) for s, c in scored if s >= 0.6]
    if not scored:
        return []
    best = max(s for s, _ in scored)
    return [c for s, c in sorted(scored, key=lambda sc: -sc[0]) if s >= best - 0.1][:n]


def did_you_mean(word: str, candidates: Iterable[str]) -> str:
    """``"; did you mean 'x'?"``, ``"; did you mean 'x' or 'y'?"`` or ``""`` (:func:`close_matches`)."""
    return suggestion(close_matches(word, candidates))


def suggestion(matches: Sequence[str]) -> str:
    """``"; did you mean 'x', 'y' or 'z'?"`` naming ``matches`` (``""`` for none)."""
    if not matches:
        return ""
    quoted = [f"'{m}'" for m in matches]
    joined = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]
    return f"; did you mean {joined}?"


def describe(*, summary: str, citation: str | None = None, **meta: Any) -> Callable[[F], F]:
    """Attach registry metadata to a factory without building anything.

    ``summary`` is one line; ``citation`` names the paper. Backbones also give
    ``channels`` and ``strides`` (per feature level, default ``out_indices``),
    ``cam_level`` (index into those levels CAM methods target by default) and
    ``layout`` (``"map"`` for CNNs, ``"tokens"`` for models whose tokens are
    exposed as maps). The metadata is what ``medcam info NAME`` prints.
    """

    def decorate(factory: F) -> F:
        setattr(factory, META_ATTRIBUTE, {"summary": summary, "citation": citation, **meta})
        return factory

    return decorate


class Preset(dict):
    """A model preset: a (partial) model spec with registry metadata.

    A preset is a plain mapping of spec keys (``backbone``, ``head``,
    ``num_classes``, ...). User keys deep-merge over it in
    :func:`medcam.build_model`.
    """

    def __init__(self, spec: Mapping[str, Any], *, summary: str, citation: str | None = None, **meta: Any):
        super().__init__(spec)
        setattr(self, META_ATTRIBUTE, {"summary": summary, "citation": citation, **meta})


@dataclass
class Entry:
    """One registered name and where it comes from.

    ``provider`` is the distribution that declared the entry point (or the
    module, for in-code registrations); ``value`` is ``"module:attr"``.
    """

    name: str
    kind: str
    provider: str
    value: str
    entry_point: importlib_metadata.EntryPoint | None = None
    obj: Any = None
    loaded: bool = False
    error: BaseException | None = None
    others: list["Entry"] = field(default_factory=list)  # clashing providers

    @property
    def bundled(self) -> bool:
        return self.provider == BUNDLED_DISTRIBUTION


def _autoload_disabled() -> bool:
    return os.environ.get(AUTOLOAD_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _distribution_name(ep: importlib_metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    name = getattr(dist, "name", None) if dist is not None else None
    if not name:
        return "<unknown distribution>"
    return re.sub(r"[-_.]+", "-", name).lower()


def _factory_or_preset(obj: Any) -> bool:
    """What most kinds register: a factory (callable) or a preset (a spec mapping)."""
    return callable(obj) or isinstance(obj, Mapping)


def _weights_source(obj: Any) -> bool:
    from .weights import WeightsSource  # imported when a weights entry is loaded (weights imports this module)

    return isinstance(obj, WeightsSource)


def _dataset_layout(obj: Any) -> bool:
    from .data.layouts import DatasetLayout  # light: imported when a datasets entry is loaded

    return isinstance(obj, DatasetLayout)


class Registry(Generic[T]):
    """Name -> factory for one kind of part.

    Args:
        kind: plural kind name, e.g. ``"backbones"``; the entry-point group is
            ``"medcam." + kind``.
        injected: factory parameters that medcam fills from the enclosing spec
            (e.g. ``num_classes`` for heads); users may not set them in a part spec.
        namespaces: allow ``prefix/name`` lookups, where the entry named
            ``prefix`` is a factory whose first argument is the rest of the name
            (``timm/convnext_tiny``).
        accepts: what an entry point of this kind may name (default: a factory or a preset);
            anything else is a :class:`PluginError` naming the package, described by ``accepts_what``.
    """

    def __init__(self, kind: str, *, injected: Iterable[str] = (), namespaces: bool = False,
                 accepts: Callable[[Any], bool] | None = None, accepts_what: str = "a factory or a preset"):
        self.kind = kind
        self.accepts = accepts or _factory_or_preset
        self.accepts_what = accepts_what
        self.singular = kind[:-2] if kind.endswith("sses") else kind[:-1] if kind.endswith("s") else kind
        self.group = f"medcam.{kind}"
        self.injected = tuple(injected)
        self.namespaces = namespaces
        self._entries: dict[str, Entry] = {}
        self._code_entries: dict[str, Entry] = {}
        self._discovered = False
        self._warned: set[str] = set()
        self._lock = threading.RLock()
        self._entry_points_source: Callable[[], Iterable[importlib_metadata.EntryPoint]] | None = None

    # ------------------------------------------------------------------ discovery
    def _read_entry_points(self) -> Iterable[importlib_metadata.EntryPoint]:
        if self._entry_points_source is not None:
            return self._entry_points_source()
        return importlib_metadata.entry_points(group=self.group)

    def _discover(self) -> None:
        with self._lock:
            if self._discovered:
                return
            entries: dict[str, Entry] = {}
            disabled = _autoload_disabled()
            for ep in self._read_entry_points():
                provider = _distribution_name(ep)
                if disabled and provider != BUNDLED_DISTRIBUTION:
                    continue
                try:
                    name = normalize_name(ep.name)
                except TypeError:
                    continue
                new = Entry(name=name, kind=self.kind, provider=provider, value=ep.value, entry_point=ep)
                self._add(entries, new)
            for name, entry in self._code_entries.items():
                self._add(entries, entry)
            self._entries = entries
            self._discovered = True

    @staticmethod
    def _add(entries: dict[str, Entry], new: Entry) -> None:
        old = entries.get(new.name)
        if old is None:
            entries[new.name] = new
        elif (old.provider, old.value) == (new.provider, new.value):
            return  # the same declaration seen twice (e.g. a distribution twice on sys.path)
        else:
            old.others.append(new)

    def refresh(self) -> None:
        """Forget discovered entry points (after installing a plugin in-process)."""
        with self._lock:
            self._discovered = False
            self._entries = {}

    def use_entry_points(self, source: Callable[[], Iterable[importlib_metadata.EntryPoint]] | None) -> None:
        """Replace the entry-point source (tests build :class:`EntryPoint` objects).

        ``None`` restores the installed distributions' metadata.
        """
        self._entry_points_source = source
        self.refresh()

    # ------------------------------------------------------------------ registration
    def register(self, obj: T | None = None, *, name: str | None = None, override: bool = False) -> Any:
        """Register ``obj`` under ``name`` (default: its ``__name__``).

        Use as ``@registry.register``, ``@registry.register(name="x")`` or
        ``registry.register(obj, name="x")``. Registering a name another provider
        already holds raises :class:`NameClashError` naming both, unless
        ``override=True``.
        """

        def add(target: T) -> T:
            raw = name if name is not None else getattr(target, "__name__", None)
            if raw is None:
                raise TypeError(f"cannot infer a name for {target!r}; pass name=")
            key = normalize_name(raw)
            module = getattr(target, "__module__", None) or type(target).__module__
            qualname = getattr(target, "__qualname__", None) or raw
            entry = Entry(name=key, kind=self.kind, provider=module.split(".")[0], value=f"{module}:{qualname}",
                          obj=target, loaded=True)
            with self._lock:
                self._discover()
                old = self._entries.get(key)
                if old is not None and not override and old.obj is not target:
                    raise NameClashError(
                        f"{self.singular} '{key}' is already registered by '{old.provider}' ({old.value}); "
                        f"'{entry.provider}' ({entry.value}) cannot register it again "
                        f"(pick another name, or pass override=True)"
                    )
                self._code_entries[key] = entry
                self._entries[key] = entry
            return target

        if obj is not None:
            return add(obj)
        return add

    def unregister(self, name: str) -> None:
        """Remove an in-code registration (entry points cannot be removed)."""
        key = normalize_name(name)
        with self._lock:
            self._code_entries.pop(key, None)
            self.refresh()

    # ------------------------------------------------------------------ lookup
    def list(self, pattern: str | Iterable[str] = "*", *, exclude: str | Iterable[str] = ()) -> list[str]:
        """Registered names matching the glob(s), natural-sorted. Imports nothing."""
        self._discover()
        includes = [pattern] if isinstance(pattern, str) else list(pattern)
        excludes = [exclude] if isinstance(exclude, str) else list(exclude)
        includes = [normalize_name(p) for p in includes] or ["*"]
        names = [n for n in self._entries if any(fnmatch.fnmatchcase(n, p) for p in includes)]
        names = [n for n in names if not any(fnmatch.fnmatchcase(n, normalize_name(p)) for p in excludes)]
        return sorted(names, key=_natural_key)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        try:
            self.entry(name)
        except UnknownNameError:
            return False
        return True

    def __len__(self) -> int:
        self._discover()
        return len(self._entries)

    def _unknown(self, name: str) -> UnknownNameError:
        hint = did_you_mean(name, self._entries)
        return UnknownNameError(f"unknown {self.singular} '{name}'{hint} (medcam list {self.kind})")

    def entry(self, name: str) -> Entry:
        """The :class:`Entry` for ``name`` (``prefix/rest`` resolves to ``prefix``)."""
        self._discover()
        key = normalize_name(name)
        entry = self._entries.get(key)
        if entry is None and self.namespaces and "/" in key:
            prefix = key.split("/", 1)[0]
            entry = self._entries.get(prefix)
            if entry is not None and not self._meta_of(entry, load=True).get("namespace"):
                entry = None
        if entry is None:
            raise self._unknown(key)
        return entry

    def _load(self, entry: Entry) -> Any:
        if entry.others:
            providers = [entry] + entry.others
            listed = " and ".join(f"'{e.provider}' ({e.value})" for e in providers)
            raise NameClashError(
                f"{self.singular} '{entry.name}' is provided by both {listed}; uninstall one of them "
                f"(or set {AUTOLOAD_ENV}=1 to use only medcam's bundled plugins)"
            )
        if entry.loaded:
            return entry.obj
        if entry.error is not None:
            raise self._plugin_error(entry, entry.error) from entry.error
        assert entry.entry_point is not None
        try:
            obj = entry.entry_point.load()
        except Exception as err:  # any failure inside a plugin's import is attributed to it
            entry.error = err
            raise self._plugin_error(entry, err) from err
        if not self.accepts(obj):
            entry.error = TypeError(f"it names an object of type {type(obj).__name__}, not {self.accepts_what}")
            raise self._plugin_error(entry, entry.error)
        entry.obj, entry.loaded = obj, True
        return obj

    def _plugin_error(self, entry: Entry, err: BaseException) -> PluginError:
        return PluginError(
            f"{self.singular} '{entry.name}' comes from package '{entry.provider}' ({entry.value}), "
            f"which failed to load: {type(err).__name__}: {err}"
        )

    def get(self, name: str) -> T:
        """The factory (or preset) registered as ``name``; imports its plugin module.

        For a namespaced name ``prefix/rest`` the namespace factory is returned
        with ``rest`` bound as its first argument.
        """
        key = normalize_name(name)
        entry = self.entry(key)
        obj = self._load(entry)
        if entry.name != key:  # namespace lookup
            import functools

            rest = name.strip().split("/", 1)[1]
            bound = functools.partial(obj, rest)
            functools.update_wrapper(bound, obj)
            del bound.__wrapped__  # so inspect.signature drops the bound name (spec validation reads it)
            return bound  # type: ignore[return-value]
        return obj

    def _meta_of(self, entry: Entry, *, load: bool) -> dict[str, Any]:
        if not entry.loaded and not load:
            return {}
        obj = self._load(entry)
        return dict(getattr(obj, META_ATTRIBUTE, {}) or {})

    def info(self, name: str) -> dict[str, Any]:
        """Everything known about ``name`` without building it.

        Keys: ``name``, ``kind``, ``provider`` (distribution), ``value``
        (``module:attr``), ``summary``, ``citation`` and any factory metadata
        (for backbones ``channels``, ``strides``, ``cam_level``, ``layout``), plus
        ``parameters`` (name -> default, ``"<required>"`` when there is none).
        Imports only the light module the entry point names.
        """
        entry = self.entry(name)
        obj = self._load(entry)
        out: dict[str, Any] = {"name": entry.name, "kind": self.kind, "provider": entry.provider, "value": entry.value}
        out.update({"summary": None, "citation": None})
        out.update(getattr(obj, META_ATTRIBUTE, {}) or {})
        if callable(obj) and not isinstance(obj, Mapping):
            out["parameters"] = _parameter_defaults(obj, skip=self.injected)
        return out

    def infos(self, pattern: str | Iterable[str] = "*") -> list[dict[str, Any]]:
        """:meth:`info` for every matching name; a broken plugin warns once and is reported.

        A name whose plugin fails to import appears with ``"error"`` set, and a
        :class:`RuntimeWarning` naming the package and cause is issued the first
        time it is seen.
        """
        rows = []
        for name in self.list(pattern):
            try:
                rows.append(self.info(name))
            except (PluginError, NameClashError) as err:
                entry = self._entries[name]
                if name not in self._warned:
                    self._warned.add(name)
                    warnings.warn(str(err), RuntimeWarning, stacklevel=2)
                rows.append({"name": name, "kind": self.kind, "provider": entry.provider, "value": entry.value,
                             "error": str(err)})
        return rows

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self)} names)"


def _parameter_defaults(factory: Callable[..., Any], skip: Iterable[str] = ()) -> dict[str, Any]:
    import inspect

    try:
        signature = inspect.signature(factory)
    except (TypeError, ValueError):
        return {}
    out: dict[str, Any] = {}
    for p in signature.parameters.values():
        if p.name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        out[p.name] = "<required>" if p.default is p.empty else p.default
    return out


backbones: Registry[Any] = Registry("backbones", injected=("in_chans",), namespaces=True)
segmenters: Registry[Any] = Registry("segmenters", injected=("in_chans", "num_classes"))
heads: Registry[Any] = Registry("heads", injected=("feature_info", "num_classes"))
attributions: Registry[Any] = Registry("attributions")
losses: Registry[Any] = Registry("losses", injected=("num_classes", "multilabel"))
models: Registry[Preset] = Registry("models")
metrics: Registry[Any] = Registry("metrics")
#: pretrained weights sources (:class:`medcam.weights.WeightsSource`), declared per backbone
weights: Registry[Any] = Registry("weights", accepts=_weights_source, accepts_what="a medcam.weights.WeightsSource")
#: data set layouts (``busi``, ``nih``, ...): :class:`medcam.data.layouts.DatasetLayout` declarations
datasets: Registry[Any] = Registry("datasets", accepts=_dataset_layout,
                                   accepts_what="a medcam.data.layouts.DatasetLayout")

REGISTRIES: dict[str, Registry[Any]] = {
    r.kind: r for r in (backbones, segmenters, heads, attributions, losses, models, metrics, weights, datasets)
}


def get_registry(kind: str) -> Registry[Any]:
    """The registry for ``kind``; singular and plural both work (``"backbone"``)."""
    key = normalize_name(kind)
    if key in REGISTRIES:
        return REGISTRIES[key]
    if key + "s" in REGISTRIES:
        return REGISTRIES[key + "s"]
    raise UnknownNameError(f"unknown kind '{kind}'{did_you_mean(key, REGISTRIES)} (kinds: {', '.join(REGISTRIES)})")
