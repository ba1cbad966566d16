"""Table values compressed with a dictionary shipped in the package (issue #11, memory per open incident).

Why: a live worker holds every open incident of its partitions as its stored value between batches
(``escalation/live/frozen.py``), and with the memory store its table holds those very bytes. An open
incident's JSON is ~550-950 B, most of it field names and values that every incident repeats.
Compressing one value alone gains little (too short for the compressor to learn anything); a
dictionary trained on incident values (``bench/train_value_dictionary.py``) makes it ~4.5x
smaller: on 4,000 values of the bench workload held out of the training, 843 -> 188 B, ~6 µs to
compress and ~3.5 µs to expand (``python bench/train_value_dictionary.py --measure``). zlib with
a preset dictionary was measured too: 214 B at ~68 µs per value (the dictionary is hashed again
for every value), so zstd (the ``zstandard`` package, a maintained binding with wheels for the
common platforms). The store compresses; the worker keeps what the store holds, so this is also
what an open incident costs it between batches.

Format of a stored body (what follows the store's ``<p>[ <note>]\\n`` line, ``escalation/live/store.py``):

- JSON (starts with ``{``, ``[``, ``"``, a digit, ``-``, ``t``, ``f`` or ``n``): stored as it is,
  as every value was before this module; such values are read as they are, forever;
- ``b"~1"`` + one zstd frame made with dictionary 1 (``values-1.zdict``; content size written, no
  dictionary id, no checksum: the record's CRC covers it). No JSON text starts with ``~``.

Invariants: ``expand(compress(body)) == body`` for every JSON body; a body shorter than
``MIN_SIZE`` is left as JSON (a short value gains little and costs a call); the dictionary file of
a marker never changes once released (stored values refer to it): a new dictionary gets a new
marker, and the old file stays.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from importlib import resources
from typing import Any

import zstandard

#: the marker of a body compressed with dictionary 1, and that dictionary's file (package data)
MARKER = b"~1"
DICTIONARY = "values-1.zdict"
#: bodies shorter than this stay JSON
MIN_SIZE = 128
#: zstd level: 1 is within ~2 % of level 3's size here, and faster (every changed incident, every batch)
LEVEL = 1


@lru_cache(maxsize=1)
def dictionary() -> zstandard.ZstdCompressionDict:
    """Dictionary 1, read once from the package."""
    data = resources.files("escalation.live").joinpath(DICTIONARY).read_bytes()
    return zstandard.ZstdCompressionDict(data)


class _Contexts(threading.local):
    """A compressor and a decompressor per thread (zstandard's contexts are not thread-safe)."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary(), write_checksum=False,
                                                   write_content_size=True, write_dict_id=False)
        self.decompressor = zstandard.ZstdDecompressor(dict_data=dictionary())


_contexts = _Contexts()


def compress(body: bytes) -> bytes:
    """A JSON body as stored: compressed (``MARKER`` + frame) when at least ``MIN_SIZE`` bytes."""
    if len(body) < MIN_SIZE:
        return body
    return MARKER + _contexts.compressor.compress(body)


def expand(body: Any) -> Any:
    """The JSON of a stored body (bytes or memoryview): itself, or its frame decompressed."""
    if body[:1] != b"~":
        return body
    if bytes(body[:2]) != MARKER:
        raise ValueError(f"stored value compressed with an unknown dictionary: {bytes(body[:2])!r}")
    return _contexts.decompressor.decompress(body[2:])
