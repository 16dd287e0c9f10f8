"""A strict check of OCSF events against the official OCSF 1.3.0 schema export.

The export is the one ``pydantic-ocsf`` ships (``ocsf/schemas/v1_3_0.json``, a test
dependency pinned in pyproject.toml): the schema's own source (classes under ``events``,
``objects``, the ``dictionary`` of attributes and types), not a compiled view. This module
compiles what a strict consumer checks from it and reports every breach of one event:

* the class (``class_uid`` = category uid x 1000 + class uid), its name, category and
  ``type_uid``/``type_name``; attributes resolved along ``extends`` (objects too), with the
  includes the export names but does not ship (``CLASSIFICATION``, ``OCCURRENCE``) and the
  profiles' attributes only when ``metadata.profiles`` names the profile;
* every ``required`` attribute present, every ``at_least_one``/``just_one`` constraint met,
  no attribute the class or object does not define, no null, no empty object or list;
* types: strings (``string_t`` and the types built on it) within ``max_len`` and matching
  their ``regex`` (``email_t``, ``ip_t``...), integers, ranges, booleans, arrays, objects;
* enums: the value is one of the enum's, and its sibling (``activity_name``, ``type``...)
  is the value's caption (any text for 99 ``Other``, which the schema reserves for it).
"""

from __future__ import annotations

import importlib.util
import json
import re
import typing as t
from functools import cache
from pathlib import Path

VERSION = "1.3.0"

#: ``includes/classification.json`` and ``includes/occurrence.json`` of OCSF 1.3.0 (the
#: export names them in ``base_event`` but does not ship them).
CLASSIFICATION = {
    "activity_id": {"requirement": "required", "enum": {"0": {"caption": "Unknown"}}},
    "activity_name": {"requirement": "optional"},
    "category_uid": {"requirement": "required"},
    "category_name": {"requirement": "optional"},
    "class_uid": {"requirement": "required"},
    "class_name": {"requirement": "optional"},
    "type_uid": {"requirement": "required"},
    "type_name": {"requirement": "optional"},
}
OCCURRENCE = {
    "count": {"requirement": "optional"},
    "duration": {"requirement": "optional"},
    "end_time": {"requirement": "optional"},
    "start_time": {"requirement": "optional"},
    "time": {"requirement": "required"},
    "timezone_offset": {"requirement": "recommended"},
}
INCLUDES: dict[str, dict[str, dict]] = {
    "includes/classification.json": CLASSIFICATION,
    "includes/occurrence.json": OCCURRENCE,
}
#: The attributes of the profiles an event may declare (``metadata.profiles``). A profile
#: not listed here adds nothing, so its attributes are reported as unknown.
PROFILES: dict[str, dict[str, dict]] = {
    "host": {"actor": {"requirement": "optional"}, "device": {"requirement": "recommended"}},
    "cloud": {"cloud": {"requirement": "required"}, "api": {"requirement": "optional"}},
    "osint": {"osint": {"requirement": "required"}},
}
OTHER = "99"


def schema_path() -> Path:
    """The official schema export, from the installed ``pydantic-ocsf`` (not imported)."""
    spec = importlib.util.find_spec("ocsf")
    assert spec is not None, "pydantic-ocsf is missing"
    assert spec.submodule_search_locations, "pydantic-ocsf is missing"
    name = f"v{VERSION.replace('.', '_')}.json"
    return Path(next(iter(spec.submodule_search_locations)), "schemas", name)


@cache
def schema() -> dict[str, t.Any]:
    """The parsed export."""
    return t.cast("dict[str, t.Any]", json.loads(schema_path().read_text()))


def _merge(into: dict[str, dict], attributes: dict[str, t.Any], profiles: set[str]) -> None:
    """Merge one level's attributes (and its includes) over ``into``."""
    for name, spec in attributes.items():
        if name == "$include":
            for path in spec:
                found = INCLUDES.get(path)
                if found is None:
                    profile = path.removeprefix("profiles/").removesuffix(".json")
                    found = PROFILES.get(profile, {}) if profile in profiles else {}
                _merge(into, found, profiles)
            continue
        merged = {**into.get(name, {}), **spec}
        if "enum" in spec and "enum" in into.get(name, {}):
            merged["enum"] = {**into[name]["enum"], **spec["enum"]}
        into[name] = merged


@cache
def _resolved(kind: str, name: str, profiles: frozenset[str]) -> tuple[dict, dict]:
    """(attributes, constraints) of a class (``events``) or object, along ``extends``."""
    chain = []
    entry: dict | None = schema()[kind].get(name)
    while entry is not None:
        chain.append(entry)
        entry = schema()[kind].get(entry["extends"]) if entry.get("extends") else None
    attributes: dict[str, dict] = {}
    constraints: dict[str, list[str]] = {}
    for level in reversed(chain):
        _merge(attributes, level.get("attributes", {}), set(profiles))
        constraints.update(level.get("constraints") or {})
    return attributes, constraints


def event_classes() -> dict[int, tuple[str, str, str, int, str]]:
    """class_uid -> (class name, caption, category caption, category uid, category name)."""
    categories = schema()["categories_meta"]["attributes"]
    found = {}
    for name, entry in schema()["events"].items():
        category, level = None, entry
        while category is None and level is not None:
            category = level.get("category")
            level = schema()["events"].get(level.get("extends", ""))
        if "uid" not in entry and name != "base_event":
            continue  # an abstract parent (iam, application...)
        meta = categories.get(category or "", {"uid": 0, "caption": "Uncategorized"})
        uid = meta["uid"] * 1000 + entry.get("uid", 0)
        found[uid] = (name, entry["caption"], meta["caption"], meta["uid"], category or "other")
    return found


def _type_chain(type_name: str) -> list[dict]:
    """The dictionary type and the types it is built on (``email_t`` -> ``string_t``)."""
    types = schema()["dictionary"]["types"]["attributes"]
    chain = []
    while type_name in types:
        chain.append({"name": type_name, **types[type_name]})
        type_name = types[type_name].get("type", "")
    return chain


def check_event(event: dict[str, t.Any]) -> list[str]:
    """Every breach of the schema in ``event``; [] when a strict consumer accepts it."""
    classes = event_classes()
    uid = event.get("class_uid")
    if uid not in classes:
        return [f"class_uid {uid!r} is no class of OCSF {VERSION}"]
    name, caption, category_caption, category_uid, _ = classes[uid]
    problems: list[str] = []
    profiles = (event.get("metadata") or {}).get("profiles") or []
    attributes, constraints = _resolved("events", name, frozenset(profiles))
    expected = {
        "category_uid": category_uid,
        "class_name": caption,
        "category_name": category_caption,
    }
    for key, value in expected.items():
        if key in event and event[key] != value:
            problems.append(f"{key} is {event[key]!r}, not {value!r}")
    activity = event.get("activity_id")
    if isinstance(activity, int) and event.get("type_uid") != uid * 100 + activity:
        problems.append(f"type_uid {event.get('type_uid')!r} is not class_uid*100+activity_id")
    activities = attributes.get("activity_id", {}).get("enum", {})
    if "type_name" in event and str(activity) in activities:
        label = activities[str(activity)]["caption"]
        names = {f"{caption}: {label}"}
        if str(activity) == OTHER:
            names.add(f"{caption}: {event.get('activity_name')}")
        if event["type_name"] not in names:
            problems.append(f"type_name {event['type_name']!r} is not {sorted(names)}")
    _check_object(event, attributes, constraints, "", problems, frozenset(profiles))
    return problems


def _check_object(
    value: dict[str, t.Any],
    attributes: dict[str, dict],
    constraints: dict[str, list[str]],
    path: str,
    problems: list[str],
    profiles: frozenset[str],
) -> None:
    dictionary = schema()["dictionary"]["attributes"]
    if not value:
        problems.append(f"{path.rstrip('.') or 'the event'}: an empty object")
        return
    present = {key for key, item in value.items() if item is not None}
    for key, spec in attributes.items():
        if spec.get("requirement") == "required" and key not in present:
            problems.append(f"{path}{key}: required, missing")
    for kind, names in constraints.items():
        count = len(present & set(names))
        if (kind == "at_least_one" and count < 1) or (kind == "just_one" and count != 1):
            problems.append(f"{path.rstrip('.') or 'the event'}: {kind} of {names}, has {count}")
    for key, item in value.items():
        where = f"{path}{key}"
        if key not in attributes:
            problems.append(f"{where}: not an attribute here")
            continue
        if item is None:
            problems.append(f"{where}: null (leave it out)")
            continue
        spec = {**dictionary.get(key, {}), **attributes[key]}
        if "enum" in dictionary.get(key, {}) and "enum" in attributes[key]:
            spec["enum"] = {**dictionary[key]["enum"], **attributes[key]["enum"]}
        sibling = spec.get("sibling")
        if "enum" in spec and sibling:
            _check_enum(value, key, spec, path, problems)
        items = item if spec.get("is_array") else [item]
        if spec.get("is_array") and (not isinstance(item, list) or not item):
            problems.append(f"{where}: not a non-empty array")
            continue
        for index, element in enumerate(items):
            at = f"{where}[{index}]" if spec.get("is_array") else where
            _check_value(element, spec, at, problems, profiles)


def _check_enum(
    value: dict[str, t.Any], key: str, spec: dict, path: str, problems: list[str]
) -> None:
    enum = spec["enum"]
    found = value[key]
    if str(found) not in enum or isinstance(found, bool):
        problems.append(f"{path}{key}: {found!r} is not one of {sorted(enum)}")
        return
    sibling = spec["sibling"]
    if sibling not in value:
        return
    caption = enum[str(found)]["caption"]
    if str(found) == OTHER:
        if not isinstance(value[sibling], str) or not value[sibling].strip():
            problems.append(f"{path}{sibling}: needs a text for {key} 99")
    elif value[sibling] != caption:
        problems.append(f"{path}{sibling}: {value[sibling]!r} is not the caption {caption!r}")


def _check_value(
    item: object, spec: dict, where: str, problems: list[str], profiles: frozenset[str]
) -> None:
    type_name = spec.get("type", "")
    if type_name == "object" or type_name == "json_t":
        if type_name == "object" and (not isinstance(item, dict) or not item):
            problems.append(f"{where}: not a non-empty object")
        return
    if type_name in schema()["objects"]:
        if not isinstance(item, dict):
            problems.append(f"{where}: not an object ({type_name})")
            return
        attributes, constraints = _resolved("objects", type_name, profiles)
        _check_object(item, attributes, constraints, f"{where}.", problems, profiles)
        return
    chain = _type_chain(type_name)
    if not chain:
        problems.append(f"{where}: unknown type {type_name!r}")
        return
    base = chain[-1]["name"]
    if base == "string_t":
        if not isinstance(item, str):
            problems.append(f"{where}: not a string ({type_name})")
            return
        for level in chain:
            if "max_len" in level and len(item) > level["max_len"]:
                problems.append(f"{where}: {len(item)} characters, over {level['max_len']}")
            if "regex" in level and not re.search(level["regex"], item):
                problems.append(f"{where}: {item[:60]!r} does not match {type_name}")
    elif base in ("integer_t", "long_t"):
        if not isinstance(item, int) or isinstance(item, bool):
            problems.append(f"{where}: not an integer ({type_name})")
            return
        for level in chain:
            low, high = level.get("range", (item, item))
            if not low <= item <= high:
                problems.append(f"{where}: {item} out of {level['range']}")
    elif base == "float_t":
        if not isinstance(item, (int, float)) or isinstance(item, bool):
            problems.append(f"{where}: not a number")
    elif base == "boolean_t" and not isinstance(item, bool):
        problems.append(f"{where}: not a boolean")
