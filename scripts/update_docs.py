"""Regenerate what is derived from the settings schema, so the docs stay true.

    make docs            (python scripts/update_docs.py [--check])

* README.md: the settings table between the ``settings`` markers, taken from
  ``tap-auditlogs --about --format=markdown``.
* meltano.yml: the extractor's ``settings`` and ``settings_group_validation``.
* .env.example: one line per setting, secrets marked.

``--check`` changes nothing and exits 1 when a file is stale (the tests run it).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import typing as t
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tap_auditlogs.providers import all_providers  # noqa: E402
from tap_auditlogs.tap import config_schema  # noqa: E402

START, END = "<!-- settings:start -->", "<!-- settings:end -->"
KINDS = {"integer": "integer", "number": "decimal", "boolean": "boolean", "array": "array"}


def settings() -> list[tuple[str, dict]]:
    """(dotted name, JSON schema) of every tap setting, nested blocks flattened."""
    found = []
    for name, schema in config_schema()["properties"].items():
        if "object" in _types(schema) and "properties" in schema:
            found += [(f"{name}.{sub}", s) for sub, s in schema["properties"].items()]
        else:
            found.append((name, schema))
    return found


def _types(schema: dict) -> list[str]:
    kind = schema.get("type", "string")
    return kind if isinstance(kind, list) else [kind]


def meltano_setting(name: str, schema: dict) -> dict:
    """One Meltano setting definition."""
    types = [k for k in _types(schema) if k != "null"]
    entry: dict[str, t.Any] = {"name": name, "label": _label(name)}
    if schema.get("format") == "date-time":
        entry["kind"] = "date_iso8601"
    elif schema.get("enum"):
        entry["kind"] = "options"
        entry["options"] = [{"label": str(v), "value": v} for v in schema["enum"]]
    elif types and types[0] in KINDS:
        entry["kind"] = KINDS[types[0]]
    else:
        entry["kind"] = "string"
    if schema.get("secret"):
        entry["sensitive"] = True
    if "default" in schema:
        entry["value"] = schema["default"]
    entry["description"] = schema.get("description", "")
    return entry


def _label(name: str) -> str:
    words = name.replace(".", " ").replace("_", " ").split()
    fixes = {"url": "URL", "id": "ID", "ids": "IDs", "api": "API"}
    return " ".join(fixes.get(w, w.capitalize() if i == 0 else w) for i, w in enumerate(words))


def render_meltano(current: dict) -> dict:
    """meltano.yml with the extractor's settings replaced."""
    extractor = current["plugins"]["extractors"][0]
    extractor["settings"] = [meltano_setting(n, s) for n, s in settings()]
    extractor["settings_group_validation"] = [
        [f"{p.key}.{name}" for name in p.required] for p in all_providers()
    ]
    return current


def render_env() -> str:
    """.env.example."""
    lines = [
        "# Settings as environment variables (tap-auditlogs --config ENV, or Meltano).",
        "# Secrets are marked; never commit a filled-in copy.",
    ]
    for name, schema in settings():
        variable = "TAP_AUDITLOGS_" + name.replace(".", "_").upper()
        note = "  # secret" if schema.get("secret") else ""
        lines.append(f"# {variable}={note}")
    return "\n".join(lines) + "\n"


def render_readme(text: str) -> str:
    """README with the settings table from ``--about --format=markdown``."""
    about = subprocess.run(
        [sys.executable, "-m", "tap_auditlogs", "--about", "--format=markdown"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    ).stdout
    table = about.split("## Settings", 1)[1].split("A full list of supported settings", 1)[0]
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1]
    return f"{before}{START}\n{table.strip()}\n{END}{after}"


def main() -> int:
    """Write (or with --check, compare) the derived files."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    check = parser.parse_args().check
    meltano_path, env_path, readme_path = (
        REPO / "meltano.yml",
        REPO / ".env.example",
        REPO / "README.md",
    )
    meltano = yaml.safe_load(meltano_path.read_text())
    header = meltano_path.read_text().split("\n", 1)[0]
    outputs = {
        meltano_path: header
        + "\n"
        + yaml.safe_dump(render_meltano(meltano), sort_keys=False, width=100),
        env_path: render_env(),
        readme_path: render_readme(readme_path.read_text()),
    }
    stale = [path.name for path, text in outputs.items() if path.read_text() != text]
    if check:
        if stale:
            print(f"Stale: {', '.join(stale)}. Run `make docs`.")
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text)
    print(f"Updated: {', '.join(stale) or 'nothing (all fresh)'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
