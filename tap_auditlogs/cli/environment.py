"""Settings from environment variables (``--config ENV``) and a ``.env`` file.

Read as the SDK reads them, and further: ``TAP_AUDITLOGS_SOCKET_API_TOKEN`` sets
``socket.api_token``, as Meltano writes it (``settings_from_environment``). The ``.env``
file is only the one in the working directory, and a variable set in the environment wins
over it (the SDK searches upward from the installed package and lets the file win). Meltano
passes no file: it reads its project's ``.env`` itself and passes variables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import typing as t
from pathlib import Path

from dotenv import dotenv_values

from tap_auditlogs.core.errors import ConfigError
from tap_auditlogs.providers import all_providers

if t.TYPE_CHECKING:
    from collections.abc import Mapping

logger = logging.getLogger("tap-auditlogs")
#: Values of a boolean setting that mean true (the SDK's).
TRUTHY = ("true", "1", "yes", "on")


def settings_from_environment(schema: dict[str, t.Any], prefix: str) -> dict[str, t.Any]:
    """Settings from ``<prefix>*`` variables (``--config ENV``), provider blocks included.

    As the SDK reads them (lists and objects as JSON, a list also as ``a,b``; booleans
    from true/1/yes/on), and further: ``TAP_AUDITLOGS_SOCKET_API_TOKEN`` sets
    ``socket.api_token``, as in Meltano. A block's own JSON variable still works; single
    variables win over it. A ``.env`` file in the working directory adds the variables the
    environment does not set. A value of the wrong type is a ConfigError naming its variable.
    """
    dotenv = dotenv_file()
    environ = {**_dotenv_variables(dotenv, prefix), **os.environ}
    origin = f" (in {dotenv})" if dotenv else ""
    config = _from_environment(schema, prefix, environ, origin)
    for provider in all_providers():
        block_schema = schema["properties"][provider.key]
        nested = _from_environment(
            block_schema, f"{prefix}{provider.key.upper()}_", environ, origin
        )
        if nested:
            config[provider.key] = {**(config.get(provider.key) or {}), **nested}
    _coerce_numbers(config, schema)
    return config


def dotenv_file() -> Path | None:
    """The ``.env`` file of the working directory, if there is one (never one above it)."""
    path = Path.cwd() / ".env"
    return path if path.is_file() else None


def _dotenv_variables(path: Path | None, prefix: str) -> dict[str, str]:
    """The ``<prefix>*`` variables a ``.env`` file sets (none without a file)."""
    if path is None:
        return {}
    values = dotenv_values(path)
    return {k: v for k, v in values.items() if k.startswith(prefix) and v is not None}


def _from_environment(
    schema: Mapping[str, t.Any], prefix: str, environ: Mapping[str, str], origin: str
) -> dict[str, t.Any]:
    """The properties of ``schema`` set as ``<prefix><NAME>`` variables, typed."""
    found: dict[str, t.Any] = {}
    for name, prop in (schema.get("properties") or {}).items():
        variable = prefix + name.upper().replace("-", "_")
        if variable in environ:
            logger.info("Parsing '%s' config from env variable '%s'.", name, variable)
            try:
                found[name] = _typed(environ[variable], prop)
            except ValueError:
                where = "" if variable in os.environ else origin
                raise ConfigError(
                    f"Environment variable {variable}{where} must be {_kind_of(prop)}."
                ) from None
    return found


def _kind_of(prop: Mapping[str, t.Any]) -> str:
    """What a variable for ``prop`` must hold, in words (never quoting its value)."""
    kinds = prop.get("type") or []
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    for kind, words in (
        ("integer", "an integer"),
        ("number", "a number"),
        ("array", 'a JSON array (e.g. ["a", "b"])'),
        ("object", 'a JSON object (e.g. {"key": "value"})'),
    ):
        if kind in kinds:
            return words
    return "of another type"


def _typed(text: str, prop: Mapping[str, t.Any]) -> t.Any:
    kinds = prop.get("type") or []
    kinds = [kinds] if isinstance(kinds, str) else list(kinds)
    if "integer" in kinds:
        return int(text)
    if "number" in kinds:
        number = float(text)
        if not math.isfinite(number):
            raise ValueError(text)
        return number
    if "boolean" in kinds:
        return text.lower() in TRUTHY
    if "array" in kinds:
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            is_json = text.lstrip().startswith("[")
            if not is_json and (prop.get("items") or {}).get("type") in ("string", ["string"]):
                return text.split(",")  # the SDK's older form, still accepted
            raise
    if "object" in kinds:
        value = json.loads(text)
        if not isinstance(value, dict):
            raise ValueError(text)
        return value
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
