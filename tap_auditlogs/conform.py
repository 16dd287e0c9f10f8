"""Every RECORD fits its SCHEMA: fields a vendor adds are kept in ``undeclared_fields``.

Vendors add fields to their audit events without notice. A record that carries a property its
SCHEMA message does not list is dropped silently by most loaders (DuckDB, SQLite, both
PostgreSQL targets) and crashes others (meltanolabs-target-csv). For audit evidence a dropped
field is lost data, so the tap never sends one:

* each provider stream's schema gets one more property, ``undeclared_fields``: a free-form
  object (every target stores it, as JSON or text), and ``additionalProperties: false`` on
  every object whose properties it declares;
* each record moves what its schema does not declare into that object, at the place it had:
  a new top-level field ``risk`` becomes ``{"risk": ...}``, a new key ``email`` of the declared
  object ``actor`` becomes ``{"actor": {"email": ...}}``. Records without such fields (the
  usual case) are left as they are and have no ``undeclared_fields``.

Free-form objects (Socket ``payload``, Torq ``extra_data``) declare no properties: whatever they
hold is declared as "any object", and stays where it is.
"""

from __future__ import annotations

import copy
import typing as t

from singer_sdk import StreamSchema

if t.TYPE_CHECKING:
    from singer_sdk.streams import Stream

UNDECLARED_FIELDS = "undeclared_fields"
UNDECLARED_SCHEMA: dict[str, t.Any] = {
    "type": ["object", "null"],
    "additionalProperties": True,
    "description": (
        "Fields the provider sent that this schema does not declare (added by the vendor "
        "since), kept at their place in the record: a new field `risk` is "
        '{"risk": ...}, a new key of a declared object `actor` is {"actor": {"email": ...}}. '
        "Absent when there are none."
    ),
}

#: Declared properties of an object: name -> the shape of a declared object below it, or
#: None (a scalar, a list or a free-form object: anything below it is declared).
Shape = dict[str, "Shape | None"]


def closed_schema(schema: dict[str, t.Any]) -> dict[str, t.Any]:
    """A copy of a stream schema with ``undeclared_fields`` and closed declared objects."""
    closed = copy.deepcopy(schema)
    _close(closed)
    closed["properties"][UNDECLARED_FIELDS] = dict(UNDECLARED_SCHEMA)
    return closed


def _close(node: dict[str, t.Any]) -> None:
    properties = node.get("properties")
    if not properties:
        return  # free-form: anything goes
    node["additionalProperties"] = False
    for child in properties.values():
        if isinstance(child, dict):
            _close(child)


def shape_of(schema: dict[str, t.Any]) -> Shape:
    """The declared properties of an object schema, nested where objects declare theirs."""
    return {
        name: shape_of(child) if isinstance(child, dict) and child.get("properties") else None
        for name, child in (schema.get("properties") or {}).items()
    }


class FieldSorter:
    """Moves the fields a record's schema does not declare into ``undeclared_fields``."""

    def __init__(self, schema: dict[str, t.Any]) -> None:
        """Learn the declared fields of ``schema`` (``undeclared_fields`` itself excluded:
        a vendor field of that name is undeclared too)."""
        shape = shape_of(schema)
        shape.pop(UNDECLARED_FIELDS, None)
        self._shape = shape
        #: The declared top-level fields.
        self.keys = frozenset(shape)
        self._nested = tuple((name, frozenset(sub)) for name, sub in shape.items() if sub)
        #: True when no declared object declares properties of its own (one check does).
        self.flat = not self._nested

    def __call__(self, record: dict[str, t.Any]) -> dict[str, t.Any]:
        """``record``, changed in place when it carries undeclared fields."""
        if record.keys() <= self.keys:  # the usual case: a set comparison or a few
            for name, keys in self._nested:
                value = record.get(name)
                if isinstance(value, dict) and not value.keys() <= keys:
                    break
            else:
                return record
        undeclared = _split(record, self._shape)
        if undeclared:
            record[UNDECLARED_FIELDS] = undeclared
        return record


def _split(node: dict[str, t.Any], shape: Shape) -> dict[str, t.Any]:
    """Remove the undeclared fields of ``node`` (at any depth) and return them, nested."""
    undeclared: dict[str, t.Any] = {}
    for key in list(node):
        if key not in shape:
            undeclared[key] = node.pop(key)
            continue
        sub = shape[key]
        value = node[key]
        if sub and isinstance(value, dict):
            below = _split(value, sub)
            if below:
                undeclared[key] = below
    return undeclared


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
