"""The incident lifecycle as a ``transitions`` state machine, compiled once per agreement revision.

One ``Machine`` per revision serves every incident of that revision: for a step the incident's
lifecycle state is copied onto a scratch model, the trigger runs, and the new state is copied
back (a machine per incident would cost ~47 KB and ~1 ms to build). ``auto_transitions=False`` so
no ``to_<state>()`` shortcut can bypass the rules, and callbacks never perform I/O.

States: open -> acknowledged -> resolved -> closed, with reopen back to acknowledged (or open if
never acknowledged). Triggers that only record data (update, status, priority, assign, and a
``notification.acknowledged`` from an on-call tool) are internal transitions, valid while the
incident is not closed. A trigger that does not fit the
current state raises ``Rejected`` with the reason.

The machine has no side effects and its only condition reads ``acknowledged``, so the outcome of
(state, acknowledged, trigger) is memoised: the machine stays the single source of truth while a
step costs a dict lookup instead of ~8 µs of trigger machinery.
"""

from __future__ import annotations

from functools import lru_cache

from transitions import Machine, MachineError

from escalation.core.events import Rejected

STATES = ("open", "acknowledged", "resolved", "closed")
LIVE = ["open", "acknowledged", "resolved"]
TRANSITIONS = (
    {"trigger": "acknowledge", "source": "open", "dest": "acknowledged"},
    {"trigger": "acknowledge", "source": ["acknowledged", "resolved"], "dest": None},
    {"trigger": "resolve", "source": ["open", "acknowledged"], "dest": "resolved"},
    {"trigger": "reopen", "source": "resolved", "dest": "acknowledged", "conditions": "was_acknowledged"},
    {"trigger": "reopen", "source": "resolved", "dest": "open"},
    {"trigger": "close", "source": LIVE, "dest": "closed"},
    {"trigger": "record", "source": LIVE, "dest": None},
)
TRIGGER_OF = {
    "ticket.acknowledged": "acknowledge", "ticket.resolved": "resolve", "ticket.reopened": "reopen",
    "ticket.closed": "close", "ticket.cancelled": "close",
}


_UNKNOWN = object()  # an outcome not memoised yet (None is a memoised "does not apply")


class _Scratch:
    """The one model a machine drives; holds a single incident's state during a step."""

    state: str = "open"
    acknowledged: bool = False

    def was_acknowledged(self) -> bool:
        return self.acknowledged


class Lifecycle:
    def __init__(self, name: str):
        self.name = name
        self._model = _Scratch()
        self._outcomes: dict[tuple[str, bool, str], str | None] = {}
        self.machine = Machine(
            model=self._model, states=list(STATES), transitions=[dict(t) for t in TRANSITIONS],
            initial="open", auto_transitions=False, name=name,
        )

    def fire(self, state: str, acknowledged: bool, event_type: str, ticket: str) -> str:
        """The lifecycle state after ``event_type``; Rejected if the event does not fit."""
        trigger = TRIGGER_OF.get(event_type, "record")
        key = (state, acknowledged, trigger)
        outcome = self._outcomes.get(key, _UNKNOWN)
        if outcome is _UNKNOWN:
            outcome = self._outcomes[key] = self._run(*key)
        if outcome is None:
            raise Rejected(f"{event_type} does not apply to ticket {ticket!r} in state {state!r}")
        return outcome

    def _run(self, state: str, acknowledged: bool, trigger: str) -> str | None:
        model = self._model
        model.state, model.acknowledged = state, acknowledged
        try:
            model.trigger(trigger)
        except MachineError:
            return None
        return model.state

    def describe(self) -> dict:
        """The compiled definition as data, so an agreement change reads as a state-machine diff."""
        return {"name": self.name, "states": list(STATES), "initial": "open",
                "transitions": [dict(t) for t in TRANSITIONS]}


@lru_cache(maxsize=256)
def lifecycle_for(source: str) -> Lifecycle:
    return Lifecycle(source)
