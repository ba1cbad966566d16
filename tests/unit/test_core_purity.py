"""The core stays pure: no wall clock, no randomness, no I/O (DESIGN.md §2)."""

from __future__ import annotations

import ast
from pathlib import Path

import escalation.core

CORE = Path(escalation.core.__file__).parent
FORBIDDEN_METHODS = {"now", "utcnow", "today", "monotonic", "perf_counter", "urandom", "time_ns"}
FORBIDDEN_FUNCTIONS = {"open", "print", "input"}
FORBIDDEN_IMPORTS = {"time", "random", "socket", "subprocess", "os", "requests", "aiokafka", "faust", "threading", "asyncio"}


def _violations(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute):
                clock = func.attr == "time" and getattr(func.value, "id", None) == "time"  # time.time()
                if func.attr in FORBIDDEN_METHODS or clock:
                    found.append(f"{path.name}:{node.lineno}: call to .{func.attr}()")
            elif getattr(func, "id", None) in FORBIDDEN_FUNCTIONS:
                found.append(f"{path.name}:{node.lineno}: call to {func.id}()")
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            found += [f"{path.name}:{node.lineno}: import {n}" for n in names if n.split(".")[0] in FORBIDDEN_IMPORTS]
    return found


def test_core_never_reads_the_clock_draws_randomness_or_does_io():
    problems = [v for path in sorted(CORE.rglob("*.py")) for v in _violations(path)]
    assert problems == []
