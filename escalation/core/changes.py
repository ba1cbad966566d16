"""What a step can change: ``(table, key)`` pairs in ``StepResult.changed``.

The one place these table names live: the engine and its metric side name what they changed with
them, and the live store keeps its tables under the same names, so a step's changes are exactly
the entries a store writes back. Pure data.
"""

#: an incident (or its tombstone) by ticket; a service's SLO streams and states by service; an
#: agreement's report figures by agreement id
INCIDENTS, SERVICES, FIGURES = "incidents", "services", "figures"
