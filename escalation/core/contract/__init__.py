"""Agreements compiled for the hot path: lookup tables per revision, the registry that finds an
event's agreement, term and renewal, and the checks that need the compiled form (feasibility)."""
