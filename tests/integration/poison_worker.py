"""`escalation` with a core that raises on one record: the safety net's real-broker test (test_restart.py).

Run as ``python -m tests.integration.poison_worker run ...`` (the same arguments as ``escalation``).
The core's ``incident.apply_only`` (every ticket event but ``ticket.opened`` goes through it) raises ``ZeroDivisionError`` for any event whose id starts with
``poison``, as a bug in the core would; everything else is the real worker.
"""

from __future__ import annotations

import escalation.core.tickets.incident as incident


def _poisoned(apply_only):
    def apply(compiled, incident, event, *rest):
        if event.id.startswith("poison"):
            raise ZeroDivisionError(f"injected fault for {event.id}")
        return apply_only(compiled, incident, event, *rest)
    return apply


incident.apply_only = _poisoned(incident.apply_only)  # looked up at call time by the core

if __name__ == "__main__":
    from escalation.cli import main

    main()
