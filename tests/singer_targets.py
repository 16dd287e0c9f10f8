"""Real Singer targets for the compatibility suite (``tests/test_targets.py``): no tests here.

Each `Target` says how to install one loader (pinned), how to configure it for one run, and
how to read back what arrived: the distinct primary-key tuples of each stream, as text.

* Every target but DuckDB gets its own virtualenv on ``python3``, in the test cache shared by
  every clone on the machine (``TEST_CACHE`` of conftest: ``singer-targets/<name>-<key>/venv``,
  the key a hash of the layout, the Python version and the pinned requirements, so a change of
  either builds a new one). It is built with uv when there is one, under an ``fcntl`` lock so
  parallel pytest processes and xdist workers do not race. DuckDB's target is the one in the
  project venv (``pyproject.toml`` pins it, and ``duckdb<1.3``).
* After an install the executable is started once with ``--help``: a target that installs
  but cannot start on this Python is unavailable, with its traceback as the reason.
* `TargetUnavailableError` carries the reason (the pip error tail); `must_fail` says whether
  the test fails rather than skips (under ``CI`` for the required targets).
* Targets name things their own way: lower-cased columns (pipelinewise, DuckDB), snake_case
  columns (target-sqlite: ``auditLogId`` -> ``audit_log_id``), tables named after the stream
  inside the configured schema. `column_for` resolves a primary key to the column.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import functools
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import typing as t
from decimal import Decimal
from pathlib import Path

import duckdb

from tests.conftest import REPO, TEST_CACHE, file_lock, psql, venv_commands

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Sequence

#: Where the targets' virtualenvs live (outside the clone, kept across clones).
CACHE = TEST_CACHE / "singer-targets"
#: Bumped when the way a venv is built changes, so old venvs are rebuilt.
LAYOUT = "2"
INSTALL_TIMEOUT_S = 900
PROBE_TIMEOUT_S = 120

#: Primary-key tuples of each stream, values as text.
Arrived = dict[str, set[tuple[str, ...]]]
#: Primary keys by stream name.
Keys = t.Mapping[str, t.Sequence[str]]


class TargetUnavailableError(Exception):
    """The target cannot be installed or started here; the message says why."""


@dataclasses.dataclass(frozen=True)
class Site:
    """Where one run loads: a scratch directory, and for PostgreSQL a port and a new schema."""

    scratch: Path
    port: int | None = None
    schema: str = "auditlogs"

    @property
    def pg_port(self) -> int:
        """The PostgreSQL port (only PostgreSQL targets ask)."""
        if self.port is None:
            raise ValueError("this target needs the PostgreSQL server's port")
        return self.port


@dataclasses.dataclass(frozen=True)
class Target:
    """One Singer target: install, configure, read back."""

    name: str
    #: The pinned requirement(s): what the stamp records and what is reported.
    requirements: tuple[str, ...]
    executable: str
    config: Callable[[Site], dict[str, t.Any]]
    read: Callable[[Site, Keys], Arrived]
    #: In the required list: under ``CI`` an unavailable target fails the test.
    required: bool = True
    needs_postgres: bool = False
    #: Installed in the project venv (nothing to install; versions checked).
    in_project_venv: bool = False
    #: What a user must know: settings this suite sets and why.
    notes: str = ""

    @functools.cached_property
    def home(self) -> Path:
        """``<test cache>/singer-targets/<name>-<key of what the venv is built from>``."""
        return CACHE / f"{self.name}-{_stamp(self)[:12]}"


# ------------------------------------------------------------------------------ reading back


def text(value: t.Any) -> str:
    """A key value as text, the same whichever way a target typed it (``1.0`` -> ``1``)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value == value.to_integral_value():
        return str(int(value))
    return str(value)


def snake(name: str) -> str:
    """``auditLogId`` -> ``audit_log_id`` (how inflection-based targets name columns)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def column_for(columns: Iterable[str], key: str, where: str) -> str:
    """The column holding primary key ``key``: as named, lower-cased or snake_cased."""
    by_lower = {column.lower(): column for column in columns}
    for candidate in (key.lower(), snake(key)):
        if candidate in by_lower:
            return by_lower[candidate]
    raise LookupError(f"{where} has no column for primary key {key!r}: {sorted(by_lower)}")


def table_for(tables: Iterable[str], stream: str) -> str | None:
    """The table a target made for ``stream`` (named after it, any case), if any."""
    return next((table for table in tables if table.lower() == stream.lower()), None)


def quoted(name: str) -> str:
    """A SQL identifier, double-quoted."""
    return '"' + name.replace('"', '""') + '"'


def read_duckdb(site: Site, keys: Keys) -> Arrived:
    """Distinct keys per table of ``<schema>`` in ``warehouse.duckdb`` (read-only)."""
    path = site.scratch / "warehouse.duckdb"
    if not path.exists():
        return {}
    arrived: Arrived = {}
    with duckdb.connect(str(path), read_only=True) as connection:
        rows = connection.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = ?",
            [site.schema],
        ).fetchall()
        columns = _group(rows)
        for stream, names in keys.items():
            table = table_for(columns, stream)
            if table is None:
                continue
            where = f"duckdb {site.schema}.{table}"
            cols = ", ".join(quoted(column_for(columns[table], k, where)) for k in names)
            found = connection.execute(
                f"SELECT DISTINCT {cols} FROM {quoted(site.schema)}.{quoted(table)}"
            ).fetchall()
            arrived[stream] = {tuple(text(v) for v in row) for row in found}
    return arrived


def read_postgres(site: Site, keys: Keys) -> Arrived:
    """Distinct keys per table of ``<schema>`` on the test server (``psql`` of conftest)."""
    rows = psql(
        site.pg_port,
        "SELECT table_name, column_name FROM information_schema.columns "
        f"WHERE table_schema = '{site.schema}'",
    )
    columns = _group((row[0], row[1]) for row in rows)
    arrived: Arrived = {}
    for stream, names in keys.items():
        table = table_for(columns, stream)
        if table is None:
            continue
        where = f"postgres {site.schema}.{table}"
        cols = ", ".join(f"{quoted(column_for(columns[table], k, where))}::text" for k in names)
        found = psql(
            site.pg_port, f"SELECT DISTINCT {cols} FROM {quoted(site.schema)}.{quoted(table)}"
        )
        arrived[stream] = {tuple(row) for row in found}
    return arrived


def read_sqlite(site: Site, keys: Keys) -> Arrived:
    """Distinct keys per table of ``warehouse.db``."""
    path = site.scratch / "warehouse.db"
    if not path.exists():
        return {}
    arrived: Arrived = {}
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
        tables = [
            str(row[0])
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        ]
        for stream, names in keys.items():
            table = table_for(tables, stream)
            if table is None:
                continue
            info = connection.execute(f"PRAGMA table_info({quoted(table)})").fetchall()
            where = f"sqlite {table}"
            cols = ", ".join(quoted(column_for([r[1] for r in info], k, where)) for k in names)
            found = connection.execute(f"SELECT DISTINCT {cols} FROM {quoted(table)}").fetchall()
            arrived[stream] = {tuple(text(v) for v in row) for row in found}
    return arrived


def read_jsonl(site: Site, keys: Keys) -> Arrived:
    """Distinct keys per ``jsonl/<stream>.jsonl`` file."""
    arrived: Arrived = {}
    for stream, names in keys.items():
        path = site.scratch / "jsonl" / f"{stream}.jsonl"
        if not path.exists():
            continue
        found: set[tuple[str, ...]] = set()
        with path.open(encoding="utf-8") as handle:
            for line in handle:
                if line.strip():
                    record = json.loads(line)
                    found.add(tuple(text(_field(record, k)) for k in names))
        arrived[stream] = found
    return arrived


def _field(record: dict[str, t.Any], key: str) -> t.Any:
    """A record's field by any column naming; None when absent (JSON lines omit nulls)."""
    try:
        return record.get(column_for(record, key, "record"))
    except LookupError:
        return None


def read_csv(site: Site, keys: Keys) -> Arrived:
    """Distinct keys per ``csv/<stream>.csv`` file (a header line, then rows)."""
    csv.field_size_limit(sys.maxsize)  # 70,000-character fields
    arrived: Arrived = {}
    for stream, names in keys.items():
        path = site.scratch / "csv" / f"{stream}.csv"
        if not path.exists():
            continue
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            cols = [column_for(reader.fieldnames or (), k, str(path)) for k in names]
            arrived[stream] = {tuple(text(row[c]) for c in cols) for row in reader}
    return arrived


def _group(rows: Iterable[tuple[t.Any, t.Any]]) -> dict[str, list[str]]:
    """``(table, column)`` rows -> columns by table."""
    grouped: dict[str, list[str]] = {}
    for table, column in rows:
        grouped.setdefault(str(table), []).append(str(column))
    return grouped


# ---------------------------------------------------------------------------------- configs


def postgres_connection(site: Site, database_key: str) -> dict[str, t.Any]:
    """Host, port, user and database of the test server (trust auth: any password)."""
    return {
        "host": "127.0.0.1",
        "port": site.pg_port,
        "user": "postgres",
        "password": "unused-the-test-server-trusts-127.0.0.1",
        database_key: "postgres",
        "default_target_schema": site.schema,
    }


TARGETS: tuple[Target, ...] = (
    Target(
        name="target-duckdb",
        requirements=("target-duckdb==0.8.0", "duckdb==1.2.2"),
        executable="target-duckdb",
        config=lambda site: {
            "path": str(site.scratch / "warehouse.duckdb"),
            "default_target_schema": site.schema,
        },
        read=read_duckdb,
        in_project_venv=True,
        notes=(
            "duckdb must stay below 1.3: with 1.3+ this target's CSV COPY drops the first "
            "row of every batch (pyproject.toml pins it)."
        ),
    ),
    Target(
        name="meltanolabs-target-postgres",
        requirements=("meltanolabs-target-postgres==0.8.1",),
        executable="target-postgres",
        config=lambda site: {
            **postgres_connection(site, "database"),
            "load_method": "upsert",
            "sanitize_null_text_characters": True,
        },
        read=read_postgres,
        needs_postgres=True,
        notes=(
            "load_method: upsert (a re-sent event replaces its row); "
            "sanitize_null_text_characters: true (PostgreSQL text cannot hold U+0000)."
        ),
    ),
    Target(
        name="pipelinewise-target-postgres",
        requirements=("pipelinewise-target-postgres==2.1.2",),
        executable="target-postgres",
        config=lambda site: postgres_connection(site, "dbname"),
        read=read_postgres,
        needs_postgres=True,
        notes=(
            "Pins psycopg2-binary==2.9.5 itself (a cp311 wheel: no libpq-dev needed on 3.11); "
            "upserts on the primary key; lower-cases column names."
        ),
    ),
    Target(
        name="target-jsonl",
        requirements=("target-jsonl==0.1.4",),
        executable="target-jsonl",
        config=lambda site: {
            "destination_path": str(site.scratch / "jsonl"),
            "do_timestamp_file": False,
        },
        read=read_jsonl,
        notes="do_timestamp_file: false (else file names carry the run's time).",
    ),
    Target(
        name="meltanolabs-target-csv",
        requirements=("meltanolabs-target-csv==0.5.0",),
        executable="target-csv",
        config=lambda site: {"output_path": str(site.scratch / "csv")},
        read=read_csv,
    ),
    Target(
        name="target-sqlite",
        requirements=("target-sqlite==0.2.0",),
        executable="target-sqlite",
        # It appends ``.db`` to the path it is given.
        config=lambda site: {"database": str(site.scratch / "warehouse")},
        read=read_sqlite,
        required=False,
        notes=(
            "Optional. Its last release (2019) pins sqlalchemy==1.2.12 and uses "
            "collections.MutableMapping itself: neither imports on Python 3.10+, so it is "
            "skipped there. It snake_cases column names (auditLogId -> audit_log_id)."
        ),
    ),
)
TARGETS_BY_NAME = {target.name: target for target in TARGETS}


# ---------------------------------------------------------------------------------- install


def must_fail(target: Target) -> bool:
    """True when an unavailable ``target`` fails the test instead of skipping it (CI)."""
    return bool(os.environ.get("CI")) and target.required


_ready: dict[str, Path | TargetUnavailableError] = {}


def ensure(target: Target) -> Path:
    """The target's executable, installed if needed; else raise `TargetUnavailableError`."""
    if target.name not in _ready:
        try:
            if target.in_project_venv:
                _ready[target.name] = _project_venv_executable(target)
            else:
                with file_lock(target.home / ".lock"):
                    _ready[target.name] = _install(target)
        except TargetUnavailableError as error:
            _ready[target.name] = error
    found = _ready[target.name]
    if isinstance(found, TargetUnavailableError):
        raise found
    return found


def _stamp(target: Target) -> str:
    """What the venv was built from: layout, Python (version and path), the requirements."""
    version = subprocess.run(
        ["python3", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    python = os.path.realpath(shutil.which("python3") or "python3")
    text_ = json.dumps(
        {"layout": LAYOUT, "python3": [version, python], "requirements": target.requirements}
    )
    return hashlib.sha256(text_.encode()).hexdigest()


def _install(target: Target) -> Path:
    """Build (or reuse) ``<home>/venv`` and check that the executable starts (once per
    venv: ``probed.stamp`` records that it did)."""
    venv = target.home / "venv"
    executable = venv / "bin" / target.executable
    stamp_file = target.home / "installed.stamp"
    stamp = _stamp(target)
    if not (stamp_file.exists() and stamp_file.read_text() == stamp and executable.exists()):
        stamp_file.unlink(missing_ok=True)
        (target.home / "probed.stamp").unlink(missing_ok=True)
        shutil.rmtree(venv, ignore_errors=True)
        log = target.home / "install.log"
        create, install = venv_commands("python3", venv, target.requirements)
        _run_logged(create, log, target, "python3 -m venv")
        what = "pip install " + " ".join(target.requirements)
        _run_logged(install, log, target, what)
        if not executable.exists():
            raise TargetUnavailableError(
                f"{target.name}: installed, but {executable} does not exist"
            )
        stamp_file.write_text(stamp)
    probed = target.home / "probed.stamp"
    if not (probed.exists() and probed.read_text() == stamp):
        _probe(target, executable)
        probed.write_text(stamp)
    return executable


def _run_logged(command: Sequence[str], log: Path, target: Target, what: str) -> None:
    """Run an install command, appending its output to ``log``; raise with its tail."""
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
            env=_clean_env(),
        )
    except subprocess.TimeoutExpired as error:
        raise TargetUnavailableError(
            f"{target.name}: `{what}` timed out after {error.timeout}s"
        ) from None
    output = done.stdout + done.stderr
    with log.open("a") as handle:
        handle.write(f"$ {' '.join(command)}\n{output}\n")
    if done.returncode != 0:
        raise TargetUnavailableError(
            f"{target.name}: `{what}` failed (exit {done.returncode}) on Python "
            f"{_python3_version()}:\n{tail(output, 25)}"
        )


def _probe(target: Target, executable: Path) -> None:
    """Start the executable with ``--help``: installed is not the same as runnable."""
    done = subprocess.run(
        [str(executable), "--help"],
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
        env=_clean_env(),
    )
    if done.returncode != 0:
        raise TargetUnavailableError(
            f"{target.name}: installed, but `{target.executable} --help` exits "
            f"{done.returncode} on Python {_python3_version()}:\n"
            f"{tail(done.stdout + done.stderr, 12)}"
        )


def _project_venv_executable(target: Target) -> Path:
    """The target in the project venv, if its pinned versions are the installed ones."""
    executable = Path(sys.executable).parent / target.executable
    if not executable.exists():
        raise TargetUnavailableError(f"{target.name}: {executable} missing (run `make install`)")
    for requirement in target.requirements:
        name, _, wanted = requirement.partition("==")
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = "nothing"
        if installed != wanted:
            raise TargetUnavailableError(
                f"{target.name}: the project venv has {name} {installed}, this suite pins "
                f"{wanted} (run `make install`)"
            )
    return executable


def _python3_version() -> str:
    done = subprocess.run(["python3", "--version"], capture_output=True, text=True, check=False)
    return done.stdout.strip().removeprefix("Python ")


def _clean_env() -> dict[str, str]:
    """This environment without the project venv's Python variables."""
    drop = ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")
    return {key: value for key, value in os.environ.items() if key not in drop}


def tail(output: str, lines: int = 30, width: int = 500) -> str:
    """The last ``lines`` non-empty lines of ``output``, each cut to ``width`` characters."""
    kept = [line for line in output.splitlines() if line.strip()]
    return "\n".join(
        line if len(line) <= width else f"{line[:width]}... ({len(line)} chars)"
        for line in kept[-lines:]
    )


# ------------------------------------------------------------------------------------- run


@dataclasses.dataclass
class Pipeline:
    """What ``tap | target`` did."""

    tap_exit: int
    target_exit: int
    tap_stderr: str
    target_stderr: str


def run_pipeline(
    tap_command: Sequence[str],
    target_command: Sequence[str],
    workdir: Path,
    timeout: float = 600,
) -> Pipeline:
    """``tap | target`` as two processes joined by a real OS pipe; stderr of each kept."""
    tap_log, target_log = workdir / "tap.stderr", workdir / "target.stderr"
    with (
        tap_log.open("w") as tap_err,
        target_log.open("w") as target_err,
        (workdir / "target.stdout").open("w") as target_out,
    ):
        tap = subprocess.Popen(tap_command, stdout=subprocess.PIPE, stderr=tap_err, cwd=REPO)
        assert tap.stdout is not None
        target = subprocess.Popen(
            target_command,
            stdin=tap.stdout,
            stdout=target_out,
            stderr=target_err,
            cwd=workdir,
            env=_clean_env(),
        )
        tap.stdout.close()  # the target holds the read end: the tap sees EPIPE if it dies
        try:
            target_exit = target.wait(timeout=timeout)
            tap_exit = tap.wait(timeout=60)
        except subprocess.TimeoutExpired:
            for process in (tap, target):
                process.kill()
                process.wait()
            raise
    return Pipeline(
        tap_exit=tap_exit,
        target_exit=target_exit,
        tap_stderr=tap_log.read_text(errors="replace"),
        target_stderr=target_log.read_text(errors="replace"),
    )
