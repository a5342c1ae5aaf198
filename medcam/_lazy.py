"""Lazy package attributes (PEP 562): ``import medcam.data`` stays cheap until a name is used."""
from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping, MutableMapping


def lazy_attributes(package: str, table: Mapping[str, str], namespace: MutableMapping[str, Any]
                    ) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Module-level ``__getattr__`` and ``__dir__`` for ``package``.

    Args:
        package: the package's ``__name__`` (for error messages).
        table: ``attribute -> module`` to import it from; an attribute whose module's
            name ends with ``.attribute`` is that module itself (``medcam.metrics``).
        namespace: the package's ``globals()``; a resolved attribute is cached there,
            so each is imported once.

    Usage, in a package's ``__init__``::

        __getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
    """

    def __getattr__(name: str) -> Any:
        if name not in table:
            raise AttributeError(f"module '{package}' has no attribute '{name}'")
        module = importlib.import_module(table[name])
        value = module if module.__name__.endswith("." + name) else getattr(module, name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(table))

    return __getattr__, __dir__
