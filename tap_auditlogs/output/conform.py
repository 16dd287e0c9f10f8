"""Every RECORD fits its SCHEMA: what does not fit is kept in ``undeclared_fields``.

Vendors add fields to their audit events without notice, and change a field's type (a
``status_code`` sent as a string, an email as an object, an empty string for a date-time).
A record that breaks its SCHEMA message is dropped silently by most loaders (DuckDB, SQLite,
both PostgreSQL targets), crashes others (meltanolabs-target-csv) or fails a cast to a
timestamp column. For audit evidence a dropped value is lost data, so the tap never sends one:

* each provider stream's schema gets one more property, ``undeclared_fields``: a free-form
  object (every target stores it, as JSON or text), and ``additionalProperties: false`` on
  every object whose properties it declares;
* each record moves what its schema does not declare into that object, at the place it had:
  a new top-level field ``risk`` becomes ``{"risk": ...}``, a new key ``email`` of the declared
  object ``actor`` becomes ``{"actor": {"email": ...}}``;
* a declared field whose value does not fit its declared type (a string for an integer, a
  float for an integer, an object for a string, a string that is not an RFC 3339 date-time
  for ``format: date-time``, an array with an item that does not fit) is emitted as null and
  its value kept as sent, at the same path: ``{"status_code": "200"}``,
  ``{"actor": {"name": {"first": "Ada"}}}``. A declared name under ``undeclared_fields`` thus
  always means "this value did not fit, the field is null"; an undeclared name, "a field the
  vendor added". A field whose schema does not allow null is left out instead of nulled.
  The caller is told of each (``on_drift``), to log one WARNING per stream and field.

Records that fit (the usual case) are left as they are and have no ``undeclared_fields``;
checking them costs one pass over their fields with a class lookup each (``_Object.fits``).
Fields the caller protects (the primary and replication keys: their own checks live with the
reading strategies) are never changed here. Free-form objects (Socket ``payload``, Torq
``extra_data``) declare no properties: whatever they hold is declared as "any object", and
stays where it is.
"""

from __future__ import annotations

import calendar
import copy
import re
import typing as t

from singer_sdk import StreamSchema

if t.TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from singer_sdk.streams import Stream

UNDECLARED_FIELDS = "undeclared_fields"
UNDECLARED_SCHEMA: dict[str, t.Any] = {
    "type": ["object", "null"],
    "additionalProperties": True,
    "description": (
        "Values the provider sent that this schema cannot carry, kept as sent at their place "
        "in the record: a field the vendor added since (a new field `risk` is "
        '{"risk": ...}, a new key of a declared object `actor` is {"actor": {"email": ...}}), '
        "or the value of a declared field whose type did not fit (that field is then null: "
        '`status_code` sent as "200" is {"status_code": "200"}). Absent when there are none.'
    ),
}

#: Told of each declared field whose value did not fit: (path such as ``actor.name``, the
#: declared type, the type seen, the record, the caller's context).
OnDrift = t.Callable[[str, str, str, dict[str, t.Any], t.Any], None]


#: Python class of a decoded JSON value -> its JSON type.
JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}
#: JSON Schema type -> the classes of decoded values that fit it, by exact class: ``True``
#: is not an integer, and neither is ``1.0`` (a loader casting to BIGINT may refuse it).
_CLASSES: dict[str, frozenset[type]] = {
    "string": frozenset({str}),
    "integer": frozenset({int}),
    "number": frozenset({int, float}),
    "boolean": frozenset({bool}),
    "null": frozenset({type(None)}),
    "object": frozenset({dict}),
    "array": frozenset({list}),
}
_ANYTHING = frozenset(JSON_TYPES)
#: Most combinations of field classes ``_Object`` remembers as fitting (a bound on memory).
_MAX_SHAPES = 4096
_DATE_TIME = re.compile(
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])[Tt](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d"
    r"(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)"
)


def is_date_time(text: str) -> bool:
    """True for an RFC 3339 date-time (JSON Schema ``format: date-time``), calendar checked."""
    if _DATE_TIME.fullmatch(text) is None:
        return False
    if text[8:10] <= "28":  # two digits: compared as text, the usual case needs no calendar
        return True
    return int(text[8:10]) <= calendar.monthrange(int(text[:4]), int(text[5:7]))[1]


#: ``format`` -> what a string must pass (other formats are not checked: none is declared).
FORMATS: dict[str, Callable[[str], bool]] = {"date-time": is_date_time}


def closed_schema(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of a stream schema with ``undeclared_fields`` and closed declared objects."""
    closed = copy.deepcopy(schema)
    _close(closed)
    closed["properties"][UNDECLARED_FIELDS] = dict(UNDECLARED_SCHEMA)
    return closed


def _close(node: dict[str, t.Any]) -> None:
    items = node.get("items")
    if isinstance(items, dict):
        _close(items)
    properties = node.get("properties")
    if not properties:
        return  # free-form: anything goes
    node["additionalProperties"] = False
    for child in properties.values():
        if isinstance(child, dict):
            _close(child)


class _Rule:
    """What one declared value accepts: JSON types, a format, declared properties, items."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        declared = schema.get("type")
        names = [declared] if isinstance(declared, str) else list(declared or ())
        known = [name for name in names if name in _CLASSES]
        self.classes = (
            frozenset().union(*(_CLASSES[name] for name in known))
            if known and len(known) == len(names)
            else _ANYTHING
        )
        self.format = str(schema.get("format") or "")
        self.check = FORMATS.get(self.format) if "string" in known else None
        self.nested = _Object(schema) if schema.get("properties") else None
        items = schema.get("items")
        self.items = _Rule(items) if isinstance(items, dict) and items else None
        self.nullable = type(None) in self.classes
        shown = [f"string ({self.format})" if n == "string" and self.format else n for n in names]
        self.declared = " or ".join(shown) or "anything"

    def fits(self, value: object) -> bool:
        """True when ``value`` fits this rule here; a declared object's own properties are
        checked (and sorted) by its ``_Object``, except inside arrays (``fits_whole``)."""
        if value.__class__ not in self.classes:
            return False
        if self.check is not None and value.__class__ is str:
            return self.check(t.cast("str", value))
        if self.items is not None and value.__class__ is list:
            return all(self.items.fits_whole(item) for item in t.cast("list", value))
        return True

    def fits_whole(self, value: object) -> bool:
        """``fits``, and a declared object's properties too (array items: no sorting there)."""
        if not self.fits(value):
            return False
        return self.nested is None or value.__class__ is not dict or self.nested.fits(value)

    def seen(self, value: object) -> str:
        """What ``value`` is, for the warning: its JSON type, and why it does not fit."""
        kind = JSON_TYPES.get(value.__class__, value.__class__.__name__)
        if value.__class__ is str and self.check is not None:
            return f"string {t.cast('str', value)[:40]!r}, not a {self.format}"
        if value.__class__ is list and self.items is not None and value.__class__ in self.classes:
            wrong = next(i for i in t.cast("list", value) if not self.items.fits_whole(i))
            return f"array with an item that does not fit: {self.items.seen(wrong)}"
        if value.__class__ is dict and self.nested is not None and value.__class__ in self.classes:
            return "object with a field that does not fit"
        return kind


class _Object:
    """The declared properties of an object, checked fast and sorted when they do not fit."""

    def __init__(self, schema: dict[str, t.Any], protected: Iterable[str] = ()) -> None:
        rules = {
            name: _Rule(child if isinstance(child, dict) else {})
            for name, child in (schema.get("properties") or {}).items()
        }
        rules.pop(UNDECLARED_FIELDS, None)  # a vendor field of that name is undeclared too
        self.rules = rules
        self.keys = frozenset(rules)
        untouched = frozenset(protected)
        checked = {name: rule for name, rule in rules.items() if name not in untouched}
        self.checked = checked
        #: The checked fields with a type, and the classes each accepts (absent reads as
        #: None here: where None does not fit, ``sort`` looks closer).
        typed = [
            (name, rule.classes) for name, rule in checked.items() if rule.classes != _ANYTHING
        ]
        self._typed_names = tuple(name for name, _ in typed)
        self._typed_classes = tuple(classes for _, classes in typed)
        #: The shapes (keys, and the classes of their values, in order) of the objects seen
        #: to fit: most records of a stream share a few, so ``fits`` needs one set lookup
        #: for the keys and classes, and looks only at formats and nested objects itself.
        self._fitting: set[tuple[tuple[str, ...], tuple[type, ...]]] = set()
        #: Fields with more to check than their class: a format, items, declared properties.
        self._deep = tuple(
            (name, rule)
            for name, rule in checked.items()
            if rule.check is not None or rule.items is not None or rule.nested is not None
        )

    def fits(self, node: dict[str, t.Any]) -> bool:
        """True when every key of ``node`` is declared and every checked value fits."""
        shape = (tuple(node), tuple(map(type, node.values())))
        if shape not in self._fitting:
            if not self._classes_fit(node):
                return False
            if len(self._fitting) < _MAX_SHAPES:
                self._fitting.add(shape)
        get = node.get
        for name, rule in self._deep:
            value = get(name)
            if value is None:
                continue
            if not rule.fits(value):
                return False
            if rule.nested is not None and value.__class__ is dict and not rule.nested.fits(value):
                return False
        return True

    def _classes_fit(self, node: dict[str, t.Any]) -> bool:
        """True when every key of ``node`` is declared and of a class its field accepts."""
        if not node.keys() <= self.keys:
            return False
        kinds = map(type, map(node.get, self._typed_names))
        return all(map(frozenset.__contains__, self._typed_classes, kinds))

    def sort(
        self, node: dict[str, t.Any], path: str, on_drift: Callable[[str, _Rule, t.Any], None]
    ) -> dict[str, t.Any]:
        """Move what does not fit out of ``node`` (at any depth) and return it, nested."""
        kept: dict[str, t.Any] = {}
        for key in list(node):
            rule = self.rules.get(key)
            if rule is None:
                kept[key] = node.pop(key)
                continue
            if key not in self.checked:
                continue  # protected: left as it is
            value = node[key]
            if not rule.fits(value):
                kept[key] = value
                if rule.nullable:
                    node[key] = None
                else:
                    del node[key]
                on_drift(f"{path}{key}", rule, value)
            elif rule.nested is not None and value.__class__ is dict:
                below = rule.nested.sort(value, f"{path}{key}.", on_drift)
                if below:
                    kept[key] = below
        return kept


class FieldSorter:
    """Makes a record fit its schema: undeclared fields and values that do not fit their
    declared type go to ``undeclared_fields`` (module docstring)."""

    def __init__(
        self,
        schema: dict[str, t.Any],
        protected: Iterable[str] = (),
        on_drift: OnDrift | None = None,
    ) -> None:
        """Learn the declared fields of ``schema``; ``protected`` top-level fields are never
        changed; ``on_drift`` is told of each value that did not fit."""
        self._root = _Object(schema, protected)
        #: The declared top-level fields.
        self.keys = self._root.keys
        self._on_drift = on_drift

    def __call__(self, record: dict[str, t.Any], context: object = None) -> dict[str, t.Any]:
        """``record``, changed in place when something in it does not fit."""
        if self._root.fits(record):  # the usual case
            return record

        def drifted(path: str, rule: _Rule, value: object) -> None:
            if self._on_drift is not None:
                self._on_drift(path, rule.declared, rule.seen(value), record, context)

        undeclared = self._root.sort(record, "", drifted)
        if undeclared:
            record[UNDECLARED_FIELDS] = undeclared
        return record


class ClosedStreamSchema(StreamSchema):
    """``StreamSchema`` giving ``closed_schema`` of the loaded schema (once per stream name)."""

    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        """As ``StreamSchema``."""
        super().__init__(*args, **kwargs)
        self._closed: dict[str, dict[str, t.Any]] = {}

    def get_stream_schema(self, stream: Stream, stream_class: type[Stream]) -> dict[str, t.Any]:
        """The schema file of ``stream``, closed."""
        name = stream.name
        if name not in self._closed:
            self._closed[name] = closed_schema(super().get_stream_schema(stream, stream_class))
        return self._closed[name]
