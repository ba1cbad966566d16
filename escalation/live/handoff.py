"""The hand-off of each fetched record from Faust's fetcher to its conductor, without four tasks.

Faust 0.15.3's fetcher (``Consumer._drain_messages``) hands every record over with
``await self.wait_first(callback(message), self.suspend_flow.wait())``: mode's ``wait_first``
wraps the callback, the flow-suspension wait and the consumer's stopped and crashed waits in four
tasks, waits for the first, then cancels the other three. For a record whose callback finishes
without waiting (the normal case: the record goes into its stream's queue) that is most of the
fetcher's cost: measured on the embedded broker, the fetcher took ~16 % of the worker's main
thread, most of it in ``wait_first``.

:func:`install` gives the consumer a ``wait_first`` that first runs the callback up to its first
suspension, in the fetcher's own task. Finished there: its result is returned as ``wait_first``
would have (its exception raised), and the unused flow-suspension wait is closed. Suspended (a
full queue, flow control, a producer buffer to drain): the rest of the callback continues under
mode's own ``wait_first``, which then races it against the flow suspension and the consumer's
stop exactly as before. Any other call shape, or a consumer already suspended, stopped or crashed,
goes straight to mode's ``wait_first``.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections.abc import Coroutine, Generator
from typing import Any

log = logging.getLogger(__name__)


@types.coroutine
def _resume(coro: Coroutine, yielded: Any) -> Generator[Any, Any, Any]:
    """The rest of ``coro``, which has just yielded ``yielded`` (what ``yield from`` does)."""
    while True:
        try:
            sent = yield yielded
        except BaseException as exc:  # noqa: BLE001 - thrown in by the task driving us: pass it on
            try:
                yielded = coro.throw(exc)
            except StopIteration as stop:
                return stop.value
        else:
            try:
                yielded = coro.send(sent)
            except StopIteration as stop:
                return stop.value


def install(consumer: Any) -> bool:
    """Give ``consumer`` (Faust 0.15.3) the fast hand-off (see the module docstring); once."""
    if getattr(consumer, "_escalation_handoff", False):
        return True
    try:
        from mode.services import WaitResults

        original = consumer.wait_first
        flags = (consumer.suspend_flow, consumer._stopped, consumer._crashed)
    except Exception:  # speed only; never stop the worker for it
        log.debug("could not install the fast record hand-off", exc_info=True)
        return False

    async def wait_first(*coros: Any, timeout: Any = None) -> Any:
        if (timeout is not None or len(coros) != 2 or not all(asyncio.iscoroutine(c) for c in coros)
                or any(flag.is_set() for flag in flags)):
            return await original(*coros, timeout=timeout)
        callback, other = coros
        try:
            yielded = callback.send(None)
        except StopIteration as stop:
            other.close()
            return WaitResults([callback], [stop.value], False)
        except BaseException:
            other.close()
            raise
        return await original(asyncio.ensure_future(_resume(callback, yielded)), other)

    consumer.wait_first = wait_first
    consumer._escalation_handoff = True
    return True
