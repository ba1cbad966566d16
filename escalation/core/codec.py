"""One codec for the core's state and internal records: dataclass <-> JSON-ready data.

Every record the engine saves (incident state, SLO state, desk and report state, internal desk
records) goes through this one encoder and decoder instead of a hand-written ``to_dict`` and
``from_dict`` per class. ``@record`` on a dataclass attaches ``to_dict``/``from_dict`` built from
its field annotations, once per class (the per-field converters are precomputed, so encoding a
record is a loop over its fields, not a type inspection).

Rules (the saved form):
- A record is a dict of its fields in declaration order. A field equal to its default is left
  out and reads back as its default, so optional parts (parties, alerts, obligations) cost
  nothing in the tables until they are used, and records saved before a field existed still load.
- ``datetime`` -> ISO 8601 text (offset kept); ``timedelta`` -> integer microseconds;
  ``Decimal`` -> text; ``array`` -> list (its typecode comes from ``Annotated[array, "<code>"]``),
  and so does ``Annotated[bytes, "<code>"]`` (the same machine words packed in immutable bytes);
  ``list``/``tuple``/``dict`` (string keys) and ``X | None`` recurse; nested records recurse;
  anything else (str, int, float, bool, plain JSON data) is kept as it is.
- ``from_dict(to_dict(x)) == x`` for every record (the round-trip tests rely on it).

Pure: no I/O; only the standard library.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from array import array
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal

_US = timedelta(microseconds=1)
_MISSING = dataclasses.MISSING


def _same(value):
    return value


def _copy_json(value):
    """Plain JSON data (``dict``/``list`` without element types) is copied, never shared."""
    if isinstance(value, dict):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _converters(hint) -> tuple[Callable, Callable]:
    """(encode, decode) for one annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Annotated and args[0] is array:
        code = args[1]
        return list, lambda v: array(code, v)
    if origin is typing.Annotated and args[0] is bytes:
        code = args[1]
        return (lambda v: memoryview(v).cast(code).tolist()), (lambda v: array(code, v).tobytes())
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1:
            return _copy_json, _copy_json
        enc, dec = _converters(inner[0])
        return (lambda v: None if v is None else enc(v)), (lambda v: None if v is None else dec(v))
    if origin in (list, tuple) and args:
        enc, dec = _converters(args[0])
        kind = list if origin is list else tuple
        if enc is _same:
            return list, kind
        return (lambda v: [enc(x) for x in v]), (lambda v: kind(dec(x) for x in v))
    if origin is dict and len(args) == 2:
        enc, dec = _converters(args[1])
        if enc is _same:
            return dict, dict
        return (lambda v: {k: enc(x) for k, x in v.items()}), (lambda v: {k: dec(x) for k, x in v.items()})
    if hint is datetime:
        return datetime.isoformat, datetime.fromisoformat
    if hint is timedelta:
        return (lambda v: v // _US), (lambda v: v * _US)
    if hint is Decimal:
        return str, Decimal
    if dataclasses.is_dataclass(hint):
        return (lambda v: v.to_dict()), hint.from_dict
    if hint in (dict, list) or origin in (dict, list):
        return _copy_json, _copy_json
    return _same, _same


def _default(f: dataclasses.Field):
    if f.default is not _MISSING:
        return f.default
    if f.default_factory is not _MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return _MISSING


def record(cls):
    """Give the dataclass ``cls`` a ``to_dict`` and a ``from_dict`` classmethod (see the rules above).

    The converters are built on first use (annotations may name records defined later)."""
    plan: list = []

    def build() -> list:
        if not plan:
            hints = typing.get_type_hints(cls, include_extras=True)
            for f in dataclasses.fields(cls):
                enc, dec = _converters(hints[f.name])
                plan.append((f.name, enc, dec, _default(f)))
        return plan

    def to_dict(self) -> dict:
        out = {}
        for name, enc, _, default in build():
            value = getattr(self, name)
            if value is None or value is default:
                if value is not default:
                    out[name] = None
                continue
            if default is not _MISSING and value == default:
                continue
            out[name] = enc(value)
        return out

    def from_dict(klass, data: dict):
        kwargs = {}
        for name, _, dec, default in build():
            if name in data:
                value = data[name]
                kwargs[name] = None if value is None else dec(value)
            elif default is _MISSING:
                raise KeyError(f"{klass.__name__}: missing field {name!r}")
        return klass(**kwargs)

    cls.to_dict = to_dict
    cls.from_dict = classmethod(from_dict)
    return cls
