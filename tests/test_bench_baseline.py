"""``make bench`` with providers the baseline has no pager for (the two example providers,
registered from outside): it pages them from their declarations (Link header; POST with
the cursor in the body) and writes every event, or skips one it cannot page with a line."""

from __future__ import annotations

import contextlib
import importlib
import io
import os
import subprocess
import sys
import typing as t
from datetime import timedelta
from pathlib import Path

import orjson
import pytest

from tap_auditlogs.providers import all_providers
from tests.conftest import REPO, installed_provider
from tests.emulator.registry import available_providers
from tests.example_post_provider.emulator import ExampleEventsProvider
from tests.example_provider.emulator import ExampleProvider

#: provider key -> (stream, id field)
EXAMPLE_STREAMS = {
    "example": ("example_audit_log", "uuid"),
    "exampleevents": ("example_events", "uuid"),
}
EXAMPLES = {
    ExampleProvider: "tests.example_provider.example_log:PROVIDER",
    ExampleEventsProvider: "tests.example_post_provider.example_events:PROVIDER",
}


@pytest.fixture
def installed(tmp_path: Path) -> t.Iterator[dict[str, str]]:
    """Both example providers installed (the environment of the processes a test starts),
    their APIs served by the emulator."""
    with contextlib.ExitStack() as stack:
        for emulated, entry_point in EXAMPLES.items():
            env = stack.enter_context(
                installed_provider(tmp_path / "site", emulated.name, entry_point, emulated)
            )
        yield env


@pytest.fixture
def bench(installed, monkeypatch) -> t.Iterator[t.Any]:
    """The benchmark's modules, with the example providers known in this process too."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    monkeypatch.syspath_prepend(installed["PYTHONPATH"].split(os.pathsep)[0])
    all_providers.cache_clear()
    try:
        yield importlib.import_module("timed_emulator")
    finally:
        all_providers.cache_clear()
        sys.modules.pop("timed_emulator", None)


def test_the_benchmark_selects_the_examples(bench) -> None:
    names = {stream.provider for stream in bench.select_streams(None)}
    assert names == set(available_providers()), "every provider both know, examples included"


def test_the_baseline_pages_them_from_their_declarations(installed, emulator, tmp_path) -> None:
    """``baseline.py`` as the benchmark runs it: a process of its own, the tap's config."""
    emu = emulator(providers=tuple(EXAMPLE_STREAMS), events_per_org=1500)
    start = emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)
    config = tmp_path / "config.json"
    config.write_bytes(orjson.dumps({**emu.tap_config(), "start_date": start.isoformat()}))
    done = subprocess.run(
        [sys.executable, "benchmarks/baseline.py", "--config", str(config)],
        capture_output=True,
        cwd=REPO,
        env={**os.environ, **installed},
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    messages = [orjson.loads(line) for line in done.stdout.splitlines()]
    for key, (stream, id_field) in EXAMPLE_STREAMS.items():
        emitted = [
            m["record"][id_field]
            for m in messages
            if m["type"] == "RECORD" and m["stream"] == stream
        ]
        assert sorted(emitted) == sorted(e.id for e in emu.truth(key)), key
        assert f"baseline: {stream}: {len(emitted)} records" in done.stderr.decode()
    assert {r.method for r in emu.requests(ExampleEventsProvider.name)} == {"POST"}


def test_a_provider_it_cannot_page_is_skipped_with_one_line(bench, capsys) -> None:
    class Windows:
        name = "time-windows"

    baseline = bench.baseline
    assert not baseline.pages_in_one_pass(Windows())
    assert baseline.pages_in_one_pass(type("Asc", (), {"name": "ascending"})())
    source = type("Source", (), {"provider": "x", "strategy": Windows()})()
    stream = type("Stream", (), {"source": source})()
    tap = type("Tap", (), {"streams": {"x": stream}})
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("tap_auditlogs.tap.TapAuditLogs", lambda config: tap)
        assert baseline.run({"x": {}}, io.BytesIO()) == {}
    (line,) = capsys.readouterr().err.splitlines()
    assert line == "baseline: skipped 'x': no pager, and it is not read in one pass"
