"""The docs stay true: README settings table, meltano.yml, the Meltano Hub file and
.env.example match the settings schema."""

from __future__ import annotations

import copy
import subprocess
import sys

import yaml

from tap_auditlogs.providers import all_providers
from tap_auditlogs.settings import config_schema
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
