"""Installable anywhere: what ``python -m build`` makes is all a user needs.

* The wheel alone (no clone, no source tree on the path), in a fresh virtualenv:
  ``tap-auditlogs --about`` reports the version of ``pyproject.toml``, and a sync against the
  emulator emits every event of every provider.
* A new, empty Meltano project (``meltano init``), the extractor added from the Hub
  definition with ``pip_url`` pointed at the wheel and a loader from
  ``meltano-hub/loaders/`` (the commands of docs/install.md), ``meltano run`` into
  target-duckdb: every event arrives once, and the tap's default selection holds.

The wheel and sdist are built once per module (the wheel from the sdist, as ``python -m
build`` does, so the sdist is proven complete too). Dependencies install from uv's download
cache, constrained to ``requirements.lock`` (what the rest of the suite tests); Meltano is
the pinned one of ``tests/test_meltano.py``, from the test cache.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
import typing as t
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest
import yaml

from tap_auditlogs.providers import all_providers
from tests.conftest import REPO, tap_config, uv, venv_commands
from tests.test_meltano import ensure_meltano

if t.TYPE_CHECKING:
    from tests.emulator import Emulator

pytestmark = pytest.mark.slow

#: ``version`` of pyproject.toml, as the project's own install read it.
VERSION = importlib.metadata.version("tap-auditlogs")
EVENTS_PER_ORG = 40
STREAMS = {p.source_class.name: p for p in all_providers()}
INSTALL_DOC = REPO / "docs" / "install.md"
#: The Hub definition's ``select`` (the tap's default selection), which ``--from-ref`` drops.
SELECT = yaml.safe_load((REPO / "meltano-hub" / "tap-auditlogs.yml").read_text())["select"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points into the clone or sets the tap."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("TAP_AUDITLOGS_", "TARGET_", "MELTANO_"))
        and key not in ("VIRTUAL_ENV", "PYTHONPATH")
    }
    return {**env, **extra}


def run(
    command: t.Sequence[str | Path], cwd: Path, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=clean_env(**extra_env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{command}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``python -m build``'s wheel and sdist of this checkout."""
    out = tmp_path_factory.mktemp("dist")
    installer = ["--installer", "uv"] if uv() else []
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    run([sys.executable, "-m", "build", *installer, "--outdir", out, REPO], REPO, PATH=path)
    found = {
        "wheel": list(out.glob(f"tap_auditlogs-{VERSION}-py3-none-any.whl")),
        "sdist": list(out.glob(f"tap_auditlogs-{VERSION}.tar.gz")),
    }
    assert all(len(files) == 1 for files in found.values()), found
    return {kind: files[0] for kind, files in found.items()}


def truth(emu: Emulator) -> dict[str, int]:
    """Events per stream at the emulator."""
    return {name: len(emu.truth(p.key)) for name, p in STREAMS.items()}


def start_date(emu: Emulator) -> str:
    return (emu.scenario.now - timedelta(days=emu.scenario.span_days + 1)).isoformat()


def test_the_wheel_alone_runs_about_and_a_sync(dist, emulator, tmp_path) -> None:
    venv = tmp_path / "venv"
    lock = ["--constraint", str(REPO / "requirements.lock")]
    for command in venv_commands(sys.executable, venv, [*lock, str(dist["wheel"])]):
        run(command, tmp_path)
    work = tmp_path / "elsewhere"  # not the clone: nothing of the source tree is importable
    work.mkdir()
    where = run(
        [venv / "bin" / "python", "-c", "import tap_auditlogs; print(tap_auditlogs.__file__)"], work
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    about = json.loads(
        run([venv / "bin" / "tap-auditlogs", "--about", "--format=json"], work).stdout
    )
    assert (about["name"], about["version"]) == ("tap-auditlogs", VERSION)

    emu = emulator(seed=11, events_per_org=EVENTS_PER_ORG)
    config = work / "config.json"
    config.write_text(json.dumps(tap_config(emu, start_date=start_date(emu))))
    done = run([venv / "bin" / "tap-auditlogs", "--config", config], work)
    messages = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    keys = {name: p.source_class.primary_keys for name, p in STREAMS.items()}
    arrived = {
        name: {
            tuple(m["record"][key] for key in keys[name])
            for m in messages
            if m["type"] == "RECORD" and m["stream"] == name
        }
        for name in STREAMS
    }
    assert {name: len(ids) for name, ids in arrived.items()} == truth(emu)
    assert all(truth(emu).values())
    assert any(m["type"] == "STATE" for m in messages)


def test_meltano_add_from_the_wheel_in_a_new_project(dist, emulator, tmp_path) -> None:
    meltano = ensure_meltano()
    settings = {
        "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        "MELTANO_CLI_DISABLE_VERSION_CHECK": "true",
        "NO_COLOR": "1",
    }
    run([meltano, "init", "project", "--no-usage-stats"], tmp_path, **settings)
    project = tmp_path / "project"
    # docs/install.md: the Hub definition, its pip_url pointed at the wheel
    definition = tmp_path / "tap-auditlogs.yml"
    hub = (REPO / "meltano-hub" / "tap-auditlogs.yml").read_text()
    assert "\npip_url: git+https://github.com/tap-auditlogs/tap-auditlogs.git\n" in hub
    definition.write_text(
        hub.replace(
            "\npip_url: git+https://github.com/tap-auditlogs/tap-auditlogs.git\n",
            f"\npip_url: {dist['wheel']}\n",
        )
    )
    add: list[str | Path] = [meltano, "add", "--no-install"]
    run([*add, "extractor", "tap-auditlogs", "--from-ref", definition], project, **settings)
    loader = REPO / "meltano-hub" / "loaders" / "target-duckdb.yml"
    run([*add, "loader", "target-duckdb", "--from-ref", loader], project, **settings)
    run([meltano, "install"], project, **settings)  # both at once (`meltano add` one by one)

    emu = emulator(seed=12, events_per_org=EVENTS_PER_ORG)
    config = {
        # --from-ref leaves out the definition's `select`: the tap's default selection, set
        ("tap-auditlogs", "_select"): json.dumps(SELECT),
        ("target-duckdb", "filepath"): "${MELTANO_PROJECT_ROOT}/warehouse.duckdb",
        ("target-duckdb", "default_target_schema"): "auditlogs",
    }
    for (plugin, setting), value in config.items():
        run([meltano, "config", "set", plugin, setting, value], project, **settings)
    assert f"_select '{json.dumps(SELECT)}'" in INSTALL_DOC.read_text()
    tap_env = {
        f"TAP_AUDITLOGS_{provider.upper()}_{key.upper()}": str(value)
        for provider, block in emu.tap_config().items()
        for key, value in block.items()
    }
    tap_env["TAP_AUDITLOGS_START_DATE"] = start_date(emu)
    run([meltano, "run", "tap-auditlogs", "target-duckdb"], project, **settings, **tap_env)

    with duckdb.connect(str(project / "warehouse.duckdb"), read_only=True) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'auditlogs'"
        ).fetchall()
        rows = {
            str(name): connection.execute(f"SELECT count(*) FROM auditlogs.{name}").fetchone()
            for (name,) in tables
        }
    assert rows == {name: (count,) for name, count in truth(emu).items()}, (
        "every event once, and only the streams selected by default"
    )
