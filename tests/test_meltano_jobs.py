"""Parallel Meltano jobs: one inherited extractor per provider, each its own job and state.

docs/meltano.md's pattern for orchestrators (Airflow, Dagster): ``tap-auditlogs--<provider>``
inherits ``tap-auditlogs`` and runs as its own ``meltano run`` job. Here the jobs, one per
provider, run at the same time (``meltano run`` processes started together) into one
target-postgres schema (``load_method: upsert``), twice, with Meltano's system database in
SQLite and in PostgreSQL: every event arrives once, each job keeps its own state, and the
second round writes exactly the new events.

Per-job settings: an inherited plugin reads the variables of its own name
(``TAP_AUDITLOGS__SOCKET_SOCKET_API_TOKEN`` for ``tap-auditlogs--socket``, which is what
``meltano config set tap-auditlogs--socket socket.api_token ...`` writes to ``.env``), and also
the parent's (``TAP_AUDITLOGS_SOCKET_API_TOKEN``), which therefore reaches every job. So the
secrets go in as each job's own variables (here in the project's ``.env``), the rest in each
job's ``config:`` block, and only settings meant for all jobs (``start_date``) as
``TAP_AUDITLOGS_*``.

Two things must exist before the first parallel run, or the jobs race to create them: the
system database's tables (``meltano upgrade database``; otherwise ``table job already exists``
or ``duplicate key ... alembic_version``) and the target schema (otherwise, now and then,
``DuplicateSchema``). With ``audit_events`` selected, the jobs share that table: one job runs
alone first to create it, then all run in parallel.

Meltano and the plugins are those ``tests/test_meltano.py`` caches; the jobs' project lives in
``tmp_path`` and uses them through ``MELTANO_SYS_DIR_ROOT`` (an inherited plugin shares its
parent's virtualenv). A PostgreSQL system database needs ``meltano[postgres]`` (psycopg 3, URI
``postgresql+psycopg://``), added to the cached Meltano virtualenv when missing.
"""

from __future__ import annotations

import json
import subprocess
import time
import typing as t
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from tap_auditlogs.providers import all_providers
from tap_auditlogs.streams.audit_events import AuditEventsStream
from tests.conftest import psql, venv_commands
from tests.test_meltano import (
    MELTANO_VERSION,
    Meltano,
    add_new_events,
    cache_lock,
    installed_meltano,
    postgres_counts,
    project_yaml,
    start_emulator,
    tail,
    truth,
)

if t.TYPE_CHECKING:
    from tests.emulator import Emulator

pytestmark = pytest.mark.slow

PROVIDERS = all_providers()
JOBS = {f"tap-auditlogs--{p.key}": p for p in PROVIDERS}
LOADER = "target-postgres"
STATE_IDS = {f"dev:{name}-to-{LOADER}": p for name, p in JOBS.items()}
STREAM_OF = {name: p.source_class.name for name, p in JOBS.items()}


class Done(t.NamedTuple):
    """What one command of a parallel batch did."""

    code: int
    stdout: str
    stderr: str


def env_var(plugin: str, setting: str) -> str:
    """The environment variable Meltano reads for one plugin's setting (by plugin name)."""
    return "_".join(part.upper().replace("-", "_").replace(".", "_") for part in (plugin, setting))


def sensitive_settings() -> set[str]:
    """The extractor's secret settings (``sensitive: true`` in meltano.yml)."""
    extractor = yaml.safe_load(project_yaml())["plugins"]["extractors"][0]
    return {s["name"] for s in extractor["settings"] if s.get("sensitive")}


def write_jobs_project(root: Path, emu: Emulator, *, unified: bool = False) -> None:
    """meltano.yml with one inherited extractor per provider; their secrets in ``.env``."""
    project = yaml.safe_load(project_yaml())
    secret = sensitive_settings()
    dotenv = []
    for name, provider in JOBS.items():
        block = {}
        for key, value in emu.tap_config()[provider.key].items():
            setting = f"{provider.key}.{key}"
            if setting in secret:
                dotenv.append(f"{env_var(name, setting)}={json.dumps(str(value))}")
            else:
                block[key] = value
        job: dict[str, t.Any] = {
            "name": name,
            "inherit_from": "tap-auditlogs",
            "config": {provider.key: block},
        }
        if unified:
            job["select"] = ["*.*"]  # replaces the parent's list, which leaves audit_events out
        project["plugins"]["extractors"].append(job)
    root.mkdir(parents=True, exist_ok=True)
    (root / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    (root / ".env").write_text("\n".join(dotenv) + "\n")


@pytest.fixture(scope="module")
def cached_meltano() -> Meltano:
    """Meltano and the plugins of tests/test_meltano.py (installed or reused)."""
    return installed_meltano()


def jobs_meltano(cached: Meltano, root: Path) -> Meltano:
    """Meltano on the project at ``root``, with the cached project's installed plugins."""
    env = {**cached.base_env, "MELTANO_SYS_DIR_ROOT": str(cached.root / ".meltano")}
    return Meltano(executable=cached.executable, root=root, base_env=env)


def ensure_postgres_driver(meltano: Meltano) -> None:
    """``meltano[postgres]`` (psycopg 3) in the cached Meltano virtualenv."""
    python = str(meltano.executable.parent / "python")
    with cache_lock():
        check = subprocess.run([python, "-c", "import psycopg"], capture_output=True, check=False)
        if check.returncode != 0:
            venv = meltano.executable.parents[1]
            _, install = venv_commands(python, venv, [f"meltano[postgres]=={MELTANO_VERSION}"])
            subprocess.run(install, check=True)


def run_all(
    meltano: Meltano, commands: dict[str, list[str]], env: dict[str, str], logs: Path
) -> dict[str, Done]:
    """Meltano commands started together; each one's exit code and output."""
    logs.mkdir(parents=True, exist_ok=True)
    started = {}
    for label, args in commands.items():
        out, err = logs / f"{label}.out", logs / f"{label}.err"
        with out.open("w") as stdout, err.open("w") as stderr:
            started[label] = subprocess.Popen(
                [str(meltano.executable), *args],
                cwd=meltano.root,
                env={**meltano.base_env, **env},
                stdout=stdout,
                stderr=stderr,
            )
    try:
        codes = {label: process.wait(timeout=600) for label, process in started.items()}
    finally:
        for process in started.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return {
        label: Done(code, (logs / f"{label}.out").read_text(), (logs / f"{label}.err").read_text())
        for label, code in codes.items()
    }


def assert_succeeded(done: dict[str, Done]) -> None:
    """Every command exited 0 (else: the end of each failed one's log)."""
    failed = {label: d.stderr[-3000:] for label, d in done.items() if d.code != 0}
    assert not failed, "\n\n".join(f"== {label}\n{text}" for label, text in failed.items())


def run_jobs(
    meltano: Meltano, env: dict[str, str], logs: Path, jobs: t.Iterable[str] = JOBS
) -> None:
    """``meltano run <job> target-postgres`` for the jobs, all at the same time."""
    commands = {name: ["run", name, LOADER, "--no-install"] for name in jobs}
    assert_succeeded(run_all(meltano, commands, env, logs))


def job_bookmarks(meltano: Meltano, env: dict[str, str], logs: Path) -> dict[str, set[str]]:
    """``meltano state list``, then ``state get`` of every id: the bookmarked streams."""
    listed = meltano("state", "list", env=env)
    assert listed.returncode == 0, tail(listed)
    ids = listed.stdout.split()
    got = run_all(meltano, {i.replace(":", "_"): ["state", "get", i] for i in ids}, env, logs)
    assert_succeeded(got)
    return {
        state_id: set(
            json.loads(got[state_id.replace(":", "_")].stdout)["singer_state"]["bookmarks"]
        )
        for state_id in ids
    }


def system_database(kind: str, port: int, tmp_path: Path, meltano: Meltano) -> str:
    """A new, empty Meltano system database: its URI."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/meltano.db"
    ensure_postgres_driver(meltano)
    name = f"meltano_{int(time.time() * 1000)}"
    psql(port, f"CREATE DATABASE {name}")
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"


def jobs_env(emu: Emulator, port: int, schema: str, database_uri: str) -> dict[str, str]:
    """What every job shares: the system DB, the start date, the loader's settings."""
    start = emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)
    return {
        "MELTANO_DATABASE_URI": database_uri,
        "TAP_AUDITLOGS_START_DATE": start.isoformat(),  # the parent's namespace: every job
        "TARGET_POSTGRES_HOST": "127.0.0.1",
        "TARGET_POSTGRES_PORT": str(port),
        "TARGET_POSTGRES_USER": "postgres",
        "TARGET_POSTGRES_PASSWORD": "unused-the-test-server-trusts-127.0.0.1",
        "TARGET_POSTGRES_DATABASE": "postgres",
        "TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA": schema,
    }


def upgrade_database(meltano: Meltano, env: dict[str, str]) -> None:
    """Create the system database's tables (parallel first commands would race to)."""
    done = meltano("upgrade", "database", env=env)
    assert done.returncode == 0, tail(done)


def prepare(meltano: Meltano, env: dict[str, str], port: int, schema: str) -> None:
    """What must exist before parallel runs: the system DB's tables, the target schema."""
    upgrade_database(meltano, env)
    psql(port, f'CREATE SCHEMA IF NOT EXISTS "{schema}"')


@pytest.mark.parametrize("system_db", ["sqlite", "postgresql"])
def test_parallel_jobs_per_provider(
    cached_meltano, emulator, postgres, tmp_path, system_db
) -> None:
    """Four jobs at once, twice: every event once, a state per job, round 2 only the new."""
    emu = start_emulator(emulator)
    write_jobs_project(tmp_path / "project", emu)
    meltano = jobs_meltano(cached_meltano, tmp_path / "project")
    schema = f"auditlogs_jobs_{system_db}_{int(time.time())}"
    uri = system_database(system_db, postgres, tmp_path, meltano)
    env = jobs_env(emu, postgres, schema, uri)
    prepare(meltano, env, postgres, schema)

    run_jobs(meltano, env, tmp_path / "round-1")
    expected = truth(emu)
    assert postgres_counts(postgres, schema) == {s: (n, n, n) for s, n in expected.items()}
    # One state id per job, holding only its own provider's bookmark.
    bookmarks = job_bookmarks(meltano, env, tmp_path / "state")
    assert bookmarks == {i: {p.source_class.name} for i, p in STATE_IDS.items()}

    added = add_new_events(emu)
    run_jobs(meltano, env, tmp_path / "round-2")
    now = truth(emu)
    assert now == {s: expected[s] + added[s] for s in expected}
    # Every event once; the rows round 2 wrote are exactly the new events.
    assert postgres_counts(postgres, schema) == {s: (now[s], now[s], added[s]) for s in now}


def unified_counts(port: int, schema: str) -> dict[str, tuple[int, int, int]]:
    """audit_events per provider: rows, distinct keys, rows of that provider's latest sync."""
    keys = ", ".join(f'"{key}"' for key in AuditEventsStream.primary_keys)
    rows = psql(
        port,
        f"SELECT provider, count(*), count(DISTINCT ({keys})), count(*) FILTER (WHERE latest) "
        "FROM (SELECT *, _sdc_sync_started_at = max(_sdc_sync_started_at) "
        "OVER (PARTITION BY provider) AS latest "
        f'FROM "{schema}"."{AuditEventsStream.name}") AS events GROUP BY provider',
    )
    return {row[0]: (int(row[1]), int(row[2]), int(row[3])) for row in rows}


def test_parallel_jobs_share_audit_events(cached_meltano, emulator, postgres, tmp_path) -> None:
    """With audit_events selected, the jobs (one per provider) upsert one shared table at once."""
    emu = start_emulator(emulator)
    write_jobs_project(tmp_path / "project", emu, unified=True)
    meltano = jobs_meltano(cached_meltano, tmp_path / "project")
    schema = f"auditlogs_unified_{int(time.time())}"
    env = jobs_env(emu, postgres, schema, f"sqlite:///{tmp_path}/meltano.db")
    prepare(meltano, env, postgres, schema)
    first = next(iter(JOBS))

    # One job alone creates audit_events (concurrent CREATE TABLEs can collide), then all four
    # run together: the first one reads only what is new, the others everything.
    run_jobs(meltano, env, tmp_path / "round-1", [first])
    added = add_new_events(emu)
    run_jobs(meltano, env, tmp_path / "round-2")

    now = truth(emu)
    wrote = {name: added[name] if job == first else now[name] for job, name in STREAM_OF.items()}
    expected = {stream: (now[stream], now[stream], wrote[stream]) for stream in now}
    assert postgres_counts(postgres, schema) == expected
    assert unified_counts(postgres, schema) == {
        p.key: expected[STREAM_OF[j]] for j, p in JOBS.items()
    }


def test_job_settings_stay_with_their_job(cached_meltano, emulator, tmp_path) -> None:
    """Each job's config has only its own provider; a ``TAP_AUDITLOGS_*`` reaches all jobs."""
    emu = emulator(seed=7, events_per_org=5, span_days=1)
    write_jobs_project(tmp_path / "project", emu)
    meltano = jobs_meltano(cached_meltano, tmp_path / "project")
    leaked = PROVIDERS[0]
    shared = {
        "MELTANO_DATABASE_URI": f"sqlite:///{tmp_path}/meltano.db",
        env_var("tap-auditlogs", f"{leaked.key}.base_url"): "http://shared.invalid",
    }
    upgrade_database(meltano, shared)
    commands = {name: ["config", "--unsafe", "print", name] for name in JOBS}
    done = run_all(meltano, commands, shared, tmp_path / "config")
    assert_succeeded(done)
    for name, provider in JOBS.items():
        config = json.loads(done[name].stdout)
        own = emu.tap_config()[provider.key]
        blocks = {p.key for p in PROVIDERS if config.get(p.key)}
        if provider is leaked:
            # The job's own setting (meltano.yml config) wins over the parent's variable.
            assert config[provider.key] == own, name
            assert blocks == {provider.key}, name
        else:
            assert config[provider.key] == own, name
            assert blocks == {provider.key, leaked.key}, name
            assert config[leaked.key] == {"base_url": "http://shared.invalid"}, name
