"""End to end: the demo command loads every event into DuckDB through target-duckdb."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_demo_loads_every_event_into_duckdb(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/demo.py", "--events", "120", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "All counts match." in done.stdout
    assert "socket_audit_log" in done.stdout
