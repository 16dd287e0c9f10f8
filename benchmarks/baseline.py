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
API and printing the records". It does not import the tap or the SDK.

Every provider the emulator plays must have a pager in ``PAGERS`` below; a configured
provider without one is an error (exit 2), so the benchmark fails loudly instead of
comparing against nothing.
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


# ---------------------------------------------------------------------------- output


def run(config: dict, out: Any) -> dict[str, int]:
    """Read every configured provider; write its messages to ``out``; records per stream."""
    blocks = {key: value for key, value in config.items() if isinstance(value, dict)}
    missing = sorted(set(blocks) - set(PAGERS))
    if missing:
        print(f"baseline: no pager for provider(s) {missing}; add one to PAGERS", file=sys.stderr)
        raise SystemExit(2)
    counts: dict[str, int] = {}
    dumps = orjson.dumps
    for key, block in blocks.items():
        stream, partition_field = STREAMS[key]
        schema = orjson.loads((SCHEMAS / f"{stream}.json").read_bytes())
        out.write(
            dumps({"type": "SCHEMA", "stream": stream, "schema": schema, "key_properties": []})
            + b"\n"
        )
        count = 0
        with requests.Session() as session:
            session.headers["Accept"] = "application/json"
            for records, partition, following in PAGERS[key](session, block, config):
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
