"""meltano.yml stays stable: ``make docs`` writes it in the layout Meltano writes, so a
``meltano config set`` changes only that setting's lines and ``unset`` gives back the
committed file byte for byte (real Meltano, the pinned version of ``tests/test_meltano.py``,
on a copy of the project in a scratch directory).
"""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import typing as t

import pytest

from tests.conftest import REPO
from tests.test_meltano import ensure_meltano

if t.TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow

#: (plugin, setting, value as typed, the lines ``config set`` must add and nothing else)
CASES = (
    (
        "tap-auditlogs",
        "start_date",
        "2025-01-02T00:00:00Z",
        ["    config:", "      start_date: '2025-01-02T00:00:00Z'"],
    ),
    (
        "tap-auditlogs",
        "socket.org_slugs",
        '["acme", "globex"]',
        [
            "    config:",
            "      socket:",
            "        org_slugs:",
            "        - acme",
            "        - globex",
        ],
    ),
    ("target-duckdb", "batch_size_rows", "5000", ["      batch_size_rows: 5000"]),
)


def meltano_config(root: Path, *args: str) -> None:
    """``meltano config <args>`` in the project at ``root``, with a clean environment."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_AUDITLOGS_", "TARGET_", "MELTANO_"))
        and key not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        MELTANO_DATABASE_URI=f"sqlite:///{root}/meltano.db",
        NO_COLOR="1",
    )
    done = subprocess.run(
        [str(ensure_meltano()), "config", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    """(removed, added) lines between two texts."""
    diff = list(difflib.unified_diff(before.splitlines(), after.splitlines(), n=0, lineterm=""))
    removed = [line[1:] for line in diff if line.startswith("-") and not line.startswith("---")]
    added = [line[1:] for line in diff if line.startswith("+") and not line.startswith("+++")]
    return removed, added


@pytest.mark.parametrize(
    ("plugin", "setting", "value", "lines"), CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES]
)
def test_config_set_and_unset_leave_only_that_setting(
    tmp_path: Path, plugin: str, setting: str, value: str, lines: list[str]
) -> None:
    committed = (REPO / "meltano.yml").read_text()
    shutil.copy(REPO / "meltano.yml", tmp_path / "meltano.yml")

    meltano_config(tmp_path, "set", plugin, setting, value)
    removed, added = changed_lines(committed, (tmp_path / "meltano.yml").read_text())
    assert (removed, added) == ([], lines), "Meltano rewrote more than the setting's lines"

    meltano_config(tmp_path, "unset", plugin, setting)
    assert (tmp_path / "meltano.yml").read_text() == committed, (
        "unset did not give back the committed meltano.yml: run `make docs`"
    )
