"""The README's quick start works as written.

Its two marked command blocks (``<!-- quickstart:install -->``, ``<!-- quickstart:run -->``):
the install block pins the loader at exactly what the compatibility suite loads with
(``tests/singer_targets.py``), and the run block, run by bash line for line, loads every
event of the emulator into DuckDB, then only what is new on the next runs. The one change to
the block: the providers in its ``config.json`` get the emulator's ``base_url`` and
credentials, as ``make demo`` does. The tap and the loader are the project venv's, whose
versions ``singer_targets.ensure`` checks against the pins.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import yaml

from tap_auditlogs.providers import all_providers
from tests.conftest import REPO, served_id
from tests.emulator import Emulator, Scenario
from tests.singer_targets import TARGETS_BY_NAME, ensure

README = REPO / "README.md"
TARGET = TARGETS_BY_NAME["target-duckdb"]
HEREDOC = re.compile(
    r"^cat > (?P<file>\S+) <<'JSON'\n(?P<body>.*?)\nJSON$", re.MULTILINE | re.DOTALL
)


def quickstart_block(name: str) -> str:
    """The shell code of the README block marked ``<!-- quickstart:<name> -->``."""
    marker = f"<!-- quickstart:{name} -->"
    text = README.read_text()
    assert text.count(marker) == 1, f"README has no single {marker}"
    after = text.split(marker, 1)[1].lstrip("\n")
    assert after.startswith("```bash\n"), f"{marker} is not followed by a bash block"
    return after.removeprefix("```bash\n").split("\n```", 1)[0] + "\n"


def heredocs(script: str) -> dict[str, str]:
    """The files the block writes with ``cat > <file> <<'JSON'``, by name."""
    return {match["file"]: match["body"] for match in HEREDOC.finditer(script)}


def test_the_install_block_pins_what_the_compatibility_suite_loads_with() -> None:
    wanted = f"pip install {' '.join(TARGET.requirements)}"
    lines = [line for line in quickstart_block("install").splitlines() if line.strip()]
    assert lines == [wanted]
    # Meltano's loader in this project is pinned the same way.
    loaders = yaml.safe_load((REPO / "meltano.yml").read_text())["plugins"]["loaders"]
    duckdb_loader = next(loader for loader in loaders if loader["name"] == TARGET.name)
    assert duckdb_loader["pip_url"] == " ".join(TARGET.requirements)


def test_the_run_block_shows_both_configs_and_keeps_the_state() -> None:
    script = quickstart_block("run")
    files = heredocs(script)
    assert set(files) == {"config.json", "target.json"}
    config, target = json.loads(files["config.json"]), json.loads(files["target.json"])
    assert config.get("start_date")
    assert {key for key in config if isinstance(config[key], dict)} <= {
        p.key for p in all_providers()
    }
    assert target.get("filepath")
    assert target.get("default_target_schema")
    assert "--state state.json" in script


def duckdb_rows(database: Path, schema: str, stream: str, key: str) -> tuple[int, set[str]]:
    """(rows, distinct values of ``key``) of ``<schema>.<stream>``."""
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = connection.execute(f'SELECT count(*) FROM "{schema}"."{stream}"').fetchone()
        found = connection.execute(f'SELECT DISTINCT "{key.lower()}" FROM "{schema}"."{stream}"')
        return (rows[0] if rows else 0), {str(row[0]) for row in found.fetchall()}


def test_the_quickstart_runs_as_written(tmp_path: Path) -> None:
    """Three runs of the block: everything, then the new events only, then nothing new
    (7 to 9 s on a busy 2-core machine: not marked slow)."""
    executable = ensure(TARGET)  # the pinned loader, versions checked
    bin_dir = Path(sys.executable).parent
    assert executable.parent == bin_dir
    assert (bin_dir / "tap-auditlogs").exists()
    script = quickstart_block("run")
    files = heredocs(script)
    readme_config = json.loads(files["config.json"])
    target = json.loads(files["target.json"])
    providers = [p for p in all_providers() if isinstance(readme_config.get(p.key), dict)]
    assert providers, "the quick start's config.json configures no provider"
    start = datetime.fromisoformat(readme_config["start_date"].replace("Z", "+00:00"))
    scenario = Scenario(seed=7, events_per_org=600, span_days=20)
    assert scenario.now - timedelta(days=scenario.span_days + 1) > start, (
        "the README's start_date must reach back before every event the emulator holds"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAP_AUDITLOGS_", "VIRTUAL"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    database = tmp_path / target["filepath"]

    with Emulator(scenario) as emu:
        served = emu.tap_config()
        config = {
            **readme_config,
            **{p.key: {**readme_config[p.key], **served[p.key]} for p in providers},
        }
        run = script.replace(files["config.json"], json.dumps(config))

        def run_block(round_: str) -> dict[str, int]:
            """Run the block; the requests it made, by provider."""
            before = {p.key: len(emu.requests(p.key)) for p in providers}
            done = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", run],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=600,
                check=False,
            )
            assert done.returncode == 0, f"{round_}: exit {done.returncode}\n{done.stderr[-3000:]}"
            assert "Connection test passed" in done.stderr, done.stderr[-3000:]
            for provider in providers:
                stream = provider.source_class.name
                key = provider.source_class.primary_keys[-1]
                truth = {served_id(stream, event) for event in emu.truth(provider.key)}
                rows, ids = duckdb_rows(database, target["default_target_schema"], stream, key)
                assert ids == truth, f"{round_}: {stream} missing {sorted(truth - ids)[:5]}"
                assert rows == len(truth), f"{round_}: {stream} has {rows} rows for {len(truth)}"
            state = json.loads((tmp_path / "state.json").read_text())
            assert state.get("bookmarks"), f"{round_}: state.json holds no bookmarks: {state}"
            return {p.key: len(emu.requests(p.key)) - before[p.key] for p in providers}

        calls = [run_block("first run")]
        first_states = len((tmp_path / "states.jsonl").read_text().splitlines())
        for provider in providers:
            organization = emu.truth(provider.key)[-1].org
            emu.add_events(provider.key, organization, 3)
        calls.append(run_block("second run, new events"))
        calls.append(run_block("third run, nothing new"))
        assert len((tmp_path / "states.jsonl").read_text().splitlines()) > first_states
        for provider in providers:  # later runs read only what is new: no backfill again
            made = [round_calls[provider.key] for round_calls in calls]
            assert max(made[1:]) < made[0] / 2, (provider.key, made)
