"""The set of loaded agreement revisions and how an event finds its agreement.

Invariants: an incident opens under the highest revision of its agreement that is valid on the
opening day (agreement time zone) and stays pinned to it; the highest loaded revision of an
agreement with ``validity.renewal`` is valid on every day from its start (:meth:`Registry.renews`:
its term renews past ``end`` unless terminated, and a termination is known at the desk only),
every other revision on its written days; a later revision never changes a
running incident. ``agreement`` on the event wins; otherwise ``customer`` + ``service`` must match
exactly one agreement id. :meth:`Registry.merge` adds revisions in place (live reload) and never
drops or replaces a loaded one, so every pinned incident still finds its revision.
"""

from __future__ import annotations

from collections.abc import Iterable

from escalation.agreement.models import Agreement
from escalation.core.contract.compiled import CompiledAgreement, compile_agreement
from escalation.core.events import Rejected, TicketOpened, as_written


def check_priority(compiled: CompiledAgreement, priority: str) -> None:
    """Rejected unless ``priority`` is one of the agreement's (an opening or a priority change)."""
    known = compiled.agreement.priorities
    if priority not in known:
        raise Rejected(f"unknown priority {priority!r} for agreement {compiled.id} (known: {', '.join(known)})")


class Registry:
    def __init__(self, agreements: Iterable[Agreement]):
        self._revisions: dict[str, dict[int, CompiledAgreement]] = {}
        self.generation = 0  # moves with every merge that adds a revision (caches key on it)
        for agreement in agreements:
            self._revisions.setdefault(agreement.id, {})[agreement.revision] = compile_agreement(agreement)

    def merge(self, agreements: Iterable[Agreement]) -> list[tuple[str, int]]:
        """Add the revisions not loaded yet, in place; returns the ``(id, revision)`` pairs added.

        A revision already loaded is kept as it is (never replaced or removed). All new revisions
        are compiled before any is added, so a failing compile leaves the registry unchanged.
        """
        new = {}
        for agreement in agreements:
            key = (agreement.id, agreement.revision)
            if agreement.revision not in self._revisions.get(agreement.id, {}) and key not in new:
                new[key] = compile_agreement(agreement)
        for (agreement_id, revision), compiled in new.items():
            self._revisions.setdefault(agreement_id, {})[revision] = compiled
        self.generation += bool(new)
        return sorted(new)

    def __iter__(self):
        for revisions in self._revisions.values():
            yield from revisions.values()

    def ids(self) -> list[str]:
        return sorted(self._revisions)

    def get(self, agreement_id: str, revision: int) -> CompiledAgreement:
        try:
            return self._revisions[agreement_id][revision]
        except KeyError:
            raise Rejected(f"agreement {agreement_id!r} revision {revision} is not loaded") from None

    def latest(self, agreement_id: str) -> CompiledAgreement:
        revisions = self._revisions.get(agreement_id)
        if not revisions:
            raise Rejected(f"unknown agreement {agreement_id!r} (loaded: {', '.join(self.ids()) or 'none'})")
        return revisions[max(revisions)]

    def renews(self, compiled: CompiledAgreement) -> bool:
        """Whether ``compiled`` stays valid past its written ``end``: it has ``validity.renewal``
        and is the highest loaded revision of its agreement (whose renewal clause the desk's term
        follows, ``core/term.py``). Decided from the loaded files alone, so every partition agrees."""
        validity = compiled.agreement.validity
        return (validity is not None and validity.renewal is not None
                and compiled.revision == max(self._revisions[compiled.id]))

    def valid_on(self, compiled: CompiledAgreement, day) -> bool:
        """``compiled.valid_on(day)`` with the renewal extension of :meth:`renews`."""
        return compiled.valid_on(day, self.renews(compiled))

    def for_opening(self, event: TicketOpened) -> CompiledAgreement:
        """The revision a new ticket is pinned to, or Rejected naming why none fits."""
        agreement_id = event.agreement or self._by_customer(event.customer, event.service)
        revisions = self._revisions.get(agreement_id)
        if not revisions:
            raise Rejected(f"unknown agreement {agreement_id!r} (loaded: {', '.join(self.ids()) or 'none'})")
        for revision in sorted(revisions, reverse=True):
            compiled = revisions[revision]
            if self.valid_on(compiled, event.time.astimezone(compiled.tz).date()):
                return self._check_ticket(compiled, event)
        raise Rejected(f"agreement {agreement_id!r} has no revision valid on {as_written(event.time, event).date()}")

    def _by_customer(self, customer: str | None, service: str) -> str:
        matches = sorted({
            c.id for c in self
            if c.agreement.kind == "Agreement"  # supporting agreements (OLA, UC) run beside, never chosen
            and c.agreement.parties is not None and c.agreement.parties.customer.id == customer
            and service in c.agreement.services
        })
        if len(matches) != 1:
            found = "no agreement" if not matches else f"several agreements ({', '.join(matches)})"
            raise Rejected(f"customer {customer!r} and service {service!r} match {found}; name the agreement")
        return matches[0]

    @staticmethod
    def _check_ticket(compiled: CompiledAgreement, event: TicketOpened) -> CompiledAgreement:
        a = compiled.agreement
        check_priority(compiled, event.priority)
        if a.services and event.service not in a.services:
            raise Rejected(f"unknown service {event.service!r} for agreement {a.id} (known: {', '.join(a.services)})")
        return compiled
