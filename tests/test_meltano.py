"""Meltano end to end: the project's meltano.yml, real Meltano, real loaders, the emulator.

* ``meltano run tap-auditlogs target-duckdb``, twice: after run 1 each stream's table holds
  exactly the emulator's events (distinct primary keys and total rows); new events arrive;
  run 2 (state from Meltano's system database) adds them and loads nothing twice.
* The same with MeltanoLabs ``target-postgres`` (``load_method: upsert``) on a private
  PostgreSQL server on 127.0.0.1 (``scripts/ensure_postgres.sh``); there, the rows that run 2
  wrote are exactly the new events, so the tap re-sent nothing.
* Nested objects arrive as JSON columns; with ``flattening_enabled`` they become columns.
* ``meltano config test tap-auditlogs`` and ``meltano invoke tap-auditlogs --test``, with good
  and bad credentials.

Meltano (pinned, with its PostgreSQL driver) is installed once per machine into the test
cache outside the clone (``TEST_CACHE`` of conftest: ``meltano/venv-<key>``, the key a hash of
the Meltano version and this Python), and the plugins into the project
``output/meltano-e2e/project/.meltano`` of the clone (Meltano installs them with uv, whose
cache makes that seconds), reused while ``meltano.yml``, ``pyproject.toml`` and the Meltano
version stay the same. Each test has its own system database and warehouse, so only the
installed plugins carry over. Settings go in as the
environment variables Meltano maps to settings (``TAP_AUDITLOGS_SOCKET_API_TOKEN``...).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import typing as t
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from tap_auditlogs.providers import all_providers
from tests.conftest import REPO, TEST_CACHE, file_lock, psql, venv_commands

if t.TYPE_CHECKING:
    from tests.emulator import Emulator

pytestmark = pytest.mark.slow

MELTANO_VERSION = "4.4.1"
CACHE = REPO / "output" / "meltano-e2e"
#: Meltano's own virtualenv, shared by every clone: keyed by its version and this Python.
MELTANO_REQUIREMENT = f"meltano[postgres]=={MELTANO_VERSION}"
MELTANO_VENV = (
    TEST_CACHE
    / "meltano"
    / "venv-{}".format(
        hashlib.sha256(
            repr(
                (MELTANO_REQUIREMENT, sys.version, os.path.realpath(sys._base_executable))
            ).encode()
        ).hexdigest()[:12]
    )
)
PLUGINS = ("tap-auditlogs", "target-duckdb", "target-postgres")
EVENTS_PER_ORG = 150
STREAMS = {p.source_class.name: p for p in all_providers()}
KEYS = {name: p.source_class.primary_keys for name, p in STREAMS.items()}
#: The nested objects of each stream (``details`` of ConfigCat is a string in the API).
NESTED = {
    "socket_audit_log": ("payload",),
    "nirvana_audit_log": ("actor", "target"),
    "torq_audit_log": ("extra_data",),
}
SECRET_KEYS = ("api_token", "password", "api_key", "client_secret")


@dataclasses.dataclass
class Meltano:
    """The cached Meltano project, run with a clean environment plus ``env``."""

    executable: Path
    root: Path
    base_env: dict[str, str]

    def __call__(
        self, *args: str, env: dict[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.executable), *args],
            cwd=self.root,
            env={**self.base_env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def output_of(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def tail(done: subprocess.CompletedProcess[str], lines: int = 40) -> str:
    return "\n".join(output_of(done).splitlines()[-lines:])


# ---------------------------------------------------------------- installation


def cache_lock() -> t.ContextManager[None]:
    """The lock on this clone's Meltano project (other pytest processes and workers wait)."""
    return file_lock(CACHE / ".lock")


def ensure_meltano() -> Path:
    """Meltano, pinned, in its own virtualenv in the test cache (kept across clones)."""
    executable = MELTANO_VENV / "bin" / "meltano"
    stamp = MELTANO_VENV.with_suffix(".installed")
    with file_lock(MELTANO_VENV.with_suffix(".lock")):
        if stamp.exists() and executable.exists():
            return executable
        shutil.rmtree(MELTANO_VENV, ignore_errors=True)
        for command in venv_commands(sys.executable, MELTANO_VENV, [MELTANO_REQUIREMENT]):
            subprocess.run(command, check=True)
        done = subprocess.run(
            [str(executable), "--version"], capture_output=True, text=True, check=False
        )
        assert f"version {MELTANO_VERSION}" in done.stdout, done.stdout + done.stderr
        stamp.touch()
    return executable


def project_yaml() -> str:
    """The repository's meltano.yml, with the tap installed from this checkout."""
    project = yaml.safe_load((REPO / "meltano.yml").read_text())
    extractor = project["plugins"]["extractors"][0]
    assert extractor["name"] == "tap-auditlogs"
    extractor["pip_url"] = f"-e {REPO}"
    return yaml.safe_dump(project, sort_keys=False)


def ensure_project(executable: Path, base_env: dict[str, str]) -> Path:
    """The Meltano project with the plugins installed; reinstalled when its inputs change."""
    root = CACHE / "project"
    root.mkdir(parents=True, exist_ok=True)
    text = project_yaml()
    if not (root / "meltano.yml").exists() or (root / "meltano.yml").read_text() != text:
        (root / "meltano.yml").write_text(text)  # rewritten only when changed: others read it
    stamp = hashlib.sha256(
        (text + (REPO / "pyproject.toml").read_text() + MELTANO_VERSION).encode()
    ).hexdigest()
    stamp_file = root / ".installed"
    installed = stamp_file.exists() and stamp_file.read_text() == stamp
    executables = [
        root / ".meltano" / kind / name / "venv" / "bin" / name
        for kind, name in (
            ("extractors", "tap-auditlogs"),
            ("loaders", "target-duckdb"),
            ("loaders", "target-postgres"),
        )
    ]
    if installed and all(path.exists() for path in executables):
        return root
    stamp_file.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **base_env,
            "MELTANO_DATABASE_URI": f"sqlite:///{scratch}/meltano.db",
            # Meltano installs with uv: compiled now, not by the first parallel runs at once.
            "UV_COMPILE_BYTECODE": "1",
        }
        done = subprocess.run(
            [str(executable), "install", "--clean", *PLUGINS],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            check=False,
        )
    assert done.returncode == 0, output_of(done)[-4000:]
    stamp_file.write_text(stamp)
    return root


def installed_meltano() -> Meltano:
    """Meltano and the project's plugins, installed (or reused), with a clean environment."""
    base_env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_AUDITLOGS_", "TARGET_", "MELTANO_"))
        and key not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    base_env.update(
        MELTANO_SEND_ANONYMOUS_USAGE_STATS="false",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        NO_COLOR="1",
    )
    executable = ensure_meltano()
    with cache_lock():
        root = ensure_project(executable, base_env)
    return Meltano(executable=executable, root=root, base_env=base_env)


@pytest.fixture(scope="module")
def meltano() -> Meltano:
    """Meltano and the project's plugins, installed (or reused)."""
    return installed_meltano()


# ------------------------------------------------------------------- helpers


def start_emulator(emulator: t.Callable[..., Emulator]) -> Emulator:
    return emulator(seed=7, events_per_org=EVENTS_PER_ORG)


def tap_env(emu: Emulator, tmp_path: Path) -> dict[str, str]:
    """Meltano's environment for the tap: the emulator's credentials, a fresh system DB."""
    start = emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)
    env = {
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        "TAP_AUDITLOGS_START_DATE": start.isoformat(),
    }
    for provider, block in emu.tap_config().items():
        for key, value in block.items():
            env[f"TAP_AUDITLOGS_{provider.upper()}_{key.upper()}"] = str(value)
    return env


def secrets_of(emu: Emulator) -> list[str]:
    return [
        str(block[key])
        for block in emu.tap_config().values()
        for key in SECRET_KEYS
        if key in block
    ]


def truth(emu: Emulator) -> dict[str, int]:
    """Events per stream that exist at the emulator now."""
    return {name: len(emu.truth(p.key)) for name, p in STREAMS.items()}


def add_new_events(emu: Emulator) -> dict[str, int]:
    """New events at every provider (2 in each organization, 3 more in the first)."""
    added = {}
    for name, provider in STREAMS.items():
        orgs = list(emu.provider(provider.key).orgs)
        count = 0
        for index, org in enumerate(orgs):
            count += len(emu.add_events(provider.key, org, 5 if index == 0 else 2))
        added[name] = count
    return added


def assert_progress_logged(output: str) -> None:
    """The tap's progress lines reach Meltano's log: pages, records, rate, what is left."""
    progress = [line for line in output.splitlines() if "records read (" in line]
    assert progress, output[-3000:]
    assert any("left in this pass" in line for line in progress), progress
    assert any("tap-auditlogs" in line for line in progress), progress


# ------------------------------------------------------------------- DuckDB


def duckdb_counts(path: Path, schema: str) -> dict[str, tuple[int, int]]:
    """(rows, distinct primary keys) per stream table."""
    counts = {}
    with duckdb.connect(str(path), read_only=True) as connection:
        for stream, keys in KEYS.items():
            columns = ", ".join(f'"{key.lower()}"' for key in keys)
            row = connection.execute(
                f"SELECT count(*), count(DISTINCT ({columns})) FROM {schema}.{stream}"
            ).fetchone()
            assert row is not None
            counts[stream] = (int(row[0]), int(row[1]))
    return counts


def duckdb_columns(path: Path, schema: str, table: str) -> dict[str, str]:
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()
    return {str(name): str(kind) for name, kind in rows}


def test_meltano_run_into_duckdb_twice(meltano, emulator, tmp_path) -> None:
    emu = start_emulator(emulator)
    database = tmp_path / "warehouse.duckdb"
    env = {**tap_env(emu, tmp_path), "TARGET_DUCKDB_FILEPATH": str(database)}

    first = meltano("run", "tap-auditlogs", "target-duckdb", "--no-install", env=env)
    assert first.returncode == 0, tail(first)
    expected = truth(emu)
    assert duckdb_counts(database, "auditlogs") == {s: (n, n) for s, n in expected.items()}
    assert_progress_logged(output_of(first))
    for stream, columns in NESTED.items():
        kinds = duckdb_columns(database, "auditlogs", stream)
        assert {kinds[column] for column in columns} == {"JSON"}, (stream, kinds)
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM auditlogs.nirvana_audit_log "
            "WHERE json_extract_string(actor, '$.type') IN ('user', 'api_key')"
        ).fetchone()
    assert row is not None
    assert row[0] == expected["nirvana_audit_log"]
    calls_first = len(emu.requests())

    added = add_new_events(emu)
    second = meltano("run", "tap-auditlogs", "target-duckdb", "--no-install", env=env)
    assert second.returncode == 0, tail(second)
    now = truth(emu)
    assert now == {s: expected[s] + added[s] for s in expected}
    assert duckdb_counts(database, "auditlogs") == {s: (n, n) for s, n in now.items()}
    calls_second = len(emu.requests()) - calls_first
    assert calls_second < calls_first, "the second run read the logs again from the start"

    state = meltano("state", "get", "dev:tap-auditlogs-to-target-duckdb", env=env)
    assert state.returncode == 0, tail(state)
    bookmarks = json.loads(state.stdout)["singer_state"]["bookmarks"]
    assert set(STREAMS) <= set(bookmarks)


def test_flattening_makes_columns_of_nested_objects(meltano, emulator, tmp_path) -> None:
    emu = start_emulator(emulator)
    database = tmp_path / "warehouse.duckdb"
    env = {
        **tap_env(emu, tmp_path),
        "TARGET_DUCKDB_FILEPATH": str(database),
        "TARGET_DUCKDB_DEFAULT_TARGET_SCHEMA": "auditlogs_flat",
        "TAP_AUDITLOGS_FLATTENING_ENABLED": "true",
        "TAP_AUDITLOGS_FLATTENING_MAX_DEPTH": "1",
    }
    done = meltano("run", "tap-auditlogs", "target-duckdb", "--no-install", env=env)
    assert done.returncode == 0, tail(done)

    expected = truth(emu)
    assert duckdb_counts(database, "auditlogs_flat") == {s: (n, n) for s, n in expected.items()}
    nirvana = duckdb_columns(database, "auditlogs_flat", "nirvana_audit_log")
    flat = {"actor__id", "actor__name", "actor__type", "target__id", "target__type"}
    assert flat <= set(nirvana), nirvana
    assert not {"actor", "target"} & set(nirvana)
    with duckdb.connect(str(database), read_only=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM auditlogs_flat.nirvana_audit_log "
            "WHERE actor__type IN ('user', 'api_key')"
        ).fetchone()
    assert row is not None
    assert row[0] == expected["nirvana_audit_log"]
    # Objects without declared properties stay one column (their keys are not in the schema).
    assert "payload" in duckdb_columns(database, "auditlogs_flat", "socket_audit_log")
    assert "extra_data" in duckdb_columns(database, "auditlogs_flat", "torq_audit_log")


# ----------------------------------------------------------------- PostgreSQL


def postgres_counts(port: int, schema: str) -> dict[str, tuple[int, int, int]]:
    """(rows, distinct primary keys, rows written by the latest run) per stream table."""
    counts = {}
    for stream, keys in KEYS.items():
        columns = ", ".join(f'"{key}"' for key in keys)
        table = f'"{schema}"."{stream}"'
        [row] = psql(
            port,
            f"SELECT count(*), count(DISTINCT ({columns})), "
            f"count(*) FILTER (WHERE _sdc_sync_started_at = "
            f"(SELECT max(_sdc_sync_started_at) FROM {table})) FROM {table}",
        )
        counts[stream] = (int(row[0]), int(row[1]), int(row[2]))
    return counts


def test_meltano_run_into_postgres_twice(meltano, emulator, postgres, tmp_path) -> None:
    emu = start_emulator(emulator)
    schema = f"auditlogs_{int(time.time())}"
    env = {
        **tap_env(emu, tmp_path),
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(postgres),
        "TARGET_POSTGRES_USER": "postgres",
        "TARGET_POSTGRES_PASSWORD": "unused-the-test-server-trusts-127.0.0.1",
        "TARGET_POSTGRES_DATABASE": "postgres",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }

    first = meltano("run", "tap-auditlogs", "target-postgres", "--no-install", env=env)
    assert first.returncode == 0, tail(first)
    expected = truth(emu)
    assert postgres_counts(postgres, schema) == {s: (n, n, n) for s, n in expected.items()}
    kinds = dict(
        psql(
            postgres,
            "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
            f"WHERE table_schema = '{schema}'",
        )
    )
    for stream, columns in NESTED.items():
        assert {kinds[f"{stream}.{column}"] for column in columns} == {"jsonb"}, stream

    added = add_new_events(emu)
    second = meltano("run", "tap-auditlogs", "target-postgres", "--no-install", env=env)
    assert second.returncode == 0, tail(second)
    now = truth(emu)
    # Every event once, and the rows the second run wrote are exactly the new events: the
    # tap sent nothing again (with upsert, a re-sent event would be rewritten by run 2).
    assert postgres_counts(postgres, schema) == {s: (now[s], now[s], added[s]) for s in expected}


# --------------------------------------------------------- connection tests


def test_meltano_config_test_and_invoke_test(meltano, emulator, tmp_path) -> None:
    emu = emulator(seed=7, events_per_org=20, span_days=3)
    good = tap_env(emu, tmp_path)
    bad = {key: value for key, value in good.items() if not key.startswith("TAP_AUDITLOGS_")}
    bad.update(
        {
            "TAP_AUDITLOGS_SOCKET_API_TOKEN": "sktsec_not_the_right_token",
            "TAP_AUDITLOGS_SOCKET_BASE_URL": emu.base_url("socket"),
        }
    )
    secrets = [*secrets_of(emu), "sktsec_not_the_right_token"]

    done = meltano("config", "test", "tap-auditlogs", "--no-install", env=good)
    assert done.returncode == 0, tail(done)
    assert "Plugin configuration is valid" in output_of(done)

    # Meltano runs a sync and shows only the tap's last line: the tap ends with each problem
    # in full, so that line is the precise error; every line at --log-level=debug.
    done = meltano("config", "test", "tap-auditlogs", "--no-install", env=bad)
    assert done.returncode != 0, tail(done)
    text = output_of(done)
    assert "Plugin configuration is invalid" in text
    assert "credentials were refused (HTTP 401" in text, tail(done)
    assert "socket.api_token" in text
    assert not [secret for secret in secrets if secret in text]
    done = meltano("--log-level=debug", "config", "test", "tap-auditlogs", "--no-install", env=bad)
    assert done.returncode != 0, tail(done)
    text = output_of(done)
    assert "credentials were refused (HTTP 401" in text, tail(done)
    assert "socket.api_token" in text
    assert not [secret for secret in secrets if secret in text]

    done = meltano("invoke", "tap-auditlogs", "--test", env=good)
    assert done.returncode == 0, tail(done)
    text = output_of(done)
    assert "Connection test passed" in text
    records = [line for line in done.stdout.splitlines() if '"type":"RECORD"' in line]
    assert len(records) == len(STREAMS)
    assert not [secret for secret in secrets if secret in text]

    done = meltano("invoke", "tap-auditlogs", "--test", env=bad)
    assert done.returncode == 1, tail(done)
    text = output_of(done)
    assert "Connection test failed" in text
    assert "credentials were refused (HTTP 401" in text
    assert '"type":"RECORD"' not in done.stdout
    assert "Traceback" not in text
    assert not [secret for secret in secrets if secret in text]


# ----------------------------------------------------- before any credential


def test_select_list_works_on_a_project_without_credentials(meltano, tmp_path) -> None:
    """``meltano select --list`` on a fresh project lists every stream; a run still refuses."""
    env = {"MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db"}
    done = meltano("select", "tap-auditlogs", "--list", "--all", env=env)
    assert done.returncode == 0, tail(done)
    listed = output_of(done)
    for stream in [*STREAMS, "audit_events"]:
        assert f"{stream}." in listed, (stream, tail(done))
    env["TARGET_DUCKDB_FILEPATH"] = str(tmp_path / "warehouse.duckdb")
    done = meltano("run", "tap-auditlogs", "target-duckdb", "--no-install", env=env)
    assert done.returncode != 0
    assert "No provider is configured" in output_of(done), tail(done)
