"""The tap's settings: the schema, which providers are configured, and validation.

Settings are assembled from the providers' own blocks (``providers/``) plus the common ones
below. Validation gives one line per problem, naming the setting and never quoting a value
(it could be a secret).
"""

from __future__ import annotations

import difflib
import logging
import typing as t
from functools import cache
from urllib.parse import urlsplit

from jsonschema import Draft7Validator
from singer_sdk import typing as th

from tap_auditlogs.core.errors import ConfigError
from tap_auditlogs.core.instants import NS_PER_SECOND, format_instant, now_instant, parse_instant
from tap_auditlogs.core.redaction import Redactor
from tap_auditlogs.engine.declaration import documented_spelling, spelling_key
from tap_auditlogs.providers import (
    Provider,
    all_providers,
    and_list,
    rate_limit_setting,
    retention_setting,
)
from tap_auditlogs.streams.audit_events import UNIFIED_SETTINGS

if t.TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from jsonschema.exceptions import ValidationError

logger = logging.getLogger("tap-auditlogs")


def start_date_setting(providers: t.Iterable[Provider]) -> th.Property:
    """``start_date``; its default is each provider's first-run reach (declared there)."""
    reach = _by_value(providers, lambda source: source.first_run_reach)
    defaults = "; ".join(f"{and_list(labels)}: {what}" for what, labels in reach.items())
    return th.Property(
        "start_date",
        th.DateTimeType,
        description=(
            "Read events at or after this instant (ISO 8601, e.g. 2024-01-01T00:00:00Z; a "
            "bare date means midnight UTC, a time without a timezone is read as UTC with a "
            "warning). Default: each "
            f"provider's own default ({defaults})."
        ),
    )


def end_date_setting(providers: t.Iterable[Provider]) -> th.Property:
    """``end_date``; how each provider sends it is declared there (``upper_bound_param``)."""
    how = _by_value(providers, _upper_bound_sent)
    sent_as = "; ".join(f"{and_list(labels)} {what}" for what, labels in how.items())
    return th.Property(
        "end_date",
        th.DateTimeType,
        description=(
            "Read only events before this instant (exclusive; ISO 8601, read as start_date "
            "is), e.g. to re-extract one period into a separate "
            f"table. Sent to the API ({sent_as}) and checked on every event; bookmarks stay "
            "before it. Must be after start_date; one later than the run's start reads like "
            "none. Default: none (up to now)."
        ),
    )


def _by_value(
    providers: t.Iterable[Provider], value: t.Callable[[t.Any], str]
) -> dict[str, list[str]]:
    """The providers' labels grouped by what ``value`` says of each one's stream class."""
    grouped: dict[str, list[str]] = {}
    for provider in providers:
        grouped.setdefault(value(provider.source_class), []).append(provider.label)
    return grouped


def _upper_bound_sent(stream: t.Any) -> str:
    """How a provider's stream sends ``end_date`` (its ``upper_bound_param`` declaration)."""
    param = stream.upper_bound_param
    if param is None:
        return "on the client only"
    if stream.upper_bound_trusted:
        return f"as `{param}`"
    return f"as `{param}` once its pages prove the filters honoured"


COMMON_SETTINGS = (
    th.Property(
        "request_timeout",
        th.IntegerType,
        default=60,
        description="Seconds to wait for a connection or for data before retrying.",
    ),
    th.Property(
        "request_deadline_seconds",
        th.IntegerType,
        default=120,
        description=(
            "Seconds one answer may take in all, however slowly its data trickles in; a "
            "slower one is retried like a timeout."
        ),
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=8,
        description="Retries of one request after 429, 5xx, timeouts or broken responses.",
    ),
    th.Property(
        "backoff_base_seconds",
        th.NumberType,
        default=1.0,
        description="First wait between retries (doubled each time, with jitter, at most 60 s).",
    ),
    th.Property(
        "concurrency",
        th.IntegerType,
        default=8,
        description=(
            "Organizations (partitions) read at the same time, across all providers. The "
            "output keeps the order of a one-at-a-time run, so resuming works the same; 1 "
            "reads one partition after another."
        ),
    ),
    th.Property(
        "keep_nul_characters",
        th.BooleanType,
        default=False,
        description=(
            "Keep the NUL character (U+0000) in text as the API sent it. By default each one "
            "is replaced with U+FFFD, the replacement character, because PostgreSQL cannot "
            "store it and target-postgres then fails the whole load; set true only for "
            "targets that store it."
        ),
    ),
    th.Property(
        "retention_gap_is_error",
        th.BooleanType,
        default=True,
        description=(
            "End a run with exit code 4 when a resumed organization's events older than its "
            "provider's retention_days were gone before they could be read (everything "
            "still there is read first). False: the WARNING and the gap in sync_coverage only."
        ),
    ),
    th.Property(
        "max_retry_wait",
        th.IntegerType,
        default=300,
        description=(
            "Longest Retry-After (seconds) the tap waits out. A longer one stops that "
            "provider cleanly with its state saved, so the next run continues."
        ),
    ),
)

#: Numeric settings that must be positive (name -> minimum).
MINIMUMS = {
    "request_timeout": 1,
    "request_deadline_seconds": 1,
    "max_retries": 0,
    "backoff_base_seconds": 0,
    "max_retry_wait": 0,
    "concurrency": 1,
}


@cache
def config_schema() -> dict:
    """The settings schema: common settings plus one object per provider (one object: the
    SDK adds its own settings to it, see ``settings_from_environment``)."""
    blocks = [
        th.Property(
            provider.key,
            th.ObjectType(
                *provider.settings,
                rate_limit_setting(provider.source_class),
                retention_setting(provider.source_class),
                additional_properties=False,
            ),
            description=f"{provider.description} Set {', '.join(provider.required)} to enable.",
        )
        for provider in all_providers()
    ]
    start_date = start_date_setting(all_providers())
    return th.PropertiesList(
        start_date, end_date_setting(all_providers()), *COMMON_SETTINGS, *UNIFIED_SETTINGS, *blocks
    ).to_dict()


def configured_providers(
    config: Mapping[str, t.Any], *, allow_none: bool = False
) -> list[Provider]:
    """Providers whose block is present; raises ConfigError when one is half configured,
    or when none is (unless ``allow_none``: then the list is empty)."""
    enabled = []
    for provider in all_providers():
        block = config.get(provider.key)
        if not block:
            continue
        empty = [name for name in provider.required if _blank(block.get(name))]
        if empty:
            names = ", ".join(f"`{provider.key}.{name}`" for name in empty)
            raise ConfigError(
                f"Setting {names} is set but empty: give the {provider.label} credential, or "
                f"remove the `{provider.key}` block to leave {provider.label} out."
            )
        missing = [name for name in provider.required if not block.get(name)]
        if missing:
            names = ", ".join(f"`{provider.key}.{name}`" for name in missing)
            raise ConfigError(
                f"Setting {names} is missing: the {provider.label} provider is configured "
                f"({', '.join(sorted(block))} set) but cannot authenticate without it."
            )
        enabled.append(provider)
    if not enabled and not allow_none:
        keys = ", ".join(f"`{p.key}.{p.required[0]}`" for p in all_providers())
        raise ConfigError(
            f"No provider is configured: set the credentials of at least one ({keys})."
        )
    return enabled


def _blank(value: object) -> bool:
    """True for a string that is empty or only blanks (a variable set to "")."""
    return isinstance(value, str) and not value.strip()


def secret_settings(config: Mapping[str, t.Any]) -> Iterator[tuple[str, t.Any]]:
    """``("<provider>.<setting>", value)`` of every secret setting set in ``config``."""
    for provider in all_providers():
        block = config.get(provider.key)
        if not isinstance(block, dict):
            continue
        for prop in provider.settings:
            if prop.to_dict()[prop.name].get("secret") and prop.name in block:
                yield f"{provider.key}.{prop.name}", block[prop.name]


def register_secrets(config: Mapping[str, t.Any]) -> None:
    """Have every secret setting of ``config`` scrubbed from all output."""
    Redactor.register(*(value for _, value in secret_settings(config)))


def secret_problem(name: str, value: object) -> str | None:
    """Why a secret setting cannot be sent as it is, never quoting it; None when it can.

    Refused rather than stripped: the tap does not guess which credential was meant, and
    the fix (e.g. ``printf`` instead of ``echo`` into a secret file) belongs where the
    value comes from. The four providers' credentials are generated printable ASCII.
    """
    if not isinstance(value, str):
        return None
    if _blank(value):
        return f"setting `{name}` is set but empty; give the credential, or remove the setting"
    if value != value.strip():
        return (
            f"setting `{name}` starts or ends with whitespace (a line break, e.g. from `echo` "
            "into a secret file?); remove it. The value was not sent"
        )
    if any(not " " <= char <= "~" for char in value):
        return (
            f"setting `{name}` holds a control or non-ASCII character (a copy-paste "
            "artefact?); credentials are printable ASCII. The value was not sent"
        )
    return None


def validate_settings(config: Mapping[str, t.Any]) -> list[str]:
    """All problems with the settings, each one line that names the setting."""
    schema = config_schema()
    problems = [
        _describe(error)
        for error in sorted(Draft7Validator(schema).iter_errors(dict(config)), key=str)
    ]
    problems += _check_values(config)
    return problems


def _describe(error: ValidationError) -> str:
    """One line for a JSON-schema error; never quotes a value (it could be a secret)."""
    path = ".".join(str(p) for p in error.absolute_path)
    expected = error.validator_value
    if error.validator == "additionalProperties":
        properties = sorted(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - set(properties))
        where = f"in `{path}`" if path else "at the top level"
        guesses = [
            f"`{close[0]}`" if len(extra) == 1 else f"`{close[0]}` for {name}"
            for name in extra
            if (close := difflib.get_close_matches(name, properties, n=1))
        ]
        hint = f"; did you mean {', '.join(guesses)}?" if guesses else ""
        return (
            f"unknown setting(s) {', '.join(extra)} {where}{hint} (known: {', '.join(properties)})"
        )
    if error.validator == "type":
        kinds = expected if isinstance(expected, list) else [expected]
        kinds = [k for k in kinds if k != "null"]
        return f"setting `{path}` must be of type {' or '.join(kinds)}"
    if error.validator == "required":
        return f"setting `{path}` is missing a required value: {error.message}"
    return f"setting `{path}` is invalid ({error.validator} {expected!r})"


#: Settings the SDK adds for its capabilities (stream maps, flattening...).
_SDK_SETTINGS = (
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
)


def _check_values(config: Mapping[str, t.Any]) -> list[str]:
    """Checks JSON schema does not do: date-times, secrets, URLs, ranges, lists."""
    problems = []
    known = set(config_schema()["properties"]) | set(_SDK_SETTINGS)
    for name in sorted(set(config) - known):
        if name.startswith("_"):
            continue  # private keys some orchestrators add
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        problems.append(f"unknown setting `{name}` at the top level{hint}")
    if config.get("batch_config"):
        problems.append(
            "setting `batch_config` is not supported: BATCH files would be announced after "
            "the STATE that covers them, so a killed run could skip events; remove it"
        )
    start_ns = _instant_setting(config, "start_date", problems)
    if start_ns is not None and start_ns > now_instant():
        problems.append(
            f"setting `start_date` is in the future ({config['start_date']}); nothing to read"
        )
    end_ns = _instant_setting(config, "end_date", problems)
    if start_ns is not None and end_ns is not None and end_ns <= start_ns:
        problems.append(
            f"setting `end_date` ({config['end_date']}) is not after `start_date` "
            f"({config['start_date']}); it is exclusive, so nothing would be read"
        )
    for name, minimum in MINIMUMS.items():
        value = config.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value < minimum:
            problems.append(f"setting `{name}` must be at least {minimum}")
    problems += [
        problem
        for name, value in secret_settings(config)
        if (problem := secret_problem(name, value))
    ]
    for provider in all_providers():
        block = config.get(provider.key)
        if not isinstance(block, dict):
            continue
        for name, value in block.items():
            if name.endswith("_url") and isinstance(value, str) and not _is_http_url(value):
                problems.append(
                    f"setting `{provider.key}.{name}` must be an http(s) URL, got {value!r}"
                )
        rate = block.get("max_requests_per_second")
        if isinstance(rate, (int, float)) and rate <= 0:
            problems.append(f"setting `{provider.key}.max_requests_per_second` must be more than 0")
        lookback = block.get("lookback_seconds")
        if isinstance(lookback, int) and lookback < 0:
            problems.append(f"setting `{provider.key}.lookback_seconds` must be 0 or more")
        for name, value in block.items():
            if isinstance(value, list) and not [v for v in value if str(v).strip()]:
                problems.append(
                    f"setting `{provider.key}.{name}` is an empty list; remove it to mean 'all'"
                )
        problems += _undocumented_event_types(provider, block.get("event_types"))
    return problems


def _instant_setting(config: Mapping[str, t.Any], name: str, problems: list[str]) -> int | None:
    """Setting ``name`` in ns when set and readable; else None, a problem added if unreadable."""
    value = config.get(name)
    if not isinstance(value, str):
        return None
    try:
        return parse_instant(value, allow_naive=True)  # without a timezone: UTC, a warning
    except ValueError as exc:
        problems.append(f"setting `{name}`: {exc}")
        return None


def settings_warnings(config: Mapping[str, t.Any]) -> list[str]:
    """What is read from the settings on an assumption, one line each: a date-time without
    a timezone is read as UTC (Meltano rewrites ``01/02/2025`` as ``2025-01-02T00:00:00``)."""
    warnings = []
    for name in ("start_date", "end_date"):
        value = config.get(name)
        if not isinstance(value, str):
            continue
        try:
            parse_instant(value)
        except ValueError:
            try:
                ns = parse_instant(value, allow_naive=True)
            except ValueError:
                continue  # unreadable: a problem (validate_settings)
            read = format_instant(ns, digits=0 if ns % NS_PER_SECOND == 0 else 9)
            warnings.append(
                f"setting `{name}` ({value}) has no timezone: read as UTC ({read}). Add Z "
                "or an offset such as +02:00 to say which one is meant."
            )
    return warnings


def _undocumented_event_types(provider: Provider, configured: object) -> list[str]:
    """One line per configured event type the provider does not document, with the
    closest documented one (before any request: the API would refuse it, or answer
    nothing for it)."""
    source = provider.source_class
    documented = source.event_type_values
    if not documented or not isinstance(configured, list):
        return []
    by_key = {spelling_key(value): value for value in documented}
    problems = []
    for value in configured:
        name = str(value).strip()
        if not name or documented_spelling(name, documented) is not None:
            continue
        close = difflib.get_close_matches(spelling_key(name), list(by_key), n=1)
        hint = f"did you mean `{by_key[close[0]]}`?" if close else "no documented type is close"
        problems.append(
            f"setting `{provider.key}.event_types`: {provider.label} documents no event type "
            f"{name!r}; {hint} (case does not matter; the {len(documented)} documented "
            f"types are listed at {source.event_type_source})"
        )
    return problems


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
