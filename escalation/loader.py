"""Load agreement files safely and report every problem with file, line and field path.

YAML is read with ruamel.yaml's round-trip loader: it constructs only plain data (no arbitrary
Python objects, so it is safe for untrusted files) and remembers the line of every key and item,
which is what lets an error say ``acme.yaml:31: targets[2].calendar: unknown calendar ...``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from escalation.agreement.bounded import MAX_FILE_BYTES, Refused, read_yaml
from escalation.agreement.models import Agreement
from escalation.agreement.references import check_references
from escalation.core.contract.feasibility import check_feasible
from escalation.secrets import redact


#: the path of a problem of the document as a whole (its YAML text, its shape), where no field is to blame
DOCUMENT = "(document)"


@dataclass(frozen=True, slots=True)
class AgreementProblem:
    """``file:line: path: message``; line 0 is a problem of the whole file (``file: message``).

    Path and message are redacted (``escalation.secrets.redact``): an agreement may quote a URL
    with credentials, and YAML's own errors echo the values they saw (DESIGN.md §10 "Secrets")."""

    file: str
    line: int
    path: str
    message: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", redact(self.path))
        object.__setattr__(self, "message", redact(self.message))

    def __str__(self) -> str:
        where = f"{self.path}: " if self.path else ""
        at = f"{self.file}:{self.line}" if self.line else self.file
        return f"{at}: {where}{self.message}"


class AgreementError(Exception):
    """One or more agreement files are unusable; ``problems`` lists every one found."""

    def __init__(self, problems: list[AgreementProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def format_path(path: Iterable) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _plain(node):
    """Round-trip containers -> dict/list; dates stay dates; other scalars become str/int/float/bool."""
    if isinstance(node, CommentedMap):
        return {str(k): _plain(v) for k, v in node.items()}
    if isinstance(node, CommentedSeq):
        return [_plain(v) for v in node]
    if isinstance(node, (datetime, date, bool, int, float)) or node is None:
        return node
    return str(node)


def _line_of(root, path: tuple) -> tuple[int, tuple]:
    """1-based line of the deepest node of ``path`` found in the document, and that node's path."""
    node, line, found = root, 1, ()
    for part in path:
        if isinstance(node, CommentedMap) and part in node:
            line = node.lc.key(part)[0] + 1
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            line = node.lc.item(part)[0] + 1
        else:
            continue  # pydantic adds union tags (e.g. 'tiered_credit') that are not in the file
        node, found = node[part], found + (part,)
    return line, found


def parse_agreement(text: str | bytes, file: str) -> Agreement:
    """Parse one agreement document (bytes are decoded as UTF-8); raise AgreementError listing
    every problem. An agreement returned here compiles and runs (``feasibility.py``)."""
    try:
        root = read_yaml(text)
    except Refused as err:
        raise AgreementError([AgreementProblem(file, err.line, DOCUMENT, err.message)]) from None
    if not isinstance(root, CommentedMap):
        raise AgreementError([AgreementProblem(file, 1, DOCUMENT, "an agreement file must hold one mapping")])
    data = _plain(root)
    try:
        agreement = Agreement.model_validate(data)
    except ValidationError as err:
        problems = _validation_problems(err, root, file)
        problems += _references_after_pruning(data, err, root, file)
        raise AgreementError(sorted(problems, key=lambda p: p.line)) from None
    problems = check_references(agreement) or check_feasible(agreement)
    if problems:
        raise AgreementError([_problem(root, file, path, message) for path, message in problems])
    return agreement


def _references_after_pruning(data: dict, err: ValidationError, root, file: str) -> list[AgreementProblem]:
    """Cross-reference problems of the parts that did validate, so one run reports every error.

    Each element an error points into (a list item, a mapping entry, a top-level field) is dropped
    and the rest validated again; reference paths are mapped back to the file's own indexes, and
    references to dropped names are not reported twice.
    """
    pruned, kept, dropped = dict(data), {}, set()
    for item in err.errors(include_url=False):
        _, loc = _line_of(root, tuple(item["loc"]))
        if not loc:
            return []
        head, rest = loc[0], loc[1:]
        value = pruned.get(head)
        if rest and isinstance(value, list) and isinstance(rest[0], int):
            kept.setdefault(head, list(range(len(data[head]))))
            if rest[0] in kept[head]:
                kept[head].remove(rest[0])
            item_id = data[head][rest[0]].get("id") if isinstance(data[head][rest[0]], dict) else None
            if isinstance(item_id, str):
                dropped.add(item_id)  # a broken remedy is not also "unknown" where a cap names it
        elif rest and isinstance(value, dict):
            pruned[head] = {k: v for k, v in value.items() if k != rest[0]}
            dropped.add(str(rest[0]))
        else:
            pruned.pop(head, None)
    for head, indexes in kept.items():
        pruned[head] = [data[head][i] for i in indexes]
    try:
        agreement = Agreement.model_validate(pruned)
    except ValidationError:
        return []  # something essential is broken; the structural problems already say what
    problems = []
    for path, message in check_references(agreement):
        if any(f"'{name}'" in message for name in dropped):
            continue
        if path and path[0] in kept and len(path) > 1 and isinstance(path[1], int):
            path = (path[0], kept[path[0]][path[1]], *path[2:])
        problems.append(_problem(root, file, path, message))
    return problems


def _problem(root, file: str, path: tuple, message: str) -> AgreementProblem:
    line, _ = _line_of(root, path)
    return AgreementProblem(file, line, format_path(path), message)


def _validation_problems(err: ValidationError, root, file: str) -> list[AgreementProblem]:
    problems = []
    for item in err.errors(include_url=False):
        loc = tuple(item["loc"])
        line, found = _line_of(root, loc)
        # Missing fields have no line of their own: point at their parent and keep the full path.
        path = format_path(p for p in loc if p in found or item["type"] == "missing" or p == loc[-1])
        message = item["msg"].removeprefix("Value error, ")
        problems.append(AgreementProblem(file, line, path, message))
    return problems


def agreement_files(path: str | Path) -> list[Path]:
    """A file, or the ``*.yaml``/``*.yml`` files of a directory in name order."""
    p = Path(path)
    try:
        if p.is_dir():
            return sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml") and f.is_file())
        if p.is_file():
            return [p]
    except (OSError, ValueError) as err:  # unreadable directory, NUL in the name
        raise AgreementError([AgreementProblem(str(p), 0, "", f"cannot read: {err}")]) from None
    raise AgreementError([AgreementProblem(str(p), 0, "", "no such file or directory")])


def _read_bounded(file: Path) -> bytes:
    """The file's bytes, reading at most one byte past the limit (the reader then refuses it)."""
    try:
        with file.open("rb") as handle:
            return handle.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise AgreementError([AgreementProblem(str(file), 0, "", f"cannot read: {err.strerror or err}")]) from None


def _load_file(file: Path) -> Agreement:
    """One file's agreement; AgreementError for anything wrong, including an unexpected exception
    (``internal error: <type>: <message>``), so one broken file never hides the others."""
    try:
        return parse_agreement(_read_bounded(file), str(file))
    except AgreementError:
        raise
    except Exception as err:  # noqa: BLE001 - see the docstring
        raise AgreementError([AgreementProblem(str(file), 0, "", f"internal error: {type(err).__name__}: {err}")]) from None


def check_agreements(paths: Iterable[str | Path]) -> tuple[list[Agreement], list[AgreementProblem]]:
    """Every agreement under ``paths`` that loads, and the problems of all the others."""
    agreements, problems = [], []
    seen: dict[tuple[str, int], str] = {}
    for path in paths:
        try:
            files = agreement_files(path)
        except AgreementError as err:
            problems.extend(err.problems)
            continue
        for file in files:
            try:
                agreement = _load_file(file)
            except AgreementError as err:
                problems.extend(err.problems)
                continue
            key = (agreement.id, agreement.revision)
            if key in seen:
                problems.append(AgreementProblem(str(file), 1, "revision", f"agreement {key[0]} revision {key[1]} is also defined in {seen[key]}"))
                continue
            seen[key] = str(file)
            agreements.append(agreement)
    return agreements, problems


def load_agreements(paths: Iterable[str | Path]) -> list[Agreement]:
    """Load every agreement under ``paths``; collect problems of all files before raising."""
    agreements, problems = check_agreements(paths)
    if problems:
        raise AgreementError(problems)
    return agreements
