"""The pure core (DESIGN.md §2): every input enters through ``engine.Engine.step``.

No I/O, no wall clock, no randomness (``tests/unit/test_core_purity.py``); imports nothing from
escalation outside ``core`` and ``agreement`` (``tests/unit/test_architecture.py``).

- ``engine``: ``Engine.step(input) -> StepResult``, the one entry point; ``scheduler``: the keyed
  due-instant heap behind deadlines and closes; ``marks``: how far each source has fired.
- ``events``: input records and their strict decoding; ``outputs``: ``OutputType`` and the typed
  ``Output`` record (a CloudEvent only at the edge); ``codec``: the one state codec.
- ``contract/``: agreements compiled for the hot path, the registry, term and feasibility.
- ``time/``: calendars (counted time), periods, maintenance windows.
- ``tickets/``: one incident's clocks, lifecycle, alerts, parties and what they say.
- ``services/``: SLOs over metric slices, burn rates, credits due.
- ``money/``: penalties and credits assessed against caps, earn-back, the desk.
- ``reporting/``: period report figures, ticket objectives, "breach wins, else met".
"""
