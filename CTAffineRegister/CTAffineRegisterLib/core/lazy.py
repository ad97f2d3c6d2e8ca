"""Names of a package's modules, given on first use (PEP 562): importing a package costs nothing
until a name is asked for.

``import CTAffineRegisterLib`` used to import the whole library (SimpleITK, numpy, every subpackage:
0.4 s) before ``--help`` could answer; with a package's public names listed here instead, a command
imports only what it uses, while ``from package import name``, ``package.name``, ``__all__`` and
``dir(package)`` stay as they were. Pure module: the standard library only.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any, Callable


def lazy_names(package: str, names: Mapping[str, str], namespace: dict) -> tuple[Callable, Callable]:
    """The ``__getattr__`` and ``__dir__`` of a package whose public names live in its submodules.

    Args:
        package: the package's ``__name__``.
        names: public name → the module defining it, relative to the package (``".pair.register"``,
            ``"..errors"``).
        namespace: the package's ``globals()``: a name, once loaded, is stored there, so the next use
            is an ordinary attribute look-up.

    Returns:
        ``(__getattr__, __dir__)`` for the package module.
    """

    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value
        return value

    def __dir__() -> list:
        return sorted(set(namespace) | set(names))

    return __getattr__, __dir__
