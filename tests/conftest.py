"""Shared test harness: the emulator, and two ways to run the tap against it.

* ``run_tap``: in-process (fast), capturing the Singer messages the tap writes.
* ``run_tap_cli``: the real ``tap-auditlogs`` command in a subprocess, optionally killed
  with SIGKILL after N records, keeping only the lines a target would have received.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import fcntl
import functools
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import typing as t
from pathlib import Path

import pytest

from tap_auditlogs.core.errors import AuditLogsError
from tap_auditlogs.engine.source import AuditLogSource
from tap_auditlogs.providers import ENTRY_POINT_GROUP
from tap_auditlogs.streams.audit_log import AuditLogStream
from tap_auditlogs.tap import TapAuditLogs
from tests.emulator import (
    Emulator,
    Provider,
    Scenario,
    TruthEvent,
    available_providers,
    register_provider,
    unregister_provider,
)

REPO = Path(__file__).resolve().parents[1]
TAP_COMMAND = [sys.executable, "-m", "tap_auditlogs"]

#: Where the end-to-end suites keep the virtualenvs they build (Singer targets, Meltano), shared
#: by every clone on this machine: ``$TAP_AUDITLOGS_TEST_CACHE``, else
#: ``${XDG_CACHE_HOME:-~/.cache}/tap-auditlogs-tests``. Delete it to rebuild them all.
TEST_CACHE = Path(
    os.environ.get("TAP_AUDITLOGS_TEST_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tap-auditlogs-tests"
)

#: Settings that make retries fast in tests (the policy is the same, the waits shorter).
FAST_RETRIES = {"backoff_base_seconds": 0.01, "max_retries": 6, "request_timeout": 5}


@dataclasses.dataclass
class TapRun:
    """What one run of the tap wrote."""

    messages: list[dict]
    exit_code: int
    stderr: str = ""

    def records(self, stream: str | None = None) -> list[dict]:
        """RECORD payloads, of one stream or all."""
        return [
            m["record"]
            for m in self.messages
            if m["type"] == "RECORD" and (stream is None or m["stream"] == stream)
        ]

    def ids(self, stream: str, key: str) -> list[str]:
        """The primary-key values emitted, in order."""
        return [str(r[key]) for r in self.records(stream)]

    @property
    def states(self) -> list[dict]:
        """Every STATE value, in order."""
        return [m["value"] for m in self.messages if m["type"] == "STATE"]

    @property
    def final_state(self) -> dict | None:
        """The last STATE the run wrote (what a target would persist)."""
        return self.states[-1] if self.states else None


def tap_config(emu: Emulator, **overrides: t.Any) -> dict:
    """The emulator's config for the tap plus fast retries, with overrides merged per block."""
    config = {**emu.tap_config(), **FAST_RETRIES}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key] = {**config[key], **value}
        elif value is None:
            config.pop(key, None)
        else:
            config[key] = value
    return config


@functools.cache
def provider_sources() -> dict[str, AuditLogSource]:
    """Every provider's source (source.py) by stream name, built once (for their id and
    instant rules)."""
    config = {name: cls.credentials() for name, cls in available_providers().items()}
    streams = TapAuditLogs(config=config).streams.values()
    return {s.name: s.source for s in streams if isinstance(s, AuditLogStream)}


def served_id(stream: str, event: TruthEvent) -> str:
    """The id the tap keys ``event`` by: the provider's, or the substitute the tap gives an
    event served without one (the emulator's ``odd_values``)."""
    return provider_sources()[stream].id_of(dict(event.item))


def served_instant(stream: str, event: TruthEvent) -> int | None:
    """The instant the tap reads in ``event`` as served (None: it cannot read one)."""
    return provider_sources()[stream].instant_of(event.item)


def parse_lines(text: str) -> list[dict]:
    """Singer messages from stdout text; a cut-off last line (a kill) is dropped."""
    messages = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            messages.append(json.loads(line))
        except json.JSONDecodeError:
            break
    return messages


def run_tap(config: dict, state: dict | None = None, catalog: dict | None = None) -> TapRun:
    """Run a sync in this process and capture its messages."""
    buffer = io.BytesIO()
    stdout = io.TextIOWrapper(buffer, encoding="utf-8")
    exit_code = 0
    with contextlib.redirect_stdout(stdout):
        try:
            # Copies: the SDK updates the state it is given in place.
            tap = TapAuditLogs(
                config=copy.deepcopy(config),
                state=copy.deepcopy(state),
                catalog=copy.deepcopy(catalog),
            )
            tap.sync_all_or_fail()
        except AuditLogsError as error:
            exit_code = error.exit_code
        finally:
            stdout.flush()
    return TapRun(messages=parse_lines(buffer.getvalue().decode()), exit_code=exit_code)


def run_tap_cli(
    config: dict,
    state: dict | None = None,
    *,
    kill_after_records: int | None = None,
    kill_after_states: int | None = None,
    env: dict | None = None,
    args: t.Sequence[str] = (),
    timeout: float = 120,
) -> TapRun:
    """Run ``tap-auditlogs`` as a subprocess; SIGKILL it after N RECORD (or STATE) lines
    if asked."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        command = [*TAP_COMMAND, "--config", str(config_path), *args]
        if state is not None:
            state_path = Path(tmp, "state.json")
            state_path.write_text(json.dumps(state))
            command += ["--state", str(state_path)]
        stderr_path = Path(tmp, "stderr.txt")
        with stderr_path.open("w") as stderr_file:
            process = subprocess.Popen(
                command,
                stdout=subprocess.PIPE,
                stderr=stderr_file,
                cwd=REPO,
                env={**os.environ, **(env or {})},
            )
            lines: list[str] = []
            records = states = 0
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.decode()
                if not line.endswith("\n"):
                    break  # cut mid-line
                lines.append(line)
                if '"type":"RECORD"' in line.replace(" ", ""):
                    records += 1
                    if kill_after_records is not None and records >= kill_after_records:
                        process.send_signal(signal.SIGKILL)
                        break
                if '"type":"STATE"' in line.replace(" ", ""):
                    states += 1
                    if kill_after_states is not None and states >= kill_after_states:
                        process.send_signal(signal.SIGKILL)
                        break
            process.stdout.close()
            exit_code = process.wait(timeout=timeout)
        stderr = stderr_path.read_text()
    return TapRun(messages=parse_lines("".join(lines)), exit_code=exit_code, stderr=stderr)


def provider_code_lines(directory: Path) -> int:
    """Lines of a test provider's own code in ``directory``: not its tests, not its emulator,
    no blank or comment line."""
    files = [p for p in directory.glob("*.py") if not p.stem.startswith(("test_", "emulator"))]
    return sum(
        1
        for path in files
        for line in path.read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    )


@contextlib.contextmanager
def installed_provider(
    site: Path, key: str, entry_point: str, emulated: type[Provider]
) -> t.Iterator[dict[str, str]]:
    """A provider from outside the package, installed as a package would be (a dist-info in
    ``site`` with its ``tap_auditlogs.providers`` entry point): yields the environment the
    tap processes of a test start with; its API is served by emulators created meanwhile."""
    dist = site / f"tap_auditlogs_{key}-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: tap-auditlogs-{key}\n")
    (dist / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\n{key} = {entry_point}\n")
    register_provider(emulated)
    try:
        yield {"PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    finally:
        unregister_provider(emulated)


def uv() -> str | None:
    """The ``uv`` executable beside this Python (the test extra installs it), else on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if beside.exists() else shutil.which("uv")


def venv_commands(python: str, venv: Path, requirements: t.Sequence[str]) -> list[list[str]]:
    """Commands that build ``venv`` on ``python`` and install ``requirements`` into it: with
    uv when there is one (its download cache serves every clone), else venv and pip."""
    tool = uv()
    if tool:
        target = ["--python", str(venv / "bin" / "python")]
        return [
            [tool, "venv", "--quiet", "--python", python, str(venv)],
            [tool, "pip", "install", "--quiet", "--compile-bytecode", *target, *requirements],
        ]
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check"]
    return [[python, "-m", "venv", str(venv)], [*pip, "--no-input", *requirements]]


@contextlib.contextmanager
def file_lock(path: Path) -> t.Iterator[None]:
    """An exclusive ``fcntl`` lock on ``path`` (other pytest processes and workers wait)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@pytest.fixture
def emulator() -> t.Iterator[t.Callable[..., Emulator]]:
    """A factory of started emulators: ``emu = emulator(seed=3, socket_order="asc")``."""
    started: list[Emulator] = []

    def start(**scenario: t.Any) -> Emulator:
        emu = Emulator(Scenario(**scenario))
        emu.start()
        started.append(emu)
        return emu

    yield start
    for emu in started:
        emu.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Slow end-to-end tests first (in their order): on several workers (``make test``) they
    start at once, and the quick tests fill the gaps instead of waiting at the end."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True)
def _quiet_sdk_logs(caplog: pytest.LogCaptureFixture) -> None:
    """Keep the SDK's INFO lines out of failing-test reports unless asked for."""
    caplog.set_level(logging.WARNING)


# ----------------------------------------------------------------- PostgreSQL


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def postgres() -> t.Iterator[int]:
    """A private PostgreSQL server on 127.0.0.1 (installed with apt-get when missing)."""
    data_dir = tempfile.mkdtemp(prefix="tap-auditlogs-pg-")
    port = free_port()
    script = REPO / "scripts" / "ensure_postgres.sh"
    done = subprocess.run(
        ["bash", str(script), "start", data_dir, str(port)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(data_dir, ignore_errors=True)
        reason = f"no PostgreSQL server could be started: {(done.stderr or done.stdout)[-800:]}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield port
    finally:
        subprocess.run(["bash", str(script), "stop", data_dir], check=False, timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)


PSQL = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-X", "-A", "-t"]


def psql(port: int, query: str) -> list[list[str]]:
    """Rows of a query on the test server, as lists of text fields."""
    done = subprocess.run(
        [*PSQL, "-p", str(port), "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line.split("\t") for line in done.stdout.splitlines() if line]
