"""Checksums of `escalation replay` outputs: the "before" and "after" of a refactor.

For each workload, runs the CLI as a subprocess (nothing else of the package is imported, so the
same script works after internal modules move) and prints the sha256 and line count of every file
that the run wrote: replay outputs, dead letters, and the inputs it generated or imported.

Workloads:
- the bundled examples, with the argument sets of README.md (JSON outputs via --out/--dead-letter,
  and the --pretty text where the README prints it);
- the bench workload: bench/generate_tickets.py --tickets 10000 and 100000 (seed 42), replayed with
  --agreements <dir>/agreements, as in bench/README.md;
- the ServiceNow incident log (../shared/data/servicenow-incident-log/): `escalation import
  servicenow`, then replay with examples/agreements/servicenow-sample.yaml, as in README.md.

The tree under test is the one this script lives in: every subprocess runs with PYTHONPATH=<tree>
and cwd=<tree>, whichever tree the venv was installed from. Typical use:

    git worktree add /tmp/base <commit>          # the "before"
    python /tmp/base/bench/output_checksums.py --json /tmp/before.json > /tmp/before.txt
    python bench/output_checksums.py --json /tmp/after.json > /tmp/after.txt
    diff /tmp/before.txt /tmp/after.txt          # or compare the "rows" of the two JSON files
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SERVICENOW_CSV = Path("shared/data/servicenow-incident-log/incident_event_log.csv")

# (name, replay arguments as in README.md (paths relative to the tree), README prints it --pretty)
EXAMPLES = [
    ("acme-erp", ["--agreements", "examples/agreements/acme-erp.yaml", "--events", "examples/events/acme-erp.jsonl",
                  "--until", "2026-03-03T12:00:00Z"], False),
    ("contracts", ["--agreements", "examples/agreements/contracts", "--events", "examples/events/contracts.jsonl"], True),
    ("acme-erp-metrics", ["--events", "examples/events/acme-erp-metrics.jsonl",
                          "--until", "2026-04-01T00:00:00+02:00"], True),
    ("acme-erp-contract", ["--agreements", "examples/agreements/acme-erp-contract.yaml",
                           "--events", "examples/events/acme-erp-contract.jsonl",
                           "--until", "2026-06-01T00:00:00+02:00"], True),
]


def digest(path: Path) -> tuple[str, int]:
    """sha256 and line count of a file, or of a directory's files (relative names and bytes, sorted)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    h, lines = hashlib.sha256(), 0
    for f in files:
        data = f.read_bytes()
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode() + b"\0")
        h.update(data)
        lines += data.count(b"\n")
    return h.hexdigest(), lines


class Runner:
    def __init__(self, cli: list[str], workdir: Path):
        self.cli, self.workdir, self.rows, self.notes, self.failed = cli, workdir, [], {}, False
        self.env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))

    def run(self, workload: str, cmd: list[str], files: dict[str, Path], stdout: Path | None = None) -> bool:
        started = time.perf_counter()
        with open(stdout, "wb") if stdout else open(os.devnull, "wb") as out:
            proc = subprocess.run(cmd, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.PIPE)
        seconds = round(time.perf_counter() - started, 1)
        err = proc.stderr.decode(errors="replace").strip()
        self.notes[workload] = f"{seconds} s" + (f"; {err.splitlines()[-1]}" if err else "")
        if proc.returncode:
            self.failed = True
            print(f"FAILED ({proc.returncode}): {' '.join(cmd)}\n{err}", file=sys.stderr)
        for label, path in files.items():
            sha, lines = digest(path) if path.exists() else (f"MISSING (exit {proc.returncode})", 0)
            self.rows.append({"workload": workload, "file": label, "lines": lines, "sha256": sha})
        return proc.returncode == 0

    def replay(self, workload: str, args: list[str], extra: dict[str, Path] | None = None) -> None:
        out, dead = self.workdir / f"{workload}.outputs.jsonl", self.workdir / f"{workload}.dead-letter.jsonl"
        self.run(workload, [*self.cli, "replay", *args, "--out", str(out), "--dead-letter", str(dead)],
                 {**(extra or {}), "outputs": out, "dead-letter": dead})


def find_csv(given: Path | None) -> Path | None:
    """--servicenow-csv, else ../shared/ beside this tree or beside the main worktree of its repository."""
    if given:
        return given
    roots = [ROOT.parent]
    git = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
                         capture_output=True, text=True)
    if git.returncode == 0:
        roots.append(Path(git.stdout.strip()).parent.parent)
    return next((r / SERVICENOW_CSV for r in roots if (r / SERVICENOW_CSV).is_file()), None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=ROOT / "bench" / "out",
                        help="generated workloads go here, replay outputs under <workdir>/checksums/ "
                             "(default <tree>/bench/out, where bench_replay.py looks)")
    parser.add_argument("--escalation", metavar="PATH", default=shutil.which("escalation"),
                        help="the console script to run (default: `escalation` on PATH)")
    parser.add_argument("--cli-module", metavar="MODULE",
                        help="run `python -m MODULE` instead of the console script (e.g. escalation.cli)")
    parser.add_argument("--skip-100k", action="store_true", help="leave out the 100k-ticket workload (quick run)")
    parser.add_argument("--reuse-workload", action="store_true",
                        help="do not regenerate tickets-N-s42.jsonl if it exists (its checksum is printed anyway)")
    parser.add_argument("--servicenow-csv", type=Path, help=f"default: ../{SERVICENOW_CSV} beside the tree")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE",
                        help="JSON to stdout instead of the table, or to FILE besides the table")
    a = parser.parse_args()

    if a.cli_module:
        cli = [sys.executable, "-m", a.cli_module]
    elif a.escalation:
        cli = [a.escalation]
    else:
        parser.error("no `escalation` on PATH: activate the venv, or give --escalation PATH or --cli-module")
    workdir = a.workdir.resolve()
    outdir = workdir / "checksums"
    outdir.mkdir(parents=True, exist_ok=True)
    r = Runner(cli, outdir)

    # which package the CLI imports (the console script's interpreter, same env, outside the tree)
    interp = sys.executable if a.cli_module else Path(a.escalation).read_text().splitlines()[0].removeprefix("#!").strip()
    probe = subprocess.run([interp, "-c", "import escalation; print(escalation.__file__)"], cwd=outdir, env=r.env,
                           capture_output=True, text=True)
    commit = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty", "--abbrev=12"],
                            capture_output=True, text=True).stdout.strip()
    header = {"tree": str(ROOT), "commit": commit, "cli": cli, "imports": probe.stdout.strip() or probe.stderr.strip()}

    for name, args, pretty in EXAMPLES:
        r.replay(f"example:{name}", args)
        if pretty:
            text = outdir / f"example:{name}.pretty.txt"
            r.run(f"example:{name}:pretty", [*cli, "replay", *args, "--pretty"], {"pretty stdout": text}, stdout=text)

    for n in [10_000] + ([] if a.skip_100k else [100_000]):
        events = workdir / f"tickets-{n}-s42.jsonl"
        ok = a.reuse_workload and events.is_file()
        if not ok:
            ok = r.run(f"bench:{n}:generate", [sys.executable, str(ROOT / "bench" / "generate_tickets.py"),
                                               "--tickets", str(n), "--out", str(events)], {})
        if ok:
            r.replay(f"bench:{n}", ["--agreements", str(workdir / "agreements"), "--events", str(events)],
                     {"events (generated)": events, "agreements/ (generated)": workdir / "agreements"})

    csv = find_csv(a.servicenow_csv)
    if csv is None:
        r.failed = True
        print(f"ServiceNow log not found (../{SERVICENOW_CSV}): give --servicenow-csv", file=sys.stderr)
    else:
        header["servicenow_csv"] = str(csv)
        events, problems = outdir / "servicenow.events.jsonl", outdir / "servicenow.problems.txt"
        if r.run("servicenow:import", [*cli, "import", "servicenow", str(csv), "--out", str(events),
                                       "--problems", str(problems)], {"events": events, "problems": problems}):
            r.replay("servicenow", ["--agreements", "examples/agreements/servicenow-sample.yaml", "--events", str(events)])

    result = {**header, "rows": r.rows, "notes": r.notes}
    if a.json and a.json != "-":
        Path(a.json).write_text(json.dumps(result, indent=1) + "\n")
    if a.json == "-":
        print(json.dumps(result, indent=1))
    else:
        for key, value in header.items():
            print(f"{key}: {value}")
        print(f"\n{'workload':<32} {'file':<24} {'lines':>9}  sha256")
        for row in r.rows:
            print(f"{row['workload']:<32} {row['file']:<24} {row['lines']:>9}  {row['sha256']}")
        print("\ntimes (wall) and the last line of stderr:")
        for workload, line in r.notes.items():
            print(f"  {workload}: {line}")
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
