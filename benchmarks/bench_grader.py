"""Grader speed on MATH-500: every gold against its reference solution's last box.

Two figures are printed:

* ``grade``: the public ``grade_detailed`` call, end to end (extraction,
  normalization, and a worker process only when the strings differ);
* ``parser path``: the same pairs forced through the worker (LaTeX parsing
  and sympy comparison under the deadline), i.e. the cost when the string
  shortcut does not apply;
* ``wrong answers``: each gold against the NEXT problem's solution box, the
  full (and slowest) path of a mismatch: parse both, compare structure,
  numbers, symbols.

Usage: ``python benchmarks/bench_grader.py [--data DIR]``. The data
directory defaults to ``$MEMSHARE_SHARED_DATASETS`` or ``../shared/datasets``
next to the repository. Target: under 30 s in total on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _data_dir(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("MEMSHARE_SHARED_DATASETS")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def main() -> int:
    """Run the benchmark and print the timings.

    Returns:
        Process exit code: 0 when every pair graded correct, 1 otherwise.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="directory holding math500.jsonl")
    args = parser.parse_args()
    path = _data_dir(args.data) / "math500.jsonl"
    if not path.is_file():
        print(f"error: {path} not found", file=sys.stderr)
        return 2
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    from evaluators import GradeSettings, extract_math_answer, grade_detailed, run_with_deadline, warm_up

    settings = GradeSettings()
    start = time.perf_counter()
    warm_up(settings)
    startup = time.perf_counter() - start

    start = time.perf_counter()
    results = [grade_detailed(row["solution"], row["answer"], "math", settings) for row in rows]
    total = time.perf_counter() - start
    correct = sum(r.correct for r in results)
    print(f"grade:         {len(rows)} pairs, {correct} correct, {total:.2f} s total, {1000 * total / len(rows):.2f} ms/grade")

    # Parses are cached per worker; time the parser from cold.
    run_with_deadline("evaluators.parse:clear_cache", (), settings.timeout_s, settings.pool)
    start = time.perf_counter()
    forced = 0
    for row in rows:
        pred = extract_math_answer(row["solution"], settings.extract)
        ok, _ = run_with_deadline(
            "evaluators.tasks:compare_math", (row["answer"], pred, settings.compare), settings.timeout_s, settings.pool
        )
        forced += ok
    total_forced = time.perf_counter() - start
    print(
        f"parser path:   {len(rows)} pairs, {forced} correct, {total_forced:.2f} s total, "
        f"{1000 * total_forced / len(rows):.2f} ms/grade"
    )
    run_with_deadline("evaluators.parse:clear_cache", (), settings.timeout_s, settings.pool)
    start = time.perf_counter()
    wrong = [
        grade_detailed(rows[(i + 1) % len(rows)]["solution"], row["answer"], "math", settings)
        for i, row in enumerate(rows)
    ]
    total_wrong = time.perf_counter() - start
    accepted = sum(r.correct for r in wrong)
    print(
        f"wrong answers: {len(rows)} pairs, {accepted} accepted, {total_wrong:.2f} s total, "
        f"{1000 * total_wrong / len(rows):.2f} ms/grade"
    )
    print(f"worker pool start-up (once per process): {startup:.2f} s")
    return 0 if correct == len(rows) and forced == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
