"""The floor the tap is measured against: a plain script that reads the same audit logs.

``python benchmarks/baseline.py --config config.json > sink`` takes the tap's own config
(one settings block per provider, plus ``start_date``), pages every configured provider's
API naively with one ``requests.Session`` (largest page size, following the token, cursor
or page number), decodes each page once with orjson and writes the same Singer messages
the tap writes: a SCHEMA per stream, one RECORD per event (with the partition field the
tap adds and a ``time_extracted``), and a small STATE after every page, all serialised
with orjson to a block-buffered stdout (no flush per line).

It deliberately does none of what makes the tap correct (retries, order checks, the
lookback, deduplicated bookmarks, secret redaction): it is the cost of "just reading the
API and printing the records". For the providers in ``PAGERS`` it does not import the tap
or the SDK.

A provider without a pager here (one added later, or registered from outside) is paged
from its own declaration (``declared_pages``: the tap's ``request_params``,
``build_page_request``, ``parse_page`` and paginator, one pass per partition from
``start_date``) when its strategy reads one pass (``ONE_PASS``); any other is skipped with
one line on stderr (``timed_emulator.select_streams`` leaves it out of the benchmark).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson
import requests

SCHEMAS = Path(__file__).resolve().parents[1] / "tap_auditlogs" / "schemas"
UTC = timezone.utc
DAY = timedelta(days=1)
TIMEOUT = 60

#: provider key -> (stream name, partition field the tap adds to each record or None)
STREAMS: dict[str, tuple[str, str | None]] = {
    "socket": ("socket_audit_log", "org_slug"),
    "configcat": ("configcat_audit_log", "organizationId"),
    "torq": ("torq_audit_log", None),
    "nirvana": ("nirvana_audit_log", None),
}

#: A page: (records, partition value or None, the token that fetched the next page).
Page = tuple[list[dict[str, Any]], str | None, Any]


def _start(config: dict) -> datetime | None:
    value = config.get("start_date")
    if not value:
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(session: requests.Session, url: str, params: dict | None = None, **kw: Any) -> Any:
    response = session.get(url, params=params, timeout=TIMEOUT, allow_redirects=False, **kw)
    if response.status_code != 200:
        raise SystemExit(f"baseline: GET {url} answered HTTP {response.status_code}")
    return orjson.loads(response.content)


# ---------------------------------------------------------------------------- pagers


def socket_pages(session: requests.Session, block: dict, config: dict) -> Iterator[Page]:  # noqa: ARG001
    """Socket: every organization, ``per_page=100``, follow ``nextPage`` (no time bound)."""
    base = block["base_url"].rstrip("/")
    session.headers["Authorization"] = f"Bearer {block['api_token']}"
    slugs = block.get("org_slugs") or sorted(
        org["slug"] for org in _get(session, f"{base}/organizations")["organizations"].values()
    )
    for slug in slugs:
        url = f"{base}/orgs/{slug}/audit-log"
        page: str | None = None
        while True:
            params = {"per_page": 100} if page is None else {"per_page": 100, "page": page}
            body = _get(session, url, params)
            results = body.get("results") or []
            following = body.get("nextPage")
            more = bool(results) and following not in (None, "", "0", 0)
            yield results, slug, following if more else None
            if not more:
                break
            page = str(following)


def configcat_pages(session: requests.Session, block: dict, config: dict) -> Iterator[Page]:
    """ConfigCat: every organization, windows of at most 30 days, ``pageNumber`` from 1."""
    base = block["base_url"].rstrip("/")
    session.auth = (block["username"], block["password"])
    orgs = block.get("organization_ids") or [
        org["organizationId"] for org in _get(session, f"{base}/v1/organizations")
    ]
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=1)
    first = _start(config) or end - 7 * DAY
    for org in orgs:
        url = f"{base}/v2/organizations/{org}/auditlogs"
        seen: set[int] = set()  # both bounds are inclusive: an event on a boundary comes twice
        lower = first
        while lower < end:
            upper = min(lower + 30 * DAY - timedelta(seconds=1), end)
            number = 1
            while True:
                params = {
                    "fromUtcDateTime": _z(lower),
                    "toUtcDateTime": _z(upper),
                    "pageSize": 100,
                    "pageNumber": number,
                }
                body = _get(session, url, params)
                data = [item for item in body.get("data") or [] if item["auditLogId"] not in seen]
                seen.update(item["auditLogId"] for item in data)
                paging = body.get("paging") or {}
                more = bool(body.get("data")) and paging.get("hasNext") is True
                yield data, org, number + 1 if more else None
                if not more:
                    break
                number += 1
            lower = upper


def torq_pages(session: requests.Session, block: dict, config: dict) -> Iterator[Page]:
    """Torq: a client-credentials token first, then ``order=asc`` from ``start_time``."""
    base = block["base_url"].rstrip("/")
    token_url = block["token_url"]
    answer = session.post(
        token_url,
        data={"grant_type": "client_credentials"},
        auth=(block["client_id"], block["client_secret"]),
        timeout=TIMEOUT,
    )
    if answer.status_code != 200:
        raise SystemExit(f"baseline: POST {token_url} answered HTTP {answer.status_code}")
    session.headers["Authorization"] = f"Bearer {orjson.loads(answer.content)['access_token']}"
    params: dict[str, Any] = {"order": "asc", "page_size": 500}
    start = _start(config)
    if start is not None:
        params["start_time"] = _z(start - timedelta(seconds=1))
    url = f"{base}/v1alpha/audit_logs"
    while True:
        body = _get(session, url, params)
        following = body.get("next_page_token")
        yield body.get("audit_logs") or [], None, following or None
        if not following:
            break
        params["page_token"] = following


def nirvana_pages(session: requests.Session, block: dict, config: dict) -> Iterator[Page]:
    """Nirvana Labs: ``limit=100``, oldest first from ``created_at_min``, follow the cursor."""
    base = block["base_url"].rstrip("/")
    session.headers["Authorization"] = f"Bearer {block['api_key']}"
    params: dict[str, Any] = {"limit": 100, "sort": "created_at:asc"}
    start = _start(config)
    if start is not None:
        params["created_at_min"] = _z(start)
    url = f"{base}/v1/audit_logs"
    while True:
        body = _get(session, url, params)
        items = body.get("items") or []
        cursor = (body.get("pagination") or {}).get("next_cursor")
        more = bool(items) and cursor not in (None, "")
        yield items, None, cursor if more else None
        if not more:
            break
        params["cursor"] = cursor


PAGERS: dict[str, Callable[[requests.Session, dict, dict], Iterator[Page]]] = {
    "socket": socket_pages,
    "configcat": configcat_pages,
    "torq": torq_pages,
    "nirvana": nirvana_pages,
}

#: Reading strategies (their ``name``) that read a partition in one pass, paged to its end:
#: what ``declared_pages`` can do for a provider without a pager above.
ONE_PASS = frozenset({"ascending", "verified-ascending", "newest-first"})


def pages_in_one_pass(strategy: object) -> bool:
    """True when a provider's strategy reads one pass per partition (``ONE_PASS``)."""
    return getattr(strategy, "name", None) in ONE_PASS


def declared_stream(key: str, config: dict) -> Any:
    """The tap's source of provider ``key`` (the tap is imported only here), or None with
    one line on stderr when its declaration cannot be paged in one pass."""
    from tap_auditlogs.tap import TapAuditLogs  # noqa: PLC0415 (only for such a provider)

    tap = TapAuditLogs(config={key: config[key], "start_date": config.get("start_date")})
    sources: list[Any] = [getattr(s, "source", None) for s in tap.streams.values()]
    stream: Any = next(s for s in sources if s is not None and s.provider == key)
    if not pages_in_one_pass(stream.strategy):
        print(
            f"baseline: skipped {key!r}: no pager, and it is not read in one pass", file=sys.stderr
        )
        return None
    return stream


def declared_pages(session: requests.Session, stream: Any) -> Iterator[Page]:
    """A provider paged from its declaration: every partition, one pass from ``start_date``
    to the end its paginator finds, with the provider's method, body and authenticator."""
    field = stream.partition_field or None
    for context in stream.partitions() or [None]:
        url = stream.get_url(context)
        params = stream.request_params(context, stream.start_ns, None)
        paginator = stream.get_new_paginator()
        partition = (context or {}).get(field) if field else None
        while not paginator.finished:
            request = stream.build_page_request(context, url, params, paginator.current_value)
            response = session.request(
                stream.http_method,
                request.url,
                params=dict(request.query),
                json=request.body,
                headers=stream.http_headers,
                auth=stream.authenticator,
                timeout=TIMEOUT,
                allow_redirects=False,
            )
            if response.status_code != 200:
                raise SystemExit(
                    f"baseline: {stream.http_method} {url} answered HTTP {response.status_code}"
                )
            records, _total = stream.parse_page(orjson.loads(response.content))
            paginator.advance(response)
            yield records, partition, None if paginator.finished else paginator.current_value


def _source(key: str, block: dict, config: dict) -> tuple[str, str | None, dict, Any] | None:
    """Stream name, partition field, schema and pager of a configured provider; None: skipped."""
    if key in PAGERS:
        stream, partition_field = STREAMS[key]
        schema = orjson.loads((SCHEMAS / f"{stream}.json").read_bytes())
        return stream, partition_field, schema, lambda session: PAGERS[key](session, block, config)
    declared = declared_stream(key, config)
    if declared is None:
        return None
    pager = lambda session: declared_pages(session, declared)  # noqa: E731
    return declared.name, declared.partition_field or None, declared.schema, pager


# ---------------------------------------------------------------------------- output


def run(config: dict, out: Any) -> dict[str, int]:
    """Read every configured provider; write its messages to ``out``; records per stream."""
    blocks = {key: value for key, value in config.items() if isinstance(value, dict)}
    counts: dict[str, int] = {}
    dumps = orjson.dumps
    for key, block in blocks.items():
        source = _source(key, block, config)
        if source is None:
            continue
        stream, partition_field, schema, pages = source
        out.write(
            dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []})
            + b"\n"
        )
        count = 0
        with requests.Session() as session:
            session.headers["Accept"] = "application/json"
            for records, partition, following in pages(session):
                extracted = datetime.now(UTC).isoformat().replace("+00:00", "Z")
                for record in records:
                    if partition_field is not None:
                        record[partition_field] = partition
                    out.write(
                        dumps(
                            {
                                "type": "RECORD",
                                "stream": stream,
                                "record": record,
                                "time_extracted": extracted,
                            }
                        )
                        + b"\n"
                    )
                count += len(records)
                state = {"bookmarks": {stream: {"partition": partition, "next": following}}}
                out.write(dumps({"type": "STATE", "value": state}) + b"\n")
        counts[stream] = count
    return counts


def main(argv: list[str] | None = None) -> int:
    """CLI: ``baseline.py --config config.json > sink``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, type=Path, help="the tap's config JSON")
    args = parser.parse_args(argv)
    config = orjson.loads(args.config.read_bytes())
    started = time.perf_counter()
    with open(sys.stdout.fileno(), "wb", buffering=1 << 16, closefd=False) as out:
        counts = run(config, out)
    elapsed = time.perf_counter() - started
    for stream, count in counts.items():
        print(f"baseline: {stream}: {count} records in {elapsed:.2f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
