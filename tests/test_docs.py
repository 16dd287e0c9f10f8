"""The docs stay true: README settings table, meltano.yml and .env.example match the schema."""

from __future__ import annotations

import subprocess
import sys

import yaml

from tap_auditlogs.tap import config_schema
from tests.conftest import REPO


def schema_settings() -> dict[str, dict]:
    found = {}
    for name, schema in config_schema()["properties"].items():
        for sub, sub_schema in schema.get("properties", {}).items():
            found[f"{name}.{sub}"] = sub_schema
        if "properties" not in schema:
            found[name] = schema
    return found


def test_generated_files_are_fresh() -> None:
    done = subprocess.run(
        [sys.executable, "scripts/update_docs.py", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_meltano_yml_env_example_and_schema_agree() -> None:
    settings = schema_settings()
    meltano = yaml.safe_load((REPO / "meltano.yml").read_text())
    declared = {s["name"]: s for s in meltano["plugins"]["extractors"][0]["settings"]}
    assert set(declared) == set(settings)
    for name, schema in settings.items():
        assert bool(declared[name].get("sensitive")) == bool(schema.get("secret")), name
    env = (REPO / ".env.example").read_text()
    for name, schema in settings.items():
        variable = "TAP_AUDITLOGS_" + name.replace(".", "_").upper()
        line = next(line for line in env.splitlines() if f"{variable}=" in line)
        assert ("# secret" in line) == bool(schema.get("secret")), name
