"""The providers: one module each, found automatically.

A provider module defines ``PROVIDER = Provider(...)``: its settings block, the names of
the settings that must be set for it to count as configured, and its source class
(``AuditLogSource``, source.py).
Adding a fifth provider is one new module here, one schema, one emulator module and one
test file; nothing else changes.

A provider can also live in a package of its own: it registers under the entry-point group
``tap_auditlogs.providers`` (in its ``pyproject.toml``:
``[project.entry-points."tap_auditlogs.providers"] okta = "tap_auditlogs_okta:PROVIDER"``),
and the tap finds it once that package is installed beside it.
"""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing as t
from functools import cache
from importlib import metadata

from singer_sdk import typing as th

if t.TYPE_CHECKING:
    from tap_auditlogs.engine.source import AuditLogSource
    from tap_auditlogs.output.unified import UnifiedMapping


@dataclasses.dataclass(frozen=True)
class Provider:
    """What the tap needs to know about one provider."""

    #: The provider object's class (source.py); the tap makes its stream from it.
    source_class: type[AuditLogSource]
    settings: tuple[th.Property, ...]
    required: tuple[str, ...]  # settings that must all be set to enable the provider
    description: str = ""
    #: How its records read in ``audit_events`` (the module's "audit_events" section);
    #: None: the provider does not feed ``audit_events``.
    unified: UnifiedMapping | None = None

    @property
    def key(self) -> str:
        """The settings block and the stream's provider key, e.g. ``socket`` (declared once,
        on the source: ``provider``)."""
        return self.source_class.provider

    @property
    def label(self) -> str:
        """The provider's name for people, e.g. ``Socket`` (the source's ``provider_label``)."""
        return self.source_class.provider_label


#: Where installed packages register providers (``module:PROVIDER``, or a module that has one).
ENTRY_POINT_GROUP = "tap_auditlogs.providers"


@cache
def all_providers() -> tuple[Provider, ...]:
    """Every provider module in this package and every registered provider, sorted by key."""
    found: dict[str, Provider] = {}
    modules = [
        importlib.import_module(f"{__name__}.{module_info.name}")
        for module_info in pkgutil.iter_modules(__path__)
    ]
    candidates: list[tuple[str, object]] = [
        (module.__name__, getattr(module, "PROVIDER", None)) for module in modules
    ]
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        loaded = entry.load()
        provider = getattr(loaded, "PROVIDER", loaded)
        if not isinstance(provider, Provider):
            raise TypeError(
                f"The entry point {entry.name} = {entry.value} ({ENTRY_POINT_GROUP}) is not "
                "a tap_auditlogs.providers.Provider."
            )
        candidates.append((entry.value, provider))
    for origin, provider in candidates:
        if not isinstance(provider, Provider):
            continue
        if provider.key in found and found[provider.key] is not provider:
            raise TypeError(f"Two providers use the key {provider.key!r} ({origin}).")
        found[provider.key] = provider
    return tuple(sorted(found.values(), key=lambda p: p.key))


def and_list(names: t.Iterable[str]) -> str:
    """``A``, ``A and B``, ``A, B and C``: names as prose."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def provider_names() -> str:
    """Every provider's label as prose (``ConfigCat, Nirvana Labs, Socket and Torq``), for
    text that names them all: the tap's description, the packaging and Hub metadata."""
    return and_list(provider.label for provider in all_providers())


LOOKBACK_DESCRIPTION = "Seconds re-read before the bookmark on every run, for late events."


def base_url_setting(source_class: type[AuditLogSource], api: str) -> th.Property:
    """The ``base_url`` setting every provider block has."""
    return th.Property(
        "base_url",
        th.URIType,
        default=source_class.default_base_url,
        description=f"{api} base URL.",
    )


def lookback_setting(
    source_class: type[AuditLogSource], description: str = LOOKBACK_DESCRIPTION
) -> th.Property:
    """The ``lookback_seconds`` setting every provider block has."""
    return th.Property(
        "lookback_seconds",
        th.IntegerType,
        default=source_class.default_lookback_seconds,
        description=description,
    )


def retention_setting(source_class: type[AuditLogSource]) -> th.Property:
    """The ``retention_days`` setting every provider block gets (coverage.py)."""
    return th.Property(
        "retention_days",
        th.NumberType,
        default=source_class.default_retention_days,
        description=(
            "Days the provider keeps audit events for this account. A resume point older "
            "than that is reported as a retention gap: a WARNING naming the lost range, a "
            "gap in sync_coverage, and exit code 4 (see retention_gap_is_error). "
            f"{source_class.retention_documented}"
        ),
    )


def rate_limit_setting(source_class: type[AuditLogSource]) -> th.Property:
    """The ``max_requests_per_second`` setting every provider block gets (``tap.py``)."""
    documented = source_class.rate_limit
    if documented is None:
        default = None
        what = "No limit is documented: none by default."
    else:
        limit, window = documented
        default = limit / window
        per = {60.0: "minute", 1.0: "second"}.get(window, f"{window:g} s")
        what = f"Default: the documented {limit} per {per} (kept over any {per})."
    return th.Property(
        "max_requests_per_second",
        th.NumberType,
        default=default,
        description=f"Requests per second at most, across all concurrent reads. {what}",
    )
