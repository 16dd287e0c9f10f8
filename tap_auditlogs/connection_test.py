"""The connection test (``--test``): one cheap call per provider and organization.

``check_provider`` lists the organizations where needed, then asks each for the first page
of its log at the smallest page size the API takes (``AuditLogStream.probe_params``), sent
as a sync sends it (method, body), and words every failure for a test (no state, no resume)
rather than for a sync.
"""

from __future__ import annotations

import copy
import typing as t

from tap_auditlogs.errors import ProviderError, QuotaExhaustedError
from tap_auditlogs.redaction import Redactor

if t.TYPE_CHECKING:
    from tap_auditlogs.client import AuditLogStream
    from tap_auditlogs.strategies import Context, Record


class ConnectionCheck(t.NamedTuple):
    """The connection test's verdict on one provider partition (``--test``)."""

    what: str  # e.g. "Socket org_slug 'acme'"
    problem: str | None  # None: OK
    records: list[Record] = []  # the first page (never mutated)


def check_connection(stream: AuditLogStream, context: Context) -> list[Record]:
    """One cheap request proving the URL, credentials, permission and organization.

    Returns the records of that page (few, maybe none). Raises ``ProviderError`` with
    the precise reason (refused credentials, a missing permission, an unknown
    organization, an unreachable host...).
    """
    url = stream.get_url(dict(context or {}))
    request = stream.build_page_request(context, url, stream.probe_params(context), None)
    response = stream.request_json(
        context,
        request.url,
        request.query,
        method=stream.http_method,
        body=request.body,
        parse=stream.parse_page,
    )
    records, _total = response.page
    # Not ``post_process``: it would feed ``audit_events`` before the verdict is known.
    field = stream.partition_field
    added = {field: context[field]} if context and field in context else {}
    return [stream.sort_fields({**copy.deepcopy(record), **added}) for record in records]


def check_provider(stream: AuditLogStream) -> list[ConnectionCheck]:
    """Probe the provider: list its organizations when needed, then one page each."""
    failures = getattr(stream.owner, "failures", None)
    known = len(failures) if failures is not None else 0
    label = stream.provider_label
    try:
        partitions = stream.partitions  # may list the organizations (one request)
    except ProviderError as error:
        return [ConnectionCheck(label, _probe_problem(stream, error))]
    if failures is not None and len(failures) > known:  # the listing failed
        return [ConnectionCheck(label, _probe_problem(stream, e)) for e in failures[known:]]
    if partitions is not None and not partitions:
        return [ConnectionCheck(label, f"{label}: no organization to read.")]
    checks = []
    contexts: list[dict | None] = list(partitions) if partitions is not None else [None]
    for context in contexts:
        try:
            records = check_connection(stream, context)
        except ProviderError as error:
            checks.append(ConnectionCheck(stream.describe(context), _probe_problem(stream, error)))
            if error.whole_provider:
                break  # every other organization would fail the same way
        except Exception as error:  # never a traceback: name it and go on
            where = stream.describe(context)
            detail = Redactor.scrub(str(error))[:300]
            problem = f"{where}: unexpected {type(error).__name__} ({detail})."
            checks.append(ConnectionCheck(where, problem))
        else:
            checks.append(ConnectionCheck(stream.describe(context), None, records))
    return checks


def _probe_problem(stream: AuditLogStream, error: ProviderError) -> str:
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
            f" Check {stream.provider}.base_url (the host must be reachable from here), "
            "or try again later."
        )
    return text
