"""The connection test (``--test``): one cheap call per provider and organization.

``check_provider`` lists the organizations where needed, then asks each for the first page
of its log at the smallest page size the API takes (``AuditLogSource.probe_params``), sent
as a sync sends it (method, body), and words every failure for a test (no state, no resume)
rather than for a sync.
"""

from __future__ import annotations

import copy
import typing as t

from tap_auditlogs.core.errors import ProviderError, QuotaExhaustedError
from tap_auditlogs.core.redaction import Redactor

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tap_auditlogs.core.types import Context, Record
    from tap_auditlogs.engine.source import AuditLogSource


class ConnectionCheck(t.NamedTuple):
    """The connection test's verdict on one provider partition (``--test``)."""

    what: str  # e.g. "Socket org_slug 'acme'"
    problem: str | None  # None: OK
    records: list[Record] = []  # the first page (never mutated)


def check_connection(source: AuditLogSource, context: Context) -> list[Record]:
    """One cheap request proving the URL, credentials, permission and organization.

    Returns the records of that page (few, maybe none). Raises ``ProviderError`` with
    the precise reason (refused credentials, a missing permission, an unknown
    organization, an unreachable host...).
    """
    url = source.get_url(context)
    request = source.build_page_request(context, url, source.probe_params(context), None)
    response = source.request_json(
        context,
        request.url,
        request.query,
        method=source.http_method,
        body=request.body,
        parse=source.parse_page,
    )
    records, _total = response.page
    return list(records)


def check_provider(
    source: AuditLogSource, as_written: Callable[[Record, Context], Record]
) -> list[ConnectionCheck]:
    """Probe the provider: list its organizations when needed, then one page each.

    ``as_written``: a probed record as a sync would write it (the stream's conformance,
    without feeding ``audit_events`` before the verdict is known).
    """
    label = source.provider_label
    try:
        partitions = source.partitions()  # may list the organizations (one request)
    except ProviderError as error:
        return [ConnectionCheck(label, _probe_problem(source, error))]
    if partitions is not None and not partitions:
        return [ConnectionCheck(label, f"{label}: no organization to read.")]
    checks = []
    contexts: list[dict | None] = list(partitions) if partitions is not None else [None]
    for context in contexts:
        where = source.describe(context)
        try:
            records = check_connection(source, context)
        except ProviderError as error:
            checks.append(ConnectionCheck(where, _probe_problem(source, error)))
            if error.whole_provider:
                break  # every other organization would fail the same way
        except Exception as error:  # never a traceback: name it and go on
            detail = Redactor.scrub(str(error))[:300]
            problem = f"{where}: unexpected {type(error).__name__} ({detail})."
            checks.append(ConnectionCheck(where, problem))
        else:
            samples = [as_written(copy.deepcopy(record), context) for record in records]
            checks.append(ConnectionCheck(where, None, samples))
    return checks


def _probe_problem(source: AuditLogSource, error: ProviderError) -> str:
    """A sync's error message, worded for the connection test (no state, no resume)."""
    if isinstance(error, QuotaExhaustedError):
        return (
            f"{str(error).partition(': ')[0]}: rate-limited, the API asks to wait "
            f"{error.wait_seconds:.0f} s (Retry-After). The credentials could not be "
            "checked; run the test again later."
        )
    text = str(error)
    if "gave up after" in text:  # timeouts, refused connections, 5xx: the host
        text = text.partition(" The state ")[0]
        text += (
            f" Check {source.provider}.base_url (the host must be reachable from here), "
            "or try again later."
        )
    return text
