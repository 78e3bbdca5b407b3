"""What reusing one engine per kind saves on a whole ``memshare bench`` invocation.

Runs the same ``memshare bench`` command (default: ``--suite reasoning``: 8 DeepSeek-R1 traces,
4 policies at 3 KV budgets, 12 runs) alternately with reused engines (the default: vanilla's and
the backend's, 2 engines) and with ``--engine-per-run`` (12 engines), each into a fresh folder
(``--force``), and prints the wall-clock time of every call, the medians and their ratio, the
engines each mode started and the time their builds took. It also checks that both modes report
the same engine steps for every (policy, budget): the saving must come from engine starts only.

Run: ``python benchmarks/bench_engine_reuse.py`` (about an hour on 2 CPU cores with the default
2 repeats); extra arguments after ``--`` go to ``memshare bench`` in place of ``--suite reasoning``.
Writes ``results/bench_engine_reuse.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _bench(args: list[str], out: Path, per_run: bool) -> tuple[float, dict]:
    cmd = [str(Path(sys.executable).with_name("memshare")), "bench", *args, "--out", str(out), "--force", "--json", "--quiet"]
    if per_run:
        cmd.append("--engine-per-run")
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"memshare bench failed ({proc.returncode}): {(proc.stderr or proc.stdout).strip()[-500:]}")
    return wall, json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=2, help="alternating pairs (reused, per-run)")
    ap.add_argument("bench_args", nargs="*", help="after --: memshare bench arguments (default --suite reasoning)")
    opts = ap.parse_args()
    args = opts.bench_args or ["--suite", "reasoning"]
    walls: dict[str, list[float]] = {"reused": [], "per-run": []}
    engines: dict[str, dict] = {}
    steps: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="memshare-reuse-") as tmp:
        for i in range(opts.repeats):
            for mode in ("reused", "per-run"):
                wall, res = _bench(args, Path(tmp) / f"{mode}-{i}", per_run=mode == "per-run")
                walls[mode].append(wall)
                engines[mode] = res["engines"]
                got = {f"{r['policy']}@{r.get('kv_budget')}": r["engine_steps"] for r in res["runs"]}
                steps.setdefault(mode, got)
                print(f"{mode:8s} #{i + 1}: {wall:7.1f} s, {res['engines']['engines_started']} engines "
                      f"(builds {res['engines']['engine_build_s']:.0f} s)", flush=True)
    med = {m: statistics.median(v) for m, v in walls.items()}
    # vanilla's engine core runs in its own process and may take a step more or less (timing).
    same = all(abs(steps["reused"][k] - steps["per-run"][k]) <= (2 if k.startswith("vanilla@") else 0)
               for k in steps["reused"])
    print(f"median wall: reused {med['reused']:.1f} s, per-run {med['per-run']:.1f} s; "
          f"per-run / reused = {med['per-run'] / med['reused']:.2f}x; engine steps identical: {same}")
    out = {"command": ["memshare", "bench", *args], "repeats": opts.repeats, "walls_s": walls, "median_s": med,
           "ratio_per_run_over_reused": med["per-run"] / med["reused"], "engines": engines, "steps": steps,
           "steps_identical": same}
    Path("results").mkdir(exist_ok=True)
    Path("results/bench_engine_reuse.json").write_text(json.dumps(out, indent=2))
    if not same:
        sys.exit("engine steps differ between the modes")


if __name__ == "__main__":
    main()
