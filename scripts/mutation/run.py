"""Mutation testing of the targets in ``targets.toml`` with cosmic-ray: ``make mutate``.

cosmic-ray (PyPI; pinned in ``requirements.txt`` and installed in its own ``.venv-mutate``,
so its dependencies never meet the pinned TFX stack) finds the mutation sites, applies each
mutant to the file in place, runs the target's tests (``.venv``'s pytest, ``-x``) and records
the outcome in a SQLite session: a mutant is killed when the tests fail or time out.

This driver adds what cosmic-ray does not do (its own filters select mutants by operator or by
a ``# pragma: no mutate`` comment on the line, not by function, and it keeps no list of
equivalent mutants with reasons):

- scope: mutants of excluded operators, and outside a target's ``functions``, are marked
  skipped before anything runs, and not counted;
- mutants inside type annotations of a module with postponed annotations are equivalent by
  rule (the annotation is never evaluated), as are mutants whose diff is empty (the mutated
  source is the original: ``9007199254740992.0 + 1`` prints as the same float);
- equivalent mutants listed in ``targets.toml`` (operator, the mutated line as the report
  prints it, a reason) still run; when they survive they are counted as equivalent, not as
  survivors; an entry that matches no survivor is reported as stale, so a refactoring or a
  new test cannot leave a reason behind;
- interrupted runs: cosmic-ray restores the file in a ``finally`` block, which a SIGKILL
  skips, so the module's original bytes are saved in the session folder while mutants run
  and put back first by the next run (one run at a time: ``.mutation/lock``; ``--report``
  during a run reads the sessions and touches no file). A session resumes (only mutants
  without an outcome run); see ``prepare`` for when it starts again;
- the tests must pass unmutated before any mutant runs (a baseline run, also timed);
- the report: per target, mutants generated (in scope), killed, equivalent, surviving and the
  score ``killed / (generated - equivalent)``, then every survivor (line, operator, the
  mutated line).

Usage: ``python scripts/mutation/run.py [--only NAME,...] [--report] [--fresh]``
(``--report``: print the sessions as they are, run nothing; ``--fresh``: run every mutant).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import fcntl
import hashlib
import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import toml
from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

ROOT = Path(__file__).resolve().parents[2]
TARGETS = Path(__file__).with_name("targets.toml")
STATE = ROOT / ".mutation"  # the lock and the originals of modules being mutated
SESSIONS = STATE  # main() points it at a sub-folder for --tests-at
PYTEST = ".venv/bin/python -m pytest -x -q -p no:cacheprovider"
EQUIVALENT = "equivalent: "
OUT_OF_SCOPE = "out of scope"


def load_targets(path: Path = TARGETS) -> tuple[list[dict], list[str]]:
    """``(targets, excluded operator patterns)`` of the config, each target checked."""
    config = toml.load(path)
    targets = config.get("target", [])
    names = [t.get("name") for t in targets]
    for t in targets:
        missing = [k for k in ("name", "module", "tests") if not t.get(k)]
        if missing:
            raise SystemExit(f"{path.name}: a target without {', '.join(missing)}: {t}")
        for p in (t["module"], *t["tests"]):
            if not (ROOT / p).exists():
                raise SystemExit(f"{path.name}: target {t['name']}: {p} does not exist")
        for e in t.get("equivalent", []):
            # a mutant that only removes lines (a decorator) prints as "" (``mutated_line``)
            if not (e.get("operator") and "mutant" in e and e.get("reason")):
                raise SystemExit(
                    f"{path.name}: {t['name']}: equivalent needs operator, mutant, reason"
                )
    if len(set(names)) != len(names):
        raise SystemExit(f"{path.name}: target names repeat: {names}")
    return targets, list(config.get("exclude-operators", []))


def _digest(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.read_bytes())
    return h.hexdigest()


def _function_lines(source: str, functions: list[str]) -> list[tuple[int, int]]:
    """Line ranges (1-based, inclusive) of the functions or methods named ``functions``."""
    found = [
        node
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in functions
    ]
    unknown = sorted(set(functions) - {n.name for n in found})
    if unknown:
        raise SystemExit(f"no function {', '.join(unknown)} in the module")
    return [(n.lineno, n.end_lineno) for n in found]


def annotation_spans(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """``((line, col), (end line, end col))`` of every type annotation.

    Only when the module has ``from __future__ import annotations`` (its annotations are then
    strings, never evaluated); otherwise none.
    """
    tree = ast.parse(source)
    postponed = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    if not postponed:
        return []
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns:
            found.append(node.returns)
        elif isinstance(node, ast.arg) and node.annotation:
            found.append(node.annotation)
        elif isinstance(node, ast.AnnAssign):
            found.append(node.annotation)
    return [((n.lineno, n.col_offset), (n.end_lineno, n.end_col_offset)) for n in found]


ANNOTATION = "a type annotation: a string under `from __future__ import annotations`"


def classify(
    operator: str,
    position: tuple[int, int],
    lines: list[str],
    scope: list[tuple[int, int]] | None,
    excluded: re.Pattern | None,
    annotations: list[tuple[tuple[int, int], tuple[int, int]]] = (),
) -> str | None:
    """Why a mutant is not run (``OUT_OF_SCOPE``, or ``EQUIVALENT`` + reason), or None."""
    line_no = position[0]
    if excluded is not None and excluded.match(operator):
        return OUT_OF_SCOPE
    if scope is not None and not any(a <= line_no <= b for a, b in scope):
        return OUT_OF_SCOPE
    if any(start <= tuple(position) < end for start, end in annotations):
        return EQUIVALENT + ANNOTATION
    return None


def tests_at(target: dict, rev: str) -> dict:
    """``target`` with its tests as they were at git revision ``rev``.

    They are copied under ``SESSIONS/tests-<rev>/`` (with the ``conftest.py`` files on their
    path), for a "before" score: the module is today's, the tests are the old ones.
    """
    base = SESSIONS / f"tests-{rev}"
    paths = set(target["tests"])
    for test in target["tests"]:
        parts = Path(test).parts
        paths |= {str(Path(*parts[:i], "conftest.py")) for i in range(1, len(parts))}
    copied = []
    for path in sorted(paths):
        show = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=ROOT, capture_output=True, check=False
        )
        if show.returncode != 0:
            if path in target["tests"]:
                raise SystemExit(f"{path} does not exist at {rev}")
            continue
        (base / path).parent.mkdir(parents=True, exist_ok=True)
        (base / path).write_bytes(show.stdout)
        if path in target["tests"]:
            copied.append(str((base / path).relative_to(ROOT)))
    return {**target, "tests": copied}


def _config_file(target: dict) -> Path:
    path = SESSIONS / f"{target['name']}.toml"
    command = f"{PYTEST} {' '.join(target['tests'])}"
    path.write_text(
        toml.dumps(
            {
                "cosmic-ray": {
                    "module-path": target["module"],
                    "timeout": float(target.get("timeout", 60)),
                    "excluded-modules": [],
                    "test-command": command,
                    "distributor": {"name": "local"},
                }
            }
        )
    )
    return path


def _env() -> dict:
    return dict(os.environ, TF_USE_LEGACY_KERAS="1", TF_CPP_MIN_LOG_LEVEL="3")


def restore_interrupted(target: dict) -> None:
    """Puts back the module a killed run left mutated (its saved original bytes)."""
    backup = STATE / f"{target['name']}.original"
    if backup.exists():
        module = ROOT / target["module"]
        if module.read_bytes() != backup.read_bytes():
            module.write_bytes(backup.read_bytes())
            print(f"{target['name']}: restored {target['module']} (a run was interrupted)")
        backup.unlink()


def _reopen(session: Path) -> int:
    """Deletes the outcomes of survivors (they are pending again); returns how many."""
    with use_db(str(session), WorkDB.Mode.open) as db:
        again = [job_id for job_id, r in db.results if r.test_outcome == TestOutcome.SURVIVED]
    with sqlite3.connect(session) as con:
        con.executemany("DELETE FROM work_results WHERE job_id = ?", [(j,) for j in again])
    return len(again)


def prepare(target: dict, excluded: list[str], fresh: bool = False) -> Path:
    """The target's session, every pending mutant classified.

    A new session when asked (``fresh``), when there is none, or when the module, the
    cosmic-ray config or the excluded operators changed. When only the tests changed, killed
    mutants stay killed and the survivors run again (tests that kill more never revive a
    killed mutant, unless a test was weakened: ``--fresh`` runs everything).
    """
    SESSIONS.mkdir(exist_ok=True)
    config = _config_file(target)
    session = SESSIONS / f"{target['name']}.sqlite"
    stamp_path = SESSIONS / f"{target['name']}.json"
    stamp = {
        "module": _digest([ROOT / target["module"]]),
        "config": config.read_text(),
        "exclude": excluded,
        "tests": _digest([ROOT / t for t in target["tests"]]),
    }
    old = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    if (
        fresh
        or not session.exists()
        or any(old.get(k) != stamp[k] for k in ("module", "config", "exclude"))
    ):
        session.unlink(missing_ok=True)
        subprocess.run(
            [sys.executable, "-m", "cosmic_ray.cli", "init", str(config), str(session)],
            cwd=ROOT,
            check=True,
        )
    elif old != stamp:
        print(f"{target['name']}: the tests changed: {_reopen(session)} survivors run again")
    stamp_path.write_text(json.dumps(stamp))
    source = (ROOT / target["module"]).read_text()
    lines = source.splitlines()
    scope = _function_lines(source, target["functions"]) if target.get("functions") else None
    pattern = re.compile("|".join(f"(?:{e})" for e in excluded)) if excluded else None
    annotations = annotation_spans(source)
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in db.pending_work_items:
            (mutation,) = item.mutations
            reason = classify(
                mutation.operator_name, mutation.start_pos, lines, scope, pattern, annotations
            )
            if reason:
                db.set_result(
                    item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output=reason)
                )
    return session


def baseline(target: dict) -> float:
    """Seconds the tests take unmutated; exits naming the target when they fail."""
    start = time.monotonic()
    proc = subprocess.run(
        [*PYTEST.split(), *target["tests"]], cwd=ROOT, env=_env(), capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(
            f"{target['name']}: the tests fail without any mutant:\n{proc.stdout[-2000:]}"
        )
    return time.monotonic() - start


def execute(target: dict, session: Path) -> None:
    """Runs the pending mutants, the module's original saved until cosmic-ray is done."""
    with use_db(str(session), WorkDB.Mode.open) as db:
        pending = sum(1 for _ in db.pending_work_items)
    if not pending:
        return
    seconds = baseline(target)
    print(f"{target['name']}: {pending} mutants to run, about {pending * seconds / 60:.0f} min")
    backup = STATE / f"{target['name']}.original"
    backup.write_bytes((ROOT / target["module"]).read_bytes())
    config = SESSIONS / f"{target['name']}.toml"
    subprocess.run(
        [sys.executable, "-m", "cosmic_ray.cli", "exec", str(config), str(session)],
        cwd=ROOT,
        env=_env(),
        check=True,
    )
    if (ROOT / target["module"]).read_bytes() != backup.read_bytes():
        raise SystemExit(f"{target['module']} differs from its original after the run")
    backup.unlink()


def mutated_line(diff: str | None) -> str:
    """The non-blank lines a mutant's diff adds, stripped, joined by `` / ``."""
    added = [
        line[1:].strip()
        for line in (diff or "").splitlines()
        if line.startswith("+") and not line.startswith("+++") and line[1:].strip()
    ]
    return " / ".join(added)


def changed(diff: str | None) -> bool:
    """Whether a mutant's diff adds or removes a line.

    cosmic-ray writes an empty diff when the mutated source prints as the original.
    """
    return any(
        line[:1] in "+-" and not line.startswith(("+++", "---"))
        for line in (diff or "").splitlines()
        if line
    )


def summarise(target: dict, session: Path) -> dict:
    """Counts per outcome, the survivors and the stale equivalent entries of one session.

    A survivor matching an ``equivalent`` entry of the target (its operator and its mutated
    line) is counted as equivalent, as are mutants inside postponed annotations and mutants
    whose diff changes no line.
    """
    counts = {"generated": 0, "killed": 0, "equivalent": 0, "surviving": 0, "pending": 0}
    equivalents = {(e["operator"], e["mutant"]): e for e in target.get("equivalent", [])}
    matched = set()
    survivors = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        results = dict(db.results)
        for item in db.work_items:
            (mutation,) = item.mutations
            result = results.get(item.job_id)
            if result is not None and result.output == OUT_OF_SCOPE:
                continue
            counts["generated"] += 1
            if result is None:
                counts["pending"] += 1
            elif result.worker_outcome == WorkerOutcome.SKIPPED:
                counts["equivalent"] += 1
            elif result.test_outcome == TestOutcome.SURVIVED and not changed(result.diff):
                counts["equivalent"] += 1  # the mutated source is the original
            elif result.test_outcome == TestOutcome.SURVIVED:
                key = (mutation.operator_name, mutated_line(result.diff))
                if key in equivalents:
                    matched.add(key)
                    counts["equivalent"] += 1
                else:
                    counts["surviving"] += 1
                    survivors.append((mutation.start_pos[0], *key))
            else:  # killed, a timeout, or a mutant the tests could not even import
                counts["killed"] += 1
    decided = counts["generated"] - counts["equivalent"] - counts["pending"]
    counts["score"] = counts["killed"] / decided if decided else None
    stale = [e for key, e in equivalents.items() if key not in matched]
    return {
        "name": target["name"],
        "module": target["module"],
        **counts,
        "survivors": survivors,
        "stale": stale,
    }


def report(summaries: list[dict]) -> str:
    """The Markdown table of the summaries, then every survivor."""
    out = [
        "| target | module | generated | killed | equivalent | surviving | pending | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        score = "-" if s["score"] is None else f"{s['score']:.1%}"
        out.append(
            f"| {s['name']} | `{s['module']}` | {s['generated']} | {s['killed']} | "
            f"{s['equivalent']} | {s['surviving']} | {s['pending']} | {score} |"
        )
    for s in summaries:
        for line, operator, mutant in sorted(s["survivors"]):
            out.append(f"survivor {s['module']}:{line} {operator}: {mutant}")
        for e in s["stale"]:
            out.append(f"stale equivalent entry of {s['name']} (no surviving mutant): {e}")
    return "\n".join(out)


@contextlib.contextmanager
def exclusive(wait: bool):
    """Holds ``.mutation/lock`` (one run at a time; the lock dies with its process).

    Yields whether it is held: with ``wait`` False and another run holding it, False.
    """
    STATE.mkdir(exist_ok=True)
    with open(STATE / "lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> int:
    """Runs (or with ``--report`` only reports) the chosen targets; prints the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="", help="comma-separated target names")
    parser.add_argument("--report", action="store_true", help="print the sessions, run nothing")
    parser.add_argument("--fresh", action="store_true", help="new sessions: run every mutant")
    parser.add_argument(
        "--tests-at",
        default="",
        help="run the tests as they were at this git revision (a 'before' score; sessions in "
        ".mutation/before-<rev>)",
    )
    args = parser.parse_args(argv)
    targets, excluded = load_targets()
    if args.only:
        wanted = args.only.split(",")
        unknown = sorted(set(wanted) - {t["name"] for t in targets})
        if unknown:
            raise SystemExit(
                f"no target {', '.join(unknown)}; targets: {[t['name'] for t in targets]}"
            )
        targets = [t for t in targets if t["name"] in wanted]
    global SESSIONS
    if args.tests_at:
        SESSIONS = SESSIONS / f"before-{args.tests_at}"
        SESSIONS.mkdir(parents=True, exist_ok=True)
        targets = [tests_at(t, args.tests_at) for t in targets]
    summaries = []
    with exclusive(wait=not args.report) as held:
        if not held:
            print("a run is in progress: its sessions so far")
        for target in targets:
            if held:  # a saved original with nobody holding the lock: an interrupted run
                restore_interrupted(target)
            session = SESSIONS / f"{target['name']}.sqlite"
            if not args.report:
                session = prepare(target, excluded, args.fresh)
                execute(target, session)
            if session.exists():
                summaries.append(summarise(target, session))
    print(report(summaries))
    return 0


if __name__ == "__main__":
    sys.exit(main())
