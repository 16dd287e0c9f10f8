"""End to end: the demo command loads every event into DuckDB through target-duckdb."""

from __future__ import annotations

import subprocess
import sys

import duckdb
import pytest

from tap_auditlogs.providers import all_providers
from tests.conftest import REPO

PROVIDER_STREAMS = {p.key: p.source_class.name for p in all_providers()}


@pytest.mark.slow
def test_demo_loads_every_event_into_duckdb(tmp_path) -> None:
    """Provider tables and the unified table hold every event (demo.py checks the counts)."""
    done = subprocess.run(
        [sys.executable, "scripts/demo.py", "--events", "60", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All counts match." in done.stdout
    assert "socket_audit_log" in done.stdout
    with duckdb.connect(str(tmp_path / "warehouse.duckdb"), read_only=True) as db:
        provider_rows = sum(
            db.execute(f"SELECT count(*) FROM auditlogs.{stream}").fetchone()[0]  # type: ignore[index]
            for stream in PROVIDER_STREAMS.values()
        )
        unified = db.execute(
            "SELECT count(DISTINCT (provider, organization_id, event_id)), count(*) "
            "FROM auditlogs.audit_events"
        ).fetchone()
        by_provider = dict(
            db.execute(
                "SELECT provider, count(*) FROM auditlogs.audit_events GROUP BY 1"
            ).fetchall()
        )
    assert unified == (provider_rows, provider_rows)
    assert set(by_provider) == set(PROVIDER_STREAMS)
