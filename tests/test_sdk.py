"""The private singer-sdk names the tap relies on: exactly four, all in ``tap_auditlogs/sdk.py``.

Each test below fails with a message that says what an SDK release changed and what in the
tap to update. CI also runs the whole suite against the newest singer-sdk release.
"""

from __future__ import annotations

import ast
import inspect
import logging
import re
from importlib import metadata
from pathlib import Path

import pytest
from singer_sdk import Stream, Tap
from singer_sdk.plugin_base import PluginBase
from singer_sdk.streams import RESTStream

from tap_auditlogs.core.errors import ConfigError
from tap_auditlogs.streams.sdk import QUIET_SDK_LINES
from tap_auditlogs.tap import TapAuditLogs
from tests.emulator import SOCKET_TOKEN

PACKAGE = Path(__file__).resolve().parents[1] / "tap_auditlogs"
SDK_MODULE = PACKAGE / "streams" / "sdk.py"
#: The only private SDK names the tap may use, and only in sdk.py.
ALLOWED = {
    "_write_record_message",
    "_increment_stream_state",
    "_env_var_config",
    "_validate_config",
    "_config",
}
VERSION = metadata.version("singer-sdk")
SDK_IMPORT = re.compile(r"^\s*(?:from|import) (singer_sdk[\w.]*)(?: import ([^\n]+))?", re.M)


def changed(what: str, fix: str) -> str:
    return f"singer-sdk {VERSION}: {what}. Update tap_auditlogs/sdk.py: {fix}"


def parameters(function: object) -> list[str]:
    return list(inspect.signature(function).parameters)  # type: ignore[arg-type]


# 1 -----------------------------------------------------------------------------------------
def test_records_are_written_through_write_record_message() -> None:
    assert parameters(Stream._write_record_message) == ["self", "record"], changed(
        "Stream._write_record_message takes other arguments",
        "touch point 1 (the fast RECORD path) must follow the new signature",
    )
    assert "self._write_record_message(" in inspect.getsource(Stream._sync_records), changed(
        "the sync loop no longer writes records with Stream._write_record_message",
        "touch point 1 is never called; find the method the sync loop uses now",
    )


# 2 -----------------------------------------------------------------------------------------
def test_bookmarks_move_through_increment_stream_state() -> None:
    assert parameters(Stream._increment_stream_state) == [
        "self",
        "latest_record",
        "context",
    ], changed(
        "Stream._increment_stream_state takes other arguments",
        "touch point 2 (bookmarks moved by the strategies only) must follow it",
    )
    assert "self._increment_stream_state(" in inspect.getsource(Stream._sync_records), changed(
        "the sync loop moves bookmarks some other way",
        "touch point 2 no longer stops it; bookmarks could pass events not yet emitted",
    )


# 3 -----------------------------------------------------------------------------------------
def test_environment_settings_come_from_env_var_config(monkeypatch) -> None:
    assert "self._env_var_config" in inspect.getsource(PluginBase.__init__), changed(
        "settings from the environment are no longer read from _env_var_config",
        "touch point 3 (nested TAP_AUDITLOGS_<PROVIDER>_<SETTING> variables)",
    )
    monkeypatch.setenv("TAP_AUDITLOGS_SOCKET_API_TOKEN", SOCKET_TOKEN)
    monkeypatch.setenv("TAP_AUDITLOGS_SOCKET_ORG_SLUGS", '["acme"]')
    tap = TapAuditLogs(config={}, parse_env_config=True)
    socket = dict(tap.config["socket"])
    assert (socket.pop("api_token"), socket.pop("org_slugs")) == (SOCKET_TOKEN, ["acme"])
    assert set(socket) <= {"base_url", "lookback_seconds", "max_requests_per_second"}, socket


# 4 -----------------------------------------------------------------------------------------
def test_settings_are_checked_by_validate_config() -> None:
    assert "self._validate_config(raise_errors=validate_config)" in inspect.getsource(
        PluginBase.__init__
    ), changed(
        "settings are no longer checked by _validate_config(raise_errors=...)",
        "touch point 4 (one clear line per problem) must move to the new check",
    )
    with pytest.raises(ConfigError, match="unknown setting `bogus`"):
        TapAuditLogs(config={"bogus": 1, "socket": {"api_token": SOCKET_TOKEN}})


# 5 -----------------------------------------------------------------------------------------
def test_the_settings_schema_states_every_default_once() -> None:
    """Every default of the settings schema is in ``config`` (the code reads no default of
    its own), as the SDK fills them when it validates, nested provider blocks included."""
    assert "self._config" in inspect.getsource(PluginBase.config.fget), changed(  # type: ignore[attr-defined]
        "PluginBase.config no longer shows _config",
        "touch point 5 (the schema's defaults) must fill the new settings holder",
    )
    tap = TapAuditLogs(config={"socket": {"api_token": SOCKET_TOKEN}})
    schema = tap.config_jsonschema["properties"]
    defaults = {name: prop["default"] for name, prop in schema.items() if "default" in prop}
    assert defaults
    assert {name: tap.config[name] for name in defaults} == defaults
    block = schema["socket"]["properties"]
    socket = {name: prop["default"] for name, prop in block.items() if "default" in prop}
    assert socket
    assert {name: tap.config["socket"][name] for name in socket} == socket


# Not a private name: the SDK lines the tap leaves out -------------------------------------
def test_the_sdk_lines_left_out_are_the_sdks_and_never_shown(caplog) -> None:
    source = inspect.getsource(PluginBase.__init__)
    for line in QUIET_SDK_LINES:
        assert repr(line)[1:-1] in source, changed(
            f"PluginBase.__init__ no longer logs {line!r}",
            "QUIET_SDK_LINES names a line the SDK no longer logs: drop it or use the new one",
        )
    caplog.set_level(logging.DEBUG)
    TapAuditLogs(config={"socket": {"api_token": SOCKET_TOKEN}})
    TapAuditLogs(config={"socket": {"api_token": SOCKET_TOKEN}})  # one filter, not two
    shown = {record.getMessage() for record in caplog.records}
    assert not shown & QUIET_SDK_LINES
    assert len(TapAuditLogs.logger.filters) == len(set(map(type, TapAuditLogs.logger.filters)))


# ------------------------------------------------------------------------- the guard


def sdk_private_names() -> set[str]:
    """Every single-underscore attribute of the SDK classes the tap builds on (class
    attributes and methods, and what their methods set on ``self``)."""
    names: set[str] = set()
    for cls in (Stream, RESTStream, Tap, PluginBase):
        for klass in cls.__mro__:
            if klass.__module__.startswith("singer_sdk"):
                names |= {n for n in vars(klass) if n.startswith("_") and not n.startswith("__")}
                names |= set(re.findall(r"self\.(_[a-z]\w*)", inspect.getsource(klass)))
    return names


def used_names(path: Path) -> set[str]:
    """Attribute and function names a module defines or uses."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            found.add(node.attr)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.add(node.name)
        elif isinstance(node, ast.Name):
            found.add(node.id)
    return found


def test_no_private_sdk_name_outside_sdk_py() -> None:
    private = sdk_private_names()
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        for module, names in SDK_IMPORT.findall(text):
            assert "._" not in module, f"{path.name} imports the private module {module}"
            assert not re.search(r"(^|[ ,(])_\w", names), f"{path.name} imports {names}"
        used = used_names(path) & private
        if path == SDK_MODULE:
            assert used == ALLOWED, f"sdk.py should use exactly {sorted(ALLOWED)}, uses {used}"
        else:
            assert not used, f"{path.name} uses private singer-sdk names {sorted(used)}: sdk.py"
