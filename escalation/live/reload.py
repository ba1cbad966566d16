"""Reloading agreements into a running worker without losing state (``escalation run`` + SIGHUP).

Steps of one reload:

1. load every agreement file under the configured path (all problems of all files collected);
2. :func:`plan_reload` (pure) compares what was found with what is loaded;
3. if the plan has no problem, :meth:`Registry.merge` adds the new revisions to the registry the
   agents already hold (same object, updated in place); otherwise nothing changes.

Invariants: a loaded revision is never removed or replaced, so an incident pinned to revision N
keeps it even when its file is gone (it is reported as ``kept``); new tickets open under the
newest revision valid on their day. A loaded revision whose content changed is a problem: a change
must be published as a new revision, not by editing one that running incidents use.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from escalation.agreement.models import Agreement
from escalation.core.contract.registry import Registry
from escalation.loader import AgreementError, load_agreements

__all__ = ["ReloadPlan", "plan_reload", "reload_registry"]

Key = tuple[str, int]


@dataclass(frozen=True)
class ReloadPlan:
    """What a reload does: ``added`` is merged only when ``problems`` is empty."""

    added: tuple[Agreement, ...] = ()
    unchanged: tuple[Key, ...] = ()
    kept: tuple[Key, ...] = ()  # loaded, no longer in the files: stays loaded (pinned incidents)
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        def keys(ks: Iterable[Key]) -> str:
            return ", ".join(f"{a} r{r}" for a, r in ks) or "none"

        return (f"added {keys((a.id, a.revision) for a in self.added)}; unchanged {len(self.unchanged)}; "
                f"kept without a file {keys(self.kept)}")


def plan_reload(loaded: Iterable[Agreement], found: Iterable[Agreement]) -> ReloadPlan:
    """Compare loaded revisions with the ones found in the files (pure; no registry change)."""
    have = {(a.id, a.revision): a for a in loaded}
    added, unchanged, problems, seen = [], [], [], set()
    for agreement in found:
        key = (agreement.id, agreement.revision)
        seen.add(key)
        old = have.get(key)
        if old is None:
            added.append(agreement)
        elif old == agreement:
            unchanged.append(key)
        else:
            problems.append(f"agreement {key[0]} revision {key[1]} changed since it was loaded; publish the change "
                            f"as revision {max(r for i, r in have if i == key[0]) + 1} (running incidents are "
                            f"pinned to revision {key[1]})")
    kept = sorted(set(have) - seen)
    return ReloadPlan(tuple(added), tuple(sorted(unchanged)), tuple(kept), tuple(problems))


def reload_registry(registry: Registry, paths: Iterable[str | Path]) -> ReloadPlan:
    """Load ``paths``, plan against ``registry`` and merge when the plan is clean (steps 1-3)."""
    paths = list(paths)
    try:
        found = load_agreements(paths)
    except AgreementError as err:
        return ReloadPlan(problems=tuple(str(p) for p in err.problems))
    except OSError as err:  # unreadable file or directory
        return ReloadPlan(problems=(f"{err.filename or paths}: {err.strerror or err}",))
    plan = plan_reload((c.agreement for c in registry), found)
    if plan.ok and plan.added:
        try:
            registry.merge(plan.added)
        except Exception as err:  # noqa: BLE001 - a compile failure refuses the reload, never stops the worker
            return ReloadPlan(problems=(f"cannot compile the new revisions: {err!r}",))
    return plan
