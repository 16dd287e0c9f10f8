"""Compatibility with real Singer targets: every event the emulator holds arrives, once.

``tap-auditlogs | <target>`` as two real processes joined by an OS pipe, for each target of
``tests/singer_targets.py`` (installed into ``output/singer-targets``, reused between runs),
in two modes and on two kinds of data:

* modes: ``provider-streams`` (the default catalog: ``audit_events`` is not selected by
  default, so it must not arrive) and ``everything`` (``--discover``, every stream selected,
  ``sync_coverage`` too: one row per partition must arrive);
* data: ``clean`` and ``awkward`` (``awkward_values=True``: NUL characters, undeclared fields,
  emoji/RTL text, 70,000-character strings).

Per stream, the DISTINCT primary keys read back from the target must equal the emulator's
truth: a duplicate counts once, a lost row shows as missing. Both processes must exit 0.
Every case also writes one line of ``output/target-compat.md`` (truth / arrived / missing
per stream), rebuilt after each case from ``output/target-compat/*.json``.
"""

from __future__ import annotations

import dataclasses
import json
import re
import sqlite3
import subprocess
import time
import typing as t
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from tap_auditlogs.output.conform import UNDECLARED_FIELDS
from tap_auditlogs.providers import Provider, all_providers
from tap_auditlogs.streams.audit_events import STREAM_NAME, AuditEventsStream
from tap_auditlogs.streams.coverage import STREAM_NAME as COVERAGE
from tests.conftest import REPO, TAP_COMMAND, tap_config
from tests.emulator import Scenario
from tests.emulator.awkward import ADDED_FIELD
from tests.singer_targets import (
    TARGETS,
    TARGETS_BY_NAME,
    Arrived,
    Site,
    Target,
    TargetUnavailableError,
    ensure,
    must_fail,
    run_pipeline,
    tail,
)

if t.TYPE_CHECKING:
    from collections.abc import Callable

    from tests.emulator import Emulator
    from tests.emulator.provider import TruthEvent

pytestmark = pytest.mark.slow

PROVIDERS: tuple[Provider, ...] = all_providers()
UNIFIED: str = STREAM_NAME


def stream_of(provider: Provider) -> str:
    """The provider's stream name."""
    stream: type[t.Any] = provider.source_class
    return str(stream.name)


def keys_of(stream: type[t.Any]) -> tuple[str, ...]:
    """A stream class's primary keys."""
    return tuple(t.cast("t.Sequence[str]", stream.primary_keys))


#: Primary keys of every stream the tap has.
KEYS: dict[str, tuple[str, ...]] = {
    **{stream_of(p): keys_of(p.source_class) for p in PROVIDERS},
    UNIFIED: keys_of(AuditEventsStream),
}
#: Mode -> whether every stream is selected (``audit_events`` included).
MODES = {"provider-streams": False, "everything": True}
#: Data kind -> ``awkward_values``.
DATA = {"clean": False, "awkward": True}
SEED = 5
EVENTS_PER_ORG = 60
#: Organizations per provider at most (target start-up dominates; data stays small).
MAX_ORGS = 2
CASES_DIR = REPO / "output" / "target-compat"
REPORT = REPO / "output" / "target-compat.md"


# --------------------------------------------------------------------------------- truth


def truth_key(provider: Provider, event: TruthEvent) -> tuple[str, ...]:
    """The stream's primary key of ``event``: the partition field(s), then the event id.

    The tap's last primary key is always the event id (``AuditLogStream.record_id``); any key
    before it is the partition field, whose value is the emulator's org.
    """
    *scope, _ = keys_of(provider.source_class)
    unknown = [key for key in scope if key != provider.source_class.partition_field]
    if unknown:
        raise AssertionError(f"{stream_of(provider)}: no truth for primary key(s) {unknown}")
    return (*(event.org for _ in scope), event.id)


def expected_keys(emu: Emulator, everything: bool) -> dict[str, set[tuple[str, ...]]]:
    """What must arrive, per stream, from the emulator's truth (never from the tap's output).

    ``audit_events`` is keyed (provider, organization_id, event_id). Its expected keys are the
    (provider, event_id) pairs of the truth, and arrived triples are compared on those two
    fields (see `project_unified`): ``organization_id`` is a value the tap derives per
    provider (Socket's numeric org id, ConfigCat's uuid, ``unknown`` for Nirvana), and
    recomputing it here would copy ``output/unified.py`` and test it against itself. Taking the keys
    from the tap's RECORD lines instead would hide an event the tap never sent, and would need
    a tee in the pipe. Event ids are unique within a provider (checked), so the pair loses
    nothing; an event that arrived under two organization ids is caught separately.
    """
    expected: dict[str, set[tuple[str, ...]]] = {}
    unified: set[tuple[str, ...]] = set()
    for provider in PROVIDERS:
        events = emu.truth(provider.key)
        ids = [event.id for event in events]
        assert len(set(ids)) == len(ids), f"{provider.key}: event ids repeat in the truth"
        expected[stream_of(provider)] = {truth_key(provider, e) for e in events}
        if provider.unified is not None:
            unified |= {(provider.key, event.id) for event in events}
    expected[UNIFIED] = unified if everything else set()
    return expected


def project_unified(arrived: set[tuple[str, ...]]) -> tuple[set[tuple[str, ...]], int]:
    """(provider, event_id) pairs of arrived ``audit_events`` keys, and how many events
    arrived under more than one organization_id."""
    pairs: set[tuple[str, ...]] = {(key[0], key[2]) for key in arrived}
    return pairs, len(arrived) - len(pairs)


# ---------------------------------------------------------------------------------- report


@dataclasses.dataclass
class Count:
    """Truth, arrived, missing and unexpected keys of one stream."""

    truth: int
    arrived: int
    missing: int
    unexpected: int
    example: str = ""

    @property
    def ok(self) -> bool:
        """Every key arrived and nothing else did."""
        return self.missing == 0 and self.unexpected == 0

    def cell(self) -> str:
        """``truth / arrived / missing`` (and ``+N unexpected``)."""
        extra = f" +{self.unexpected}?" if self.unexpected else ""
        return f"{self.truth} / {self.arrived} / {self.missing}{extra}"


def count(expected: set[tuple[str, ...]], arrived: set[tuple[str, ...]]) -> Count:
    """Compare one stream's keys."""
    missing, unexpected = expected - arrived, arrived - expected
    example = ""
    if missing:
        example += f" missing e.g. {sorted(missing)[:3]}"
    if unexpected:
        example += f" unexpected e.g. {sorted(unexpected)[:3]}"
    return Count(len(expected), len(arrived), len(missing), len(unexpected), example.strip())


def case_path(target: str, mode: str, data: str) -> Path:
    """``output/target-compat/<target>__<mode>__<data>.json``."""
    return CASES_DIR / f"{target}__{mode}__{data}.json"


def record_case(target: Target, mode: str, data: str, **fields: t.Any) -> None:
    """Keep one case's outcome and rebuild ``output/target-compat.md`` from all cases."""
    CASES_DIR.mkdir(parents=True, exist_ok=True)
    fields["when"] = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    path = case_path(target.name, mode, data)
    scratch = path.with_suffix(f".{uuid.uuid4().hex}.tmp")
    scratch.write_text(json.dumps({"target": target.name, "mode": mode, "data": data, **fields}))
    scratch.replace(path)
    write_report()


def write_report() -> None:
    """The markdown table of every recorded case, in suite order."""
    streams = list(KEYS)
    header = ["Target", "Mode", "Data", "Result", *streams, "Exit tap/target", "Seconds"]
    lines = [
        "# Singer target compatibility",
        "",
        "Distinct primary keys per stream: `truth / arrived / missing` (`+N?`: keys that",
        "arrived but are not in the truth). Written by `tests/test_targets.py`; each line",
        "is the latest run of that case.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    notes: list[str] = []
    for target in TARGETS:
        for mode in MODES:
            for data in DATA:
                path = case_path(target.name, mode, data)
                if not path.exists():
                    continue
                case = json.loads(path.read_text())
                cells = [target.name, mode, data, case["result"]]
                cells += [case.get("streams", {}).get(s, "-") for s in streams]
                cells += [case.get("exits", "-"), case.get("seconds", "-")]
                lines.append("| " + " | ".join(str(c) for c in cells) + " |")
                if case.get("reason"):
                    notes.append(f"- {target.name} / {mode} / {data}: {case['reason']}")
    lines += ["", "Targets and the settings this suite gives them:", ""]
    for target in TARGETS:
        lines.append(f"- `{' '.join(target.requirements)}`: {target.notes or 'defaults.'}")
    if notes:
        lines += ["", "Notes:", "", *notes]
    scratch = REPORT.with_suffix(f".{uuid.uuid4().hex}.tmp")
    scratch.write_text("\n".join(lines) + "\n")
    scratch.replace(REPORT)


# ------------------------------------------------------------------------------------- run


def failure_reason(problems: list[str], target_exit: int, target_stderr: str) -> str:
    """One line for the report: the target's last error line if it failed, else the first
    problem."""
    if target_exit != 0 and target_stderr.strip():
        lines = tail(target_stderr, 40, width=300).splitlines()
        errors = [line for line in lines if re.search(r"(Error|Exception)\b", line)]
        return f"exit {target_exit}: {(errors or lines)[-1].strip()}"
    return problems[0].splitlines()[0] if problems else ""


def start_emulator(emulator: Callable[..., Emulator], awkward: bool) -> Emulator:
    """A small emulator: ``EVENTS_PER_ORG`` events in at most ``MAX_ORGS`` orgs a provider."""
    orgs = {f"{p.key}_orgs": tuple(Scenario().switch(p.key, "orgs"))[:MAX_ORGS] for p in PROVIDERS}
    # Pass the switch only when it is on, so clean runs work on an emulator without it.
    extra = {"awkward_values": True} if awkward else {}
    return emulator(seed=SEED, events_per_org=EVENTS_PER_ORG, **orgs, **extra)


def coverage_arrived(target: Target, site: Site, emu: Emulator) -> list[str]:
    """``sync_coverage`` (selected with everything): one row per partition, of one run."""
    keys = ("run_id", "stream", "partition")
    try:
        rows = target.read(site, {COVERAGE: keys}).get(COVERAGE, set())
    except LookupError as error:
        return [f"{COVERAGE}: {error}"]
    partitions = sum(
        len(emu.provider(p.key).orgs) if p.source_class.organizations_setting else 1
        for p in PROVIDERS
    )
    if len(rows) != partitions or len({row[0] for row in rows}) != 1:
        return [f"{COVERAGE}: {len(rows)} rows arrived, not one per partition ({partitions})"]
    return []


def select_everything(config_path: Path, workdir: Path) -> Path:
    """A ``--discover`` catalog with every stream selected (top-level metadata)."""
    done = subprocess.run(
        [*TAP_COMMAND, "--config", str(config_path), "--discover"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=REPO,
    )
    assert done.returncode == 0, tail(done.stderr)
    catalog = json.loads(done.stdout)
    for stream in catalog["streams"]:
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = True
    path = workdir / "catalog.json"
    path.write_text(json.dumps(catalog))
    return path


def schema_name(target: str, mode: str, data: str) -> str:
    """A fresh PostgreSQL schema name for one case (at most 63 characters)."""
    base = re.sub(r"[^a-z0-9]+", "_", f"compat_{target}_{mode}_{data}")[:50]
    return f"{base}_{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("data", list(DATA))
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("target", TARGETS, ids=[target.name for target in TARGETS])
def test_every_event_arrives_once(
    target: Target,
    mode: str,
    data: str,
    emulator: Callable[..., Emulator],
    request: pytest.FixtureRequest,
    tmp_path: Path,
) -> None:
    """tap | target: per stream, the distinct keys that arrived are exactly the truth."""
    try:
        executable = ensure(target)
    except TargetUnavailableError as error:
        lines = str(error).splitlines()
        reason = lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1].strip()}"
        record_case(target, mode, data, result="skipped", reason=reason)
        if must_fail(target):
            pytest.fail(f"required target unavailable (CI): {error}")
        pytest.skip(reason)

    port = request.getfixturevalue("postgres") if target.needs_postgres else None
    emu = start_emulator(emulator, awkward=DATA[data])
    everything = MODES[mode]
    site = Site(scratch=tmp_path, port=port, schema=schema_name(target.name, mode, data))

    start = emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)
    config_path = tmp_path / "tap.json"
    config_path.write_text(json.dumps(tap_config(emu, start_date=start.isoformat())))
    target_config = tmp_path / "target.json"
    target_config.write_text(json.dumps(target.config(site)))
    tap_command = [*TAP_COMMAND, "--config", str(config_path)]
    if everything:
        tap_command += ["--catalog", str(select_everything(config_path, tmp_path))]

    began = time.monotonic()
    done = run_pipeline(tap_command, [str(executable), "--config", str(target_config)], tmp_path)
    seconds = time.monotonic() - began

    expected = expected_keys(emu, everything)
    problems: list[str] = []
    try:
        arrived: Arrived = target.read(site, KEYS)
    except Exception as error:  # reported below, with the target's stderr
        arrived = {}
        problems.append(f"reading back failed: {type(error).__name__}: {error}")
    if DATA[data] and not problems:
        # Fields the vendor added arrive too, in the declared undeclared_fields column.
        try:
            kept = target.read(site, {stream_of(p): (UNDECLARED_FIELDS,) for p in PROVIDERS})
        except LookupError as error:
            kept = {}
            problems.append(f"no {UNDECLARED_FIELDS} column: {error}")
        for provider in PROVIDERS:
            values = kept.get(stream_of(provider), set())
            if not any(ADDED_FIELD in value for (value,) in values):
                problems.append(f"{stream_of(provider)}: the vendor's added field did not arrive")
    if everything and not problems:
        problems += coverage_arrived(target, site, emu)
    if everything:
        pairs, doubled = project_unified(arrived.get(UNIFIED, set()))
        arrived[UNIFIED] = pairs
        if doubled:
            problems.append(f"{UNIFIED}: {doubled} events arrived under 2+ organization_ids")

    counts = {
        stream: count(keys, arrived.get(stream, set()))
        for stream, keys in expected.items()
        if everything or stream != UNIFIED
    }
    if done.target_exit != 0:
        problems.append(f"{target.name} exited {done.target_exit}")
    if done.tap_exit != 0:  # after a target's crash this is the tap's broken pipe
        log = "\n".join(line for line in done.tap_stderr.splitlines() if "METRIC" not in line)
        problems.append(f"the tap exited {done.tap_exit}:\n{tail(log, 12)}")
    if not everything and arrived.get(UNIFIED):
        problems.append(
            f"{UNIFIED} is not selected by default, yet {len(arrived[UNIFIED])} arrived"
        )
    for stream, found in counts.items():
        if not found.ok:
            problems.append(
                f"{stream}: truth {found.truth}, arrived {found.arrived}, missing "
                f"{found.missing}, unexpected {found.unexpected}; {found.example}"
            )

    record_case(
        target,
        mode,
        data,
        result="FAIL" if problems else "pass",
        streams={stream: found.cell() for stream, found in counts.items()},
        exits=f"{done.tap_exit}/{done.target_exit}",
        seconds=f"{seconds:.1f}",
        reason=failure_reason(problems, done.target_exit, done.target_stderr),
    )
    assert not problems, (
        f"{target.name}, {mode}, {data} data:\n"
        + "\n".join(f"- {problem}" for problem in problems)
        + f"\n--- {target.name} stderr (tail) ---\n{tail(done.target_stderr, 30)}"
    )


def test_reading_back_counts_each_key_once(tmp_path: Path) -> None:
    """The readers: any column naming, a duplicate counts once, a lost row shows as missing."""
    keys = {"configcat_audit_log": ("organizationId", "auditLogId"), "socket_audit_log": ("id",)}
    rows = [("org", 1), ("org", 1), ("org", 2)]  # key 3 never arrived, key 1 arrived twice
    site = Site(scratch=tmp_path)
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.execute("CREATE SCHEMA auditlogs")
        connection.execute(
            "CREATE TABLE auditlogs.configcat_audit_log (organizationid VARCHAR, auditlogid BIGINT)"
        )
        connection.executemany("INSERT INTO auditlogs.configcat_audit_log VALUES (?, ?)", rows)
    with sqlite3.connect(tmp_path / "warehouse.db") as connection:
        connection.execute(
            "CREATE TABLE configcat_audit_log (organization_id TEXT, audit_log_id REAL)"
        )
        connection.executemany("INSERT INTO configcat_audit_log VALUES (?, ?)", rows)
    (tmp_path / "jsonl").mkdir()
    (tmp_path / "jsonl" / "configcat_audit_log.jsonl").write_text(
        "".join(
            json.dumps({"organizationId": o, "auditLogId": i, "x": "\x00"}) + "\n" for o, i in rows
        )
    )
    (tmp_path / "csv").mkdir()
    (tmp_path / "csv" / "configcat_audit_log.csv").write_text(
        "auditLogId,organizationId,details\n" + "".join(f'{i},{o},"a\nb"\n' for o, i in rows)
    )

    expected: set[tuple[str, ...]] = {("org", "1"), ("org", "2"), ("org", "3")}
    for name in ("target-duckdb", "target-sqlite", "target-jsonl", "meltanolabs-target-csv"):
        arrived = TARGETS_BY_NAME[name].read(site, keys)
        assert arrived == {"configcat_audit_log": {("org", "1"), ("org", "2")}}, name
        found = count(expected, arrived["configcat_audit_log"])
        assert (found.truth, found.arrived, found.missing, found.ok) == (3, 2, 1, False), name
