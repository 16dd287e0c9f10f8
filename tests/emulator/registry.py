"""Provider discovery: every module of this package that defines a module-level `PROVIDER`,
and the providers registered from elsewhere with `register_provider` (a provider that lives
outside this package, e.g. `tests/example_provider/`)."""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .provider import Provider


_REGISTERED: dict[str, type[Provider]] = {}


def register_provider(cls: type[Provider]) -> None:
    """Serve `cls` too, from emulators created from now on (idempotent)."""
    from .scenario import _switch_table  # noqa: PLC0415 (provider modules import us)

    _REGISTERED[cls.name] = cls
    available_providers.cache_clear()
    _switch_table.cache_clear()


def unregister_provider(cls: type[Provider]) -> None:
    """Stop serving a registered provider (emulators created from now on)."""
    from .scenario import _switch_table  # noqa: PLC0415 (provider modules import us)

    _REGISTERED.pop(cls.name, None)
    available_providers.cache_clear()
    _switch_table.cache_clear()


@cache
def available_providers() -> dict[str, type[Provider]]:
    """Provider key -> class, for every provider module in the package and every
    registered provider."""
    package = __name__.rpartition(".")[0]
    found: dict[str, type[Provider]] = {}
    for info in pkgutil.iter_modules(importlib.import_module(package).__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        cls = getattr(module, "PROVIDER", None)
        if cls is not None:
            if cls.name in found:
                raise RuntimeError(f"two provider modules claim the name {cls.name!r}")
            found[cls.name] = cls
    for name, cls in _REGISTERED.items():
        if name in found and found[name] is not cls:
            raise RuntimeError(f"two providers claim the name {name!r}")
        found[name] = cls
    return found


def documented_rate_limits() -> dict[str, tuple[int, float]]:
    """Provider key -> its published rate limit (max requests, window seconds), for the
    providers that publish one; `Scenario(rate_limits=...)` enforces them."""
    return {
        name: cls.rate_limit
        for name, cls in available_providers().items()
        if cls.rate_limit is not None
    }
