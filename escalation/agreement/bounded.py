"""Reading untrusted agreement text within fixed bounds (DESIGN.md §10, "Agreement files").

Invariants: :func:`read_yaml` returns round-trip YAML data or raises :class:`Refused` with a
1-based line and a message; it never raises anything else for any input, and its cost is bounded
by the limits below whatever the text holds:

- ``MAX_FILE_BYTES``: larger files are refused before they are read in full;
- the text must be UTF-8 (a leading byte-order mark is skipped) without control characters
  other than tab, newline and carriage return (YAML's own printable set);
- ``MAX_DEPTH`` levels of nesting and ``MAX_NODES`` nodes counted with every alias expanded, both
  checked on each parser event as the composer takes it, *before* that node is composed (so the
  composer's recursion stays shallow) and long before anything is constructed or expanded: an
  alias bomb ("billion laughs") is refused after a few hundred events, in milliseconds;
- merge keys (``<<: *base``) are refused: they copy mappings behind the reader's back and make
  line numbers point at the anchor, not at the clause; write the keys out instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ruamel.yaml import YAML
from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
from ruamel.yaml.error import YAMLError
from ruamel.yaml.parser import RoundTripParser
from ruamel.yaml.events import (
    AliasEvent, CollectionEndEvent, CollectionStartEvent, MappingStartEvent, NodeEvent, ScalarEvent,
)

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 64
MAX_NODES = 10_000

# YAML 1.2 "c-printable" minus NEL (\x85), which line counting would treat as a line break.
_NOT_PRINTABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


class Refused(Exception):
    """The text cannot be read as an agreement; ``line`` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line, self.message = line, message


def decode(data: bytes) -> str:
    """UTF-8 bytes -> text, skipping a BOM; Refused names the line and byte offset of bad bytes."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise Refused(line, f"invalid UTF-8 at byte offset {err.start}: {err.reason}") from None


def check_characters(text: str) -> None:
    """Refuse NUL and other control characters (they hide text from readers and diff tools)."""
    bad = _NOT_PRINTABLE.search(text)
    if bad is not None:
        line = text.count("\n", 0, bad.start()) + 1
        column = bad.start() - (text.rfind("\n", 0, bad.start()) + 1) + 1
        raise Refused(line, f"control character U+{ord(bad.group()):04X} at column {column} is not allowed")


@dataclass
class _Frame:
    """One open collection on the event stream: its anchor, expanded size and height so far."""

    anchor: str | None
    mapping: bool
    size: int = 1
    height: int = 1
    children: int = 0


@dataclass
class _Budget:
    """Running totals over the event stream; ``anchors`` maps a name to (size, height) expanded."""

    stack: list[_Frame] = field(default_factory=list)
    anchors: dict[str, tuple[int, int]] = field(default_factory=dict)
    nodes: int = 0

    def node(self, event: NodeEvent) -> None:
        line = event.start_mark.line + 1
        size, height = self.anchors.get(event.anchor, (1, 1)) if isinstance(event, AliasEvent) else (1, 1)
        if self.stack:
            parent = self.stack[-1]
            if parent.mapping and parent.children % 2 == 0 and _is_merge_key(event):
                raise Refused(line, "merge keys (<<) are not supported; write the keys out")
            parent.children += 1
        if len(self.stack) + height > MAX_DEPTH:
            raise Refused(line, f"nesting deeper than {MAX_DEPTH} levels")
        self.nodes += size
        if self.nodes > MAX_NODES:
            raise Refused(line, f"more than {MAX_NODES} nodes with aliases expanded (an alias bomb?)")
        if isinstance(event, CollectionStartEvent):
            self.stack.append(_Frame(event.anchor, isinstance(event, MappingStartEvent)))
        else:
            self._close(size, height, event.anchor if isinstance(event, ScalarEvent) else None)

    def end(self) -> None:
        frame = self.stack.pop()
        self._close(frame.size, frame.height, frame.anchor)

    def _close(self, size: int, height: int, anchor: str | None) -> None:
        """A node is complete: remember its anchor and grow the enclosing collection."""
        if anchor is not None:
            self.anchors[anchor] = (size, height)
        if self.stack:
            parent = self.stack[-1]
            parent.size += size
            parent.height = max(parent.height, height + 1)


def _is_merge_key(event: NodeEvent) -> bool:
    # Only a plain, untagged "<<" is resolved to the merge tag; a quoted one is an ordinary key.
    return isinstance(event, ScalarEvent) and event.value == "<<" and event.style is None and event.tag is None


class _CheckedParser(RoundTripParser):
    """The round-trip parser, charging every event it hands out to a :class:`_Budget`."""

    def __init__(self, loader) -> None:
        super().__init__(loader)
        self._budget = _Budget()

    def get_event(self):
        event = super().get_event()
        if isinstance(event, NodeEvent):
            self._budget.node(event)
        elif isinstance(event, CollectionEndEvent):
            self._budget.end()
        return event


class _Constructor(RoundTripConstructor):
    """Turns the plain ValueErrors of scalar construction (``2026-02-30``, a 5000-digit integer,
    ``!!float x``) into ConstructorErrors that carry the node's line."""

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as err:
            raise ConstructorError(None, None, str(err), node.start_mark) from None


def read_yaml(text: str | bytes):
    """Bounded, safe round-trip load of one YAML document (see the module invariants)."""
    if isinstance(text, bytes):
        if len(text) > MAX_FILE_BYTES:
            raise Refused(1, f"file is larger than {MAX_FILE_BYTES} bytes")
        text = decode(text)
    check_characters(text.removeprefix("\ufeff"))
    yaml = YAML(typ="rt")
    yaml.Parser, yaml.Constructor = _CheckedParser, _Constructor
    try:
        return yaml.load(text)
    except YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        said = [getattr(err, "context", None), getattr(err, "problem", None)]
        message = ", ".join(str(part) for part in said if part) or str(err)
        raise Refused(mark.line + 1 if mark else 1, f"invalid YAML: {message}") from None
