"""Settings from environment variables (``--config ENV``) and a ``.env`` file.

Read as the SDK reads them, and further: ``TAP_AUDITLOGS_SOCKET_API_TOKEN`` sets
``socket.api_token``, as Meltano writes it (``settings_from_environment``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import typing as t

from dotenv import find_dotenv, load_dotenv

from tap_auditlogs.errors import ConfigError
from tap_auditlogs.providers import all_providers

if t.TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger("tap-auditlogs")
#: Values of a boolean setting that mean true (the SDK's).
TRUTHY = ("true", "1", "yes", "on")


def settings_from_environment(schema: dict[str, t.Any], prefix: str) -> dict[str, t.Any]:
    """Settings from ``<prefix>*`` variables (``--config ENV``), provider blocks included.

    As the SDK reads them (a ``.env`` file found above the package is loaded first; lists
    and objects as JSON, a list also as ``a,b``; booleans from true/1/yes/on), and further:
    ``TAP_AUDITLOGS_SOCKET_API_TOKEN`` sets ``socket.api_token``, as in Meltano. A block's
    own JSON variable still works; single variables win over it.
    """
    dotenv_path = find_dotenv()
    if dotenv_path:
        load_dotenv(dotenv_path, override=True)
    try:
        config = _from_environment(schema, prefix)
        for provider in all_providers():
            block_schema = schema["properties"][provider.key]
            nested = _from_environment(block_schema, f"{prefix}{provider.key.upper()}_")
            if nested:
                config[provider.key] = {**(config.get(provider.key) or {}), **nested}
    except ValueError as exc:
        raise ConfigError(
            f"An environment variable {prefix}* has a value of the wrong type ({exc})."
        ) from None
    _coerce_numbers(config, schema)
    return config


def _from_environment(schema: Mapping[str, t.Any], prefix: str) -> dict[str, t.Any]:
    """The properties of ``schema`` set as ``<prefix><NAME>`` variables, typed."""
    found: dict[str, t.Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        variable = prefix + name.upper().replace("-", "_")
        if variable in os.environ:
            logger.info("Parsing '%s' config from env variable '%s'.", name, variable)
            found[name] = _typed(os.environ[variable], prop)
    return found


def _typed(text: str, prop: Mapping[str, t.Any]) -> t.Any:
    kinds = prop.get("type") or []
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if "integer" in kinds:
        return int(text)
    if "boolean" in kinds:
        return text.lower() in TRUTHY
    if "array" in kinds:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            if (prop.get("items") or {}).get("type") in ("string", ["string"]):
                return text.split(",")  # the SDK's older form, still accepted
            raise
    if "object" in kinds:
        return json.loads(text)
    return text


def _coerce_numbers(config: dict[str, t.Any], schema: Mapping[str, t.Any]) -> None:
    """Turn number settings read from the environment (strings) into floats, in place."""
    for key, value in list(config.items()):
        prop = schema.get("properties", {}).get(key, {})
        kinds = prop.get("type", [])
        if isinstance(value, dict):
            _coerce_numbers(value, prop)
        elif isinstance(value, str) and "number" in (kinds if isinstance(kinds, list) else [kinds]):
            with contextlib.suppress(ValueError):  # else validation names the setting
                config[key] = float(value)
