"""Reading a ServiceNow CSV export record by record, accounting for every physical line.

Invariants (DESIGN.md §10, "nothing lost, nothing crashes"):

- Every physical line of the input ends up in exactly one place: the header, a blank line, a
  record returned as its fields, or one :class:`Problem` naming the line. Bad data never raises;
  only an unusable header (or none at all) raises :class:`ServiceNowImportError`.
- A record that cannot be parsed costs only its *first* line: its other lines are read again as
  records of their own. Why: a stray ``"`` opens a quoted field, and the csv module then swallows
  every line up to the next quote (or the end of the file) into one record; resuming at the next
  line loses one row instead of the rest of the file.
- Memory per record is bounded by :data:`RECORD_LIMIT`, whatever the input.

Limits and rejections (a rejected record is one problem line, ``kind`` in brackets):

- a field longer than :data:`FIELD_LIMIT` (1 MiB = 1,048,576 characters) [field too large];
- a physical line longer than :data:`RECORD_LIMIT` (16 MiB) [line too large];
- quoting that is not RFC 4180: a character after a closing quote, a quoted field never closed
  [broken quoting] (a quote *inside* an unquoted field, ``Cal"ler``, is kept literally, as the
  csv module and spreadsheets do);
- a NUL byte [NUL byte] or invalid UTF-8 [invalid UTF-8] anywhere in the record: neither occurs
  in a text export, and both would corrupt the JSON events or the terminal downstream.
"""

from __future__ import annotations

import csv
import io
import re
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, TextIO

__all__ = ["FIELD_LIMIT", "RECORD_LIMIT", "Problem", "RecordReader", "ServiceNowImportError", "open_source"]

#: Longest field accepted, in characters (1 MiB). ServiceNow's longest text fields (work notes)
#: stay far below; the csv module's own default (128 KiB) rejects legitimate long descriptions.
FIELD_LIMIT = 1 << 20
#: Longest physical line, or multi-line quoted record, in characters (16 MiB): bounds memory.
RECORD_LIMIT = 16 << 20

# NUL, and surrogates: the file is decoded with ``surrogateescape``, so each byte that is not
# UTF-8 becomes one lone surrogate U+DC80..U+DCFF (a text source may carry other lone ones).
_BAD_CHAR = re.compile("[\x00\ud800-\udfff]")


class ServiceNowImportError(ValueError):
    """The input cannot be imported at all (no header, required columns missing, bad zone)."""


@dataclass(frozen=True, slots=True)
class Problem:
    """A CSV line that was not used (a problem) or was used with a repair (a warning)."""

    line: int
    reason: str
    kind: str = field(default="", compare=False)   # reason without values, for statistics

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


class _Line(NamedTuple):
    number: int            # physical line number, 1-based
    text: str              # "" when too_long (the text is not kept)
    too_long: bool


class _TooLong(Exception):
    """A physical line or a multi-line record exceeded RECORD_LIMIT."""


def open_source(path: str | Path) -> TextIO:
    """Open a CSV file for :class:`RecordReader`: a leading BOM is skipped, bad bytes are kept as
    surrogates (reported per record instead of failing the whole file), newlines untranslated."""
    return open(path, encoding="utf-8-sig", errors="surrogateescape", newline="")


def _physical_lines(source: TextIO | Iterable[str]) -> Iterator[_Line]:
    """Number the lines; a line longer than RECORD_LIMIT is read in pieces and not kept."""
    readline = getattr(source, "readline", None)
    if readline is None:        # an iterable of lines: each item is one line
        for number, text in enumerate(source, start=1):
            yield _Line(number, "", True) if len(text) > RECORD_LIMIT else _Line(number, text, False)
        return
    number = 0
    while text := readline(RECORD_LIMIT + 1):
        number += 1
        if len(text) <= RECORD_LIMIT:
            yield _Line(number, text, False)
            continue
        while text and not text.endswith(("\n", "\r")):   # skip the rest of the long line
            text = readline(RECORD_LIMIT)
        yield _Line(number, "", True)


class _LineFeed:
    """The line iterator handed to ``csv.reader``: remembers the lines of the current record and
    can push lines back so they are read again."""

    def __init__(self, lines: Iterator[_Line]):
        self._source = lines
        self._back: deque[_Line] = deque()
        self.taken: list[_Line] = []
        self._chars = 0

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        line = self._back.popleft() if self._back else next(self._source)
        self.taken.append(line)
        self._chars += len(line.text)
        if line.too_long or self._chars > RECORD_LIMIT:
            raise _TooLong
        return line.text

    def start_record(self) -> None:
        self.taken = []
        self._chars = 0

    def push_back(self, lines: list[_Line]) -> None:
        self._back.extendleft(reversed(lines))


@contextmanager
def field_limit(limit: int = FIELD_LIMIT) -> Iterator[None]:
    """Set the csv module's field size limit (process-wide: the module offers nothing per reader)
    for the duration of an import, then restore it."""
    previous = csv.field_size_limit(limit)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


class RecordReader:
    """CSV records with their first line number; see the module docstring for the invariants.

    Use inside :func:`field_limit`. :meth:`header` first, then iterate: each item is
    ``(line, fields)`` for a record of the header's width (or of another width when it spans a
    single line: the row parser reports those), ``(line, [])`` for a blank line, or a
    :class:`Problem`.
    """

    def __init__(self, source: TextIO | Iterable[str]):
        if isinstance(source, str):
            source = io.StringIO(source, newline="")
        self._feed = _LineFeed(_physical_lines(source))
        self._csv = csv.reader(self._feed, strict=True)
        self.columns: list[str] = []

    def header(self) -> list[str]:
        """The header's column names; raises :class:`ServiceNowImportError` when there is none
        usable (empty input, or a header line that is itself a problem)."""
        item = self._read()
        if item is None:
            raise ServiceNowImportError("the input is empty (no header line)")
        if isinstance(item, Problem):
            raise ServiceNowImportError(f"header unreadable: {item}")
        header = item[1]
        if header and header[0].startswith("\ufeff"):   # a text source may still carry the BOM
            header[0] = header[0][1:]
        self.columns = header
        return header

    def __iter__(self) -> Iterator[tuple[int, list[str]] | Problem]:
        while (item := self._read()) is not None:
            yield item

    def _read(self) -> tuple[int, list[str]] | Problem | None:
        """The next record or problem; None at the end of the input."""
        self._feed.start_record()
        try:
            fields = next(self._csv)
        except StopIteration:
            return None
        except csv.Error as err:
            return self._reject(*_csv_reason(str(err)))
        except _TooLong:
            return self._reject("line too large", f"line too large: more than {RECORD_LIMIT:,} characters",
                                f"is not closed within {RECORD_LIMIT:,} characters")
        taken = self._feed.taken
        if len(taken) > 1 and self.columns and len(fields) != len(self.columns):
            return self._reject("broken quoting", "", f"runs to line {taken[-1].number} and leaves "
                                f"{len(fields)} fields (expected {len(self.columns)})")
        # one search per line; the fields are looked at only to name the one at fault
        bad = self._bad_text(fields) if any(_BAD_CHAR.search(line.text) for line in taken) else None
        if bad is not None:
            return Problem(taken[0].number, bad[1], bad[0])
        return taken[0].number, fields

    def _reject(self, kind: str, one_line: str, spanning: str) -> Problem:
        """The current record cannot be parsed. One line: that line is the problem. Several: only
        the first is (the quoted field opened there is broken); the others are read again."""
        taken = self._feed.taken
        first = taken[0].number
        if len(taken) == 1:
            return Problem(first, one_line, kind)
        self._feed.push_back(taken[1:])
        return Problem(first, f"broken quoting: the quoted field opened on this line {spanning}; only "
                       f"this line is rejected, reading resumes at line {first + 1}", "broken quoting")

    def _bad_text(self, fields: list[str]) -> tuple[str, str] | None:
        """(kind, reason) for a NUL byte or invalid UTF-8 in the record, else None."""
        for i, value in enumerate(fields):
            match = _BAD_CHAR.search(value)
            if match is None:
                continue
            where = f"field {i + 1}" + (f" ({self.columns[i]})" if i < len(self.columns) else "")
            char = ord(match.group())
            if char == 0:
                return "NUL byte", f"NUL byte in {where}"
            byte = f"byte 0x{char - 0xDC00:02x}" if 0xDC80 <= char <= 0xDCFF else f"lone surrogate U+{char:04X}"
            return "invalid UTF-8", f"invalid UTF-8 in {where}: {byte}"
        return None


def _csv_reason(message: str) -> tuple[str, str, str]:
    """(kind, reason for one line, reason for a multi-line record) of a ``csv.Error``."""
    if message.startswith("field larger than field limit"):
        return ("field too large", f"field too large: more than {FIELD_LIMIT:,} characters",
                f"exceeds the field limit of {FIELD_LIMIT:,} characters")
    if message == "unexpected end of data":
        return "broken quoting", "broken quoting: a quoted field is not closed", "is never closed"
    return "broken quoting", f"broken quoting: {message}", f"is not closed properly ({message})"
