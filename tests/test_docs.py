"""The docs stay true: the settings table (docs/settings.md), meltano.yml, the Meltano Hub
file and .env.example match the settings schema; the README stays short and leads into docs/,
every link resolves, and nothing in the repository points outside it."""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

from tap_auditlogs.cli.settings import config_schema
from tap_auditlogs.providers import all_providers
from tap_auditlogs.tap import TapAuditLogs
from tests.conftest import REPO

HUB_FILE = REPO / "meltano-hub" / "tap-auditlogs.yml"
#: SDK built-in settings the plugin definitions leave out (the `faker` extra is not installed).
SKIPPED_BUILTINS = {"faker_config"}
#: What the Hub's schemas allow (meltano/hub: schemas/plugin_definitions/extractors.schema.json,
#: common/common.schema.json, common/base_setting.schema.json, hub_metadata.schema.json).
HUB_REQUIRED = {"name", "namespace", "variant", "label"}
HUB_KEYS = HUB_REQUIRED | {
    "pip_url", "description", "executable", "settings", "docs", "repo", "logo_url", "hidden",
    "settings_group_validation", "commands", "capabilities", "metadata", "schema", "select",
    "maintenance_status", "domain_url", "keywords", "requires", "definition", "next_steps",
    "settings_preamble", "usage", "prereq",
}  # fmt: skip
HUB_SETTING_KEYS = {
    "name", "aliases", "label", "value", "placeholder", "kind", "description", "tooltip",
    "documentation", "env", "value_processor", "value_post_processor", "oauth", "options",
    "docs", "hidden", "sensitive",
}  # fmt: skip
HUB_KINDS = {
    "oauth", "hidden", "password", "date_iso8601", "file", "email", "integer", "options",
    "object", "array", "boolean", "string", "decimal",
}  # fmt: skip
HUB_CAPABILITIES = {
    "properties", "catalog", "discover", "state", "about", "stream-maps", "schema-flattening",
    "activate-version", "batch", "test", "log-based", "structured-logging",
}  # fmt: skip


def schema_settings() -> dict[str, dict]:
    """Every setting: provider blocks flattened, plus the SDK's built-in ones."""
    schema = copy.deepcopy(config_schema())
    TapAuditLogs.append_builtin_config(schema)
    blocks = {provider.key for provider in all_providers()}
    found = {}
    for name, prop in schema["properties"].items():
        if name in blocks:
            for sub, sub_schema in prop["properties"].items():
                found[f"{name}.{sub}"] = sub_schema
        elif name not in SKIPPED_BUILTINS:
            found[name] = prop
    return found


def extractor() -> dict:
    return yaml.safe_load((REPO / "meltano.yml").read_text())["plugins"]["extractors"][0]


def hub() -> dict:
    return yaml.safe_load(HUB_FILE.read_text())


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
    assert {"socket.api_token", "flattening_enabled", "stream_maps"} <= set(settings)
    declared = {s["name"]: s for s in extractor()["settings"]}
    assert set(declared) == set(settings)
    for name, schema in settings.items():
        assert bool(declared[name].get("sensitive")) == bool(schema.get("secret")), name
    env = (REPO / ".env.example").read_text()
    for name, schema in settings.items():
        variable = "TAP_AUDITLOGS_" + name.replace(".", "_").upper()
        line = next(line for line in env.splitlines() if f"{variable}=" in line)
        assert ("# secret" in line) == bool(schema.get("secret")), name


def test_hub_file_matches_meltano_yml_and_the_schema() -> None:
    definition, local = hub(), extractor()
    settings = schema_settings()
    hub_settings = {s["name"]: s for s in definition["settings"]}
    assert set(hub_settings) == set(settings)
    assert hub_settings == {s["name"]: s for s in local["settings"]}
    for name, schema in settings.items():
        assert bool(hub_settings[name].get("sensitive")) == bool(schema.get("secret")), name
    secrets = {name for name, s in hub_settings.items() if s.get("sensitive")}
    assert secrets == {
        f"{provider.key}.{prop.name}"
        for provider in all_providers()
        for prop in provider.settings
        if prop.to_dict()[prop.name].get("secret")
    }
    assert len(secrets) >= len(all_providers()), "every provider has a secret credential"
    capabilities = [str(c.value) for c in TapAuditLogs.capabilities]
    assert definition["capabilities"] == local["capabilities"] == capabilities
    assert "test" in capabilities
    # Meltano selects every stream unless told: the tap's streams off by default are excluded.
    placeholder = {p.key: dict.fromkeys(p.required, "placeholder") for p in all_providers()}
    tap = TapAuditLogs(config=placeholder, validate_config=False, setup_mapper=False)
    off = [s.name for s in tap.streams.values() if not s.selected_by_default]
    assert definition["select"] == local["select"] == ["*.*", *(f"!{name}.*" for name in off)]


def test_hub_file_has_the_hub_format() -> None:
    definition = hub()
    assert HUB_REQUIRED <= set(definition) <= HUB_KEYS
    assert definition["name"] == "tap-auditlogs" == TapAuditLogs.name
    assert definition["namespace"] == "tap_auditlogs"
    assert definition["executable"] == "tap-auditlogs"
    assert "meltano_sdk" in definition["keywords"]
    assert set(definition["capabilities"]) <= HUB_CAPABILITIES
    for setting in definition["settings"]:
        assert set(setting) <= HUB_SETTING_KEYS, setting["name"]
        assert setting["kind"] in HUB_KINDS, setting["name"]
        for option in setting.get("options", []):
            assert isinstance(option["value"], str), setting["name"]
    # One alternative per provider: the settings that enable it, each one declared.
    names = {s["name"] for s in definition["settings"]}
    alternatives = definition["settings_group_validation"]
    assert alternatives == [[f"{p.key}.{name}" for name in p.required] for p in all_providers()]
    assert {name for group in alternatives for name in group} <= names
    assert definition["settings_group_validation"] == extractor()["settings_group_validation"]


def test_no_meltano_default_inside_a_provider_block() -> None:
    """Meltano sends every setting's default: a default inside a provider block would make
    every provider look configured without credentials, which the tap rejects."""
    for definition in (extractor(), hub()):
        defaults = [s["name"] for s in definition["settings"] if "." in s["name"] and "value" in s]
        assert defaults == []


README = REPO / "README.md"
#: About 300 lines: the user's path; deep material lives in docs/.
README_MAX_LINES = 320
#: Markdown links to a relative target: ``[text](path#anchor)``.
LINK = re.compile(r"\]\((?!https?://|mailto:)([^)\s]*)\)")


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as ``-``."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a Markdown file's headings (outside code blocks)."""
    found, in_code = set(), False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            found.add(github_anchor(line.lstrip("#")))
    return found


def markdown_files() -> list[Path]:
    """The README and every page in docs/."""
    return [README, *sorted((REPO / "docs").glob("*.md"))]


def test_readme_is_short_and_leads() -> None:
    lines = README.read_text().splitlines()
    assert len(lines) <= README_MAX_LINES, f"README has {len(lines)} lines: move detail to docs/"
    headings = [line[3:] for line in lines if line.startswith("## ")]
    order = ["Install", "Quick start", "Meltano", "Settings", "Exit codes", "Troubleshooting"]
    positions = [next(i for i, h in enumerate(headings) if h.startswith(w)) for w in order]
    assert positions == sorted(positions), headings
    development = README.read_text().split("## Development", 1)[1]
    assert "make test " in development, "`make test` is THE test command (.ci/run calls it)"


def test_every_relative_link_in_the_docs_resolves() -> None:
    broken = []
    for page in markdown_files():
        for target in LINK.findall(page.read_text()):
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.is_relative_to(REPO) or not resolved.exists():
                broken.append(f"{page.name}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{page.name}: {target} (no such heading)")
    assert broken == []


def test_every_docs_page_is_linked_from_the_readme() -> None:
    linked = {
        (REPO / target.partition("#")[0]).resolve() for target in LINK.findall(README.read_text())
    }
    pages = set((REPO / "docs").glob("*.md"))
    assert {page.name for page in pages if page.resolve() not in linked} == set()


def test_the_readme_names_only_settings_that_exist_with_their_defaults() -> None:
    """The README's short table of settings: every name in it is a setting, and every
    default it gives (a number, true/false, none) is the schema's."""
    section = README.read_text().split("## Settings", 1)[1].split("\n## ", 1)[0]
    settings = schema_settings()
    rows = re.findall(r"^\| (`[^|]+`) \|.*\| ([^|]+) \|$", section, re.MULTILINE)
    assert len(rows) >= 5, "the README's settings table is gone"
    for names_cell, defaults_cell in rows:
        names = re.findall(r"`([^`]+)`", names_cell)
        defaults = [d.strip() for d in defaults_cell.split(",")]
        for i, name in enumerate(names):
            matching = [
                schema
                for setting, schema in settings.items()
                if setting == name or f"<provider>.{setting.partition('.')[2]}" == name
            ]
            assert matching, f"the README names {name}, which is no setting"
            shown = defaults[i] if len(defaults) == len(names) else None
            if shown is None or not re.fullmatch(r"none|true|false|[\d.]+", shown):
                continue  # prose ("each provider's own")
            for schema in matching:
                default = schema.get("default")
                expected = "none" if default is None else json.dumps(default)
                assert shown == expected, f"README: {name} defaults to {shown}, schema: {expected}"


def test_nothing_in_the_repository_points_outside_it() -> None:
    """No path outside the repository (a sibling checkout, a workspace) in any tracked file."""
    outside = re.compile("|".join(re.escape(p) for p in ("../" + "shared", "/" + "work/")))
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    hits = []
    for name in filter(None, files):
        path = REPO / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text()
        except UnicodeDecodeError:
            continue
        hits += [f"{name}: {m.group(0)}" for m in outside.finditer(text)]
    assert hits == []


def test_the_readme_shows_every_providers_config_block() -> None:
    """The README's table of providers: one row per provider, its block valid JSON with the
    settings that switch it on, and the optional settings it names real ones."""
    section = README.read_text().split("## Providers", 1)[1].split("\n## ", 1)[0]
    for provider in all_providers():
        row = next(
            (line for line in section.splitlines() if line.startswith(f"| {provider.label} |")),
            None,
        )
        assert row is not None, f"the README's providers table has no row for {provider.label}"
        block = json.loads("{" + re.findall(r"`(\"[^`]+\})`", row)[0] + "}")
        assert set(block) == {provider.key}, row
        assert set(provider.required) <= set(block[provider.key]), row
        known = {f"{provider.key}.{name}" for name in block[provider.key]}
        optional = re.findall(r"`(\w+)`", row.split("optional", 1)[1]) if "optional" in row else []
        known |= {f"{provider.key}.{name}" for name in optional}
        assert known <= set(schema_settings()), row
