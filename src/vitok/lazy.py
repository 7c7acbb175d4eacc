"""Lazy package namespaces: ``from vitok.data import MediaFolder`` works as usual, but a package's
``__init__`` imports nothing heavy until one of its names is first used (PEP 562 module
``__getattr__``). So reading a config, ``vitok --help`` or a command line that is wrong starts in
a fraction of a second instead of waiting ~1 s for torch to import.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable


def attach(package: str, exports: dict[str, list[str]]) -> tuple[Callable[[str], object], Callable[[], list[str]],
                                                                   list[str]]:
    """``__getattr__``, ``__dir__`` and ``__all__`` for the package named ``package`` whose public
    names are ``exports`` (module -> the names it defines). A name is imported from its module on
    first access and then kept in the package's namespace. Any other name is tried as a submodule
    (``import vitok; vitok.presets`` works, as it did when the packages imported eagerly);
    ``AttributeError`` when there is none, as for an ordinary module."""
    home = {name: module for module, names in exports.items() for name in names}

    def getattr_(name: str) -> object:
        if name not in home:
            try:
                return importlib.import_module(f"{package}.{name}")
            except ModuleNotFoundError as err:
                if err.name != f"{package}.{name}":  # the submodule exists but fails to import
                    raise
                raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(home[name]), name)
        setattr(sys.modules[package], name, value)
        return value

    def dir_() -> list[str]:
        return sorted({*vars(sys.modules[package]), *home})

    return getattr_, dir_, sorted(home)
