"""Read-ahead (``concurrency`` > 1): partitions fetched side by side, emitted in order.

The promise: the output of a run that reads ahead is the output of a one-at-a-time run
(same records, same STATE messages, same order), only sooner; requests stay within each
provider's rate limit; a provider failing as a whole stops its other workers.
Kills under read-ahead are covered by the chaos tests (each run picks a concurrency).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from datetime import timedelta

import pytest

from tap_auditlogs.cli.command import SIGNAL_EXIT_DEADLINE_S
from tap_auditlogs.core.instants import format_instant, instant_from_datetime
from tap_auditlogs.engine import read_ahead
from tap_auditlogs.engine.handover import RECORDS, STATE, Channel, MemoryBudget
from tap_auditlogs.http.ratelimit import RateLimiter
from tap_auditlogs.providers import all_providers
from tap_auditlogs.providers.socketdev.log import SocketAuditLog
from tests.conftest import TAP_COMMAND, TapRun, parse_lines, run_tap, run_tap_cli, tap_config
from tests.emulator import QuotaRule
from tests.emulator.configcat import ORG_IDS as CONFIGCAT_ORGS

SOCKET_ORGS = ("acme", "globex", "initech", "umbrella")
#: Each stream's own id (the last primary key), from the registry.
KEYS = {p.source_class.name: p.source_class.primary_keys[-1] for p in all_providers()}
STREAM_OF = {p.key: p.source_class.name for p in all_providers()}


def outline(run: TapRun) -> list[tuple]:
    """The run's messages as (type, stream, id): what must not depend on concurrency."""
    shape: list[tuple] = []
    for message in run.messages:
        if message["type"] == "RECORD":
            stream = message["stream"]
            key = KEYS.get(stream)
            shape.append(("RECORD", stream, str(message["record"].get(key)) if key else None))
        else:
            shape.append((message["type"], message.get("stream")))
    return shape


def four_providers(emulator, **scenario):
    options = {
        "seed": 31,
        "socket_orgs": SOCKET_ORGS,
        "configcat_orgs": CONFIGCAT_ORGS[:3],
        "events_per_org": 260,
        "span_days": 20,
        **scenario,
    }
    return emulator(**options)


def start_of(emu) -> str:
    """A start_date before every event of the scenario."""
    days = float(emu.scenario.span_days) + 1
    return format_instant(instant_from_datetime(emu.scenario.now - timedelta(days=days)))


@pytest.mark.parametrize("budget", [None, 40])
def test_reading_ahead_writes_exactly_what_a_sequential_run_writes(
    emulator, monkeypatch, budget: int | None
) -> None:
    """Same records, same STATE positions, same final bookmarks; with a tiny memory
    budget (40 records) most pages wait in temporary files, and nothing changes."""
    if budget is not None:
        monkeypatch.setattr(read_ahead, "MEMORY_BUDGET_RECORDS", budget)
    emu = four_providers(emulator, latency_s=0.005)
    start = start_of(emu)
    sequential = run_tap(tap_config(emu, start_date=start, concurrency=1))
    ahead = run_tap(tap_config(emu, start_date=start, concurrency=8))
    assert sequential.exit_code == ahead.exit_code == 0
    assert len(sequential.records()) == sum(len(emu.truth(p)) for p in emu.providers)
    assert outline(ahead) == outline(sequential)
    for stream in ("socket_audit_log", "torq_audit_log", "nirvana_audit_log"):
        # ConfigCat's bookmarks are window ends, taken from each run's start time.
        before = sequential.final_state["bookmarks"][stream]  # type: ignore[index]
        after = ahead.final_state["bookmarks"][stream]  # type: ignore[index]
        assert after == before


def test_the_organizations_are_fetched_side_by_side(emulator) -> None:
    emu = emulator(
        providers=("socket",), seed=32, socket_orgs=SOCKET_ORGS, events_per_org=350,
        latency_s=0.03,
    )  # fmt: skip
    run = run_tap(tap_config(emu, concurrency=4))
    assert run.exit_code == 0
    assert len(run.records()) == 4 * 350
    pages = [r.org for r in emu.requests("socket") if r.path.endswith("/audit-log")]
    assert len(pages) == 4 * 4  # 4 pages of 100 per organization, each fetched once
    first_of = {org: pages.index(org) for org in SOCKET_ORGS}
    last_of = {org: len(pages) - 1 - pages[::-1].index(org) for org in SOCKET_ORGS}
    assert all(first_of[org] < last_of["acme"] for org in SOCKET_ORGS), pages
    # ... and emitted one organization after another, as a sequential run does.
    orgs = [r["org_slug"] for r in run.records("socket_audit_log")]
    assert orgs == sorted(orgs)


def test_one_request_proves_the_credentials_before_the_workers_fan_out(emulator) -> None:
    emu = emulator(providers=("socket",), seed=33, socket_orgs=SOCKET_ORGS)
    config = tap_config(emu, concurrency=8, socket={"api_token": "wrong-token-1234"})
    run = run_tap_cli(config)
    assert run.exit_code == 1
    assert len(emu.requests("socket")) == 1, "the first refusal stops the provider"
    assert run.stderr.count("credentials were refused") == 2  # the warning, the summary


@pytest.mark.parametrize("concurrency", [1, 8])
def test_a_failed_stream_never_says_done_nor_succeeded(emulator, concurrency: int) -> None:
    """Sequential or side by side (one path): a provider that fails logs its failure, never
    "done", and its sync METRIC says failed; the other provider's says succeeded."""
    emu = emulator(providers=("socket", "nirvana"), seed=35, socket_orgs=SOCKET_ORGS[:2])
    config = tap_config(emu, concurrency=concurrency, socket={"api_token": "wrong-token-1234"})
    run = run_tap_cli(config)
    assert run.exit_code == 1
    lines = run.stderr.splitlines()
    assert not [line for line in lines if "Socket" in line and ": done," in line]
    assert [line for line in lines if "Nirvana" in line and ": done," in line]
    statuses = {
        (metric["tags"]["stream"], metric["tags"]["status"])
        for line in lines
        if '"sync_duration"' in line
        for metric in [json.loads(line.split("METRIC: ", 1)[1])]
    }
    assert ("socket_audit_log", "failed") in statuses
    assert ("socket_audit_log", "succeeded") not in statuses
    assert ("nirvana_audit_log", "succeeded") in statuses


def test_a_quota_hit_by_one_worker_stops_them_all_and_the_next_runs_finish(emulator) -> None:
    emu = emulator(
        providers=("socket",), seed=34, socket_orgs=SOCKET_ORGS, events_per_org=900,
        latency_s=0.01, quota={"socket": QuotaRule(calls_per_window=14, window_s=3600)},
    )  # fmt: skip
    config = tap_config(emu, concurrency=8, max_retry_wait=5)
    emitted: list[str] = []
    state = None
    for _ in range(8):
        emu.reset_requests()
        run = run_tap(config, state)
        emitted += run.ids("socket_audit_log", "event_id")
        state = run.final_state or state
        refused = [r for r in emu.requests("socket") if r.status == 429]
        assert len(refused) <= 4, "workers stop at the first refusal, not one each"
        if run.exit_code == 0:
            break
        assert run.exit_code == 3
        emu.reset_quota("socket")
    assert run.exit_code == 0
    truth = {e.id for e in emu.truth("socket")}
    assert truth - set(emitted) == set(), "no event lost"


def test_a_bug_in_a_worker_is_raised_in_the_main_thread(emulator, monkeypatch) -> None:
    emu = emulator(providers=("socket",), seed=35, socket_orgs=SOCKET_ORGS)
    original = SocketAuditLog.id_of

    def broken(self, record):
        if threading.current_thread() is not threading.main_thread():
            raise RuntimeError("a bug")
        return original(self, record)

    monkeypatch.setattr(SocketAuditLog, "id_of", broken)
    with pytest.raises(RuntimeError, match="a bug"):
        run_tap(tap_config(emu, concurrency=8))


def test_the_rate_limit_holds_across_workers(emulator) -> None:
    """ConfigCat documents no limit; one set in the settings holds for all its workers."""
    emu = emulator(
        providers=("configcat",), seed=36, configcat_orgs=CONFIGCAT_ORGS,
        events_per_org=300, span_days=20, rate_limits={"configcat": (10, 1.0)},
    )  # fmt: skip
    config = tap_config(
        emu,
        start_date=start_of(emu),
        concurrency=8,
        configcat={"max_requests_per_second": 10, "window_days": 2},
    )
    run = run_tap(config)
    assert run.exit_code == 0
    assert len(run.records()) == 3 * 300
    assert len(emu.requests("configcat")) > 20, "enough requests to hit the limit"
    assert not [r for r in emu.requests("configcat") if r.fault == "rate_limit"]
    assert emu.peak_requests("configcat", 1.0) <= 10


# ------------------------------------------------------------------------- the parts


def test_rate_limiter_never_lets_more_than_the_limit_through_any_window() -> None:
    limiter = RateLimiter(5, 0.2)
    sent: list[float] = []
    lock = threading.Lock()

    def client() -> None:
        for _ in range(6):
            place = limiter.acquire()
            with lock:
                sent.append(time.monotonic())
            time.sleep(random.uniform(0, 0.02))  # the request takes a while...
            limiter.release(place)  # ... and counts from its answer

    threads = [threading.Thread(target=client) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sent.sort()
    assert len(sent) == 24
    window = 0.2
    for i, at in enumerate(sent):
        assert sum(1 for other in sent[i:] if other < at + window) <= 5


def test_channel_keeps_the_order_across_memory_and_file() -> None:
    budget = MemoryBudget(10)
    channel = Channel(budget)
    rng = random.Random(1)
    sent = []
    for i in range(60):
        if rng.random() < 0.3:
            event = (STATE, {"replication_key_value": str(i)})
        else:
            event = (RECORDS, [{"id": f"{i}-{n}"} for n in range(rng.randint(1, 6))])
        channel.put(*event)
        sent.append(event)
    channel.close()
    got = list(channel.events(before_waiting=lambda: None))
    assert [(k, p) for k, p in got] == sent
    assert budget.free == 10, "every record held in memory was given back"
    assert channel._file is None, "the temporary file is gone"


def test_channel_hands_over_while_the_worker_still_writes() -> None:
    channel = Channel(MemoryBudget(5))
    waits = []

    def worker() -> None:
        for i in range(30):
            channel.put(RECORDS, [{"id": i}])
            time.sleep(0.001)
        channel.close(ValueError("the end"))

    thread = threading.Thread(target=worker)
    thread.start()
    ids = [p[0]["id"] for k, p in channel.events(before_waiting=lambda: waits.append(1))]
    thread.join()
    assert ids == list(range(30))
    assert isinstance(channel.error, ValueError)
    assert waits, "the main thread flushed its output before waiting"


@pytest.mark.parametrize(
    ("provider", "events", "upper_param"),
    [("torq", 30_000, "end_time"), ("nirvana", 6_000, "created_at_max")],
)
def test_a_long_ascending_read_is_split_into_ranges_at_almost_no_extra_cost(
    emulator, provider: str, events: int, upper_param: str
) -> None:
    """Torq (documented sort and bound) and Nirvana (once its first page proves them):
    the rest of a long read is fetched as time ranges side by side, and emitted oldest
    first exactly as one chain would, for at most 2% more requests."""
    emu = emulator(providers=(provider,), seed=37, events_per_org=events, span_days=30,
                   latency_s=0.03)  # fmt: skip
    start = start_of(emu)
    sequential = run_tap(tap_config(emu, start_date=start, concurrency=1))
    one_chain = len(emu.requests(provider))
    emu.reset_requests()
    ahead = run_tap(tap_config(emu, start_date=start, concurrency=8))
    requests = emu.requests(provider)
    assert ahead.exit_code == sequential.exit_code == 0
    # The same records in the same order; a range's last page is one more checkpoint.
    records = [m for m in outline(ahead) if m[0] == "RECORD"]
    assert records == [m for m in outline(sequential) if m[0] == "RECORD"]
    assert len(records) == events
    assert ahead.final_state == sequential.final_state
    ranged = [r for r in requests if upper_param in r.query]
    assert ranged, "the read was split"
    assert len(requests) <= one_chain * 1.02 + 1


def test_a_fast_api_is_read_as_one_chain(emulator, monkeypatch) -> None:
    """Without latency to hide, ranges would only cost threads and requests. "Fast" is the
    threshold's business, not this machine's load: a first page under a second counts."""
    monkeypatch.setattr(read_ahead, "SPLIT_MIN_LATENCY_S", 1.0)
    emu = emulator(providers=("torq",), seed=37, events_per_org=30_000, span_days=30)
    config = tap_config(emu, start_date=start_of(emu))
    run_tap({**config, "concurrency": 1})  # the emulator sorts its view once: not latency
    emu.reset_requests()
    run = run_tap({**config, "concurrency": 8})
    assert len(run.records()) == 30_000
    assert not [r for r in emu.requests("torq") if "end_time" in r.query]


def test_a_kill_while_ranges_are_read_ahead_loses_nothing(emulator) -> None:
    emu = emulator(providers=("torq",), seed=38, events_per_org=30_000, span_days=30,
                   latency_s=0.03)  # fmt: skip
    config = tap_config(emu, start_date=start_of(emu), concurrency=8)
    truth = {e.id for e in emu.truth("torq")}
    emitted: list[str] = []
    state = None
    for kill in (9_000, 21_000, None):
        run = run_tap_cli(config, state, kill_after_records=kill)
        emitted += run.ids("torq_audit_log", "id")
        state = run.final_state or state
    assert run.exit_code == 0
    assert truth - set(emitted) == set(), "no event lost"
    assert len(emitted) - len(truth) <= 2 * 500, "at most a page re-read per kill"


@pytest.mark.parametrize("concurrency", [1, 8])
def test_sigterm_from_a_caller_that_stopped_reading_still_ends_the_run(
    emulator, tmp_path, concurrency: int
) -> None:
    """``meltano config test`` reads the tap's output (stderr merged into it) up to the
    first RECORD, sends SIGTERM and waits for the exit without reading on. The tap's last
    writes then meet a full pipe: it must still exit, within its deadline."""
    emu = emulator(seed=40, socket_orgs=SOCKET_ORGS, events_per_org=3000)
    config = tap_config(emu, start_date=start_of(emu), concurrency=concurrency)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [*TAP_COMMAND, "--config", str(config_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if b'"type":"RECORD"' in line:
                break
        time.sleep(1.0)  # the tap fills the pipe and blocks on its next write
        process.send_signal(signal.SIGTERM)
        started = time.monotonic()
        process.wait(timeout=SIGNAL_EXIT_DEADLINE_S + 20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 128 + signal.SIGTERM
    assert time.monotonic() - started < SIGNAL_EXIT_DEADLINE_S + 5


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_while_reading_ahead_saves_the_state_and_exits_non_zero(
    emulator, tmp_path, signum: int
) -> None:
    """An orchestrator stopping the run: the last line is a STATE covering what was
    emitted, the exit code says it was stopped (128 + signal), and a resume finishes."""
    emu = emulator(seed=39, socket_orgs=SOCKET_ORGS, events_per_org=2000, latency_s=0.2)
    config = tap_config(emu, start_date=start_of(emu), concurrency=8)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    with (tmp_path / "out.jsonl").open("wb") as out:
        process = subprocess.Popen(
            [*TAP_COMMAND, "--config", str(config_path)], stdout=out, stderr=subprocess.PIPE
        )
        # Signal once the tap is reading (its first RECORD is out, so its handlers are
        # installed); on a loaded machine start-up alone can take seconds.
        deadline = time.monotonic() + 60
        while b'"RECORD"' not in (tmp_path / "out.jsonl").read_bytes():
            assert time.monotonic() < deadline, "the tap wrote no RECORD within 60 s"
            assert process.poll() is None, "the tap ended before it was signalled"
            time.sleep(0.05)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 128 + signum
    assert "Traceback" not in stderr.decode()
    assert f"Stopped by {signal.Signals(signum).name}" in stderr.decode()
    stopped = TapRun(parse_lines((tmp_path / "out.jsonl").read_text()), process.returncode)
    assert stopped.messages[-1]["type"] == "STATE"
    assert len(stopped.records()) < sum(len(emu.truth(p)) for p in emu.providers)
    emu.configure(latency_s=0.0)
    resumed = run_tap(config, stopped.final_state)
    assert resumed.exit_code == 0
    for provider in emu.providers:
        stream = STREAM_OF[provider]
        truth = {e.id for e in emu.truth(provider)}
        emitted = {str(r[KEYS[stream]]) for run in (stopped, resumed) for r in run.records(stream)}
        assert truth - emitted == set(), f"{stream}: no event lost"
