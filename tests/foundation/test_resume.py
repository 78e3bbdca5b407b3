"""A run killed with SIGKILL midway resumes: nothing lost but what was in flight, nothing duplicated."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def _samples(out: Path) -> list[dict]:
    files = list(out.glob("*/samples.jsonl"))
    if not files:
        return []
    lines = files[0].read_text().split("\n")
    return [json.loads(x) for x in lines[:-1]]  # the part after the last newline may be torn


def test_sigkill_midway_then_resume(tmp_path):
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "memshare_cli.main", "bench", "--limit", "8", "--max-tokens", "400",
           "--policy", "dense", "--out", str(out), "--quiet", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 600
    while time.time() < deadline and not _samples(out):
        assert proc.poll() is None, "the run ended before it could be killed"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = _samples(out)
    assert 1 <= len(before) < 8, f"expected a partial run, got {len(before)} samples"

    res = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    (run,) = json.loads(res.stdout[res.stdout.index("{"):])["runs"]
    assert run["num_graded"] == 8 and run["resumed_from"] == len(before)
    after = _samples(out)
    keys = [(r["problem_id"], r["sample_index"]) for r in after]
    assert len(keys) == len(set(keys)) == 8
    kept = {(r["problem_id"], r["sample_index"]): r["output_token_ids"] for r in after}
    for r in before:  # finished samples were kept, not regenerated
        assert kept[(r["problem_id"], r["sample_index"])] == r["output_token_ids"]
