"""The positive control (issue 29): where the premise holds by construction, MemShare must share the
repeats, keep quality, and beat random sharing that frees the same memory-time."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memshare_cli.main import app

pytestmark = pytest.mark.slow


def test_memshare_shares_verbatim_repeats_and_beats_random(tmp_path):
    out = tmp_path / "control"
    res = CliRunner().invoke(app, ["study", "--control", "--split", "choice", "--limit", "2", "--max-tokens", "512",
                                   "--threads", "2", "--json", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output[res.output.index("{"):])
    delayed = next(s for s in summary["settings"] if s["share_delay_blocks"] == 4)
    ms, rnd = delayed["memshare"], delayed["random"]
    assert delayed["shares"] > 0 and delayed["same_text_shares"] == delayed["shares"]
    assert ms["freed_memory_time"] == pytest.approx(rnd["freed_memory_time"])  # matched on memory
    assert ms["top1"] >= 0.99
    assert rnd["top1"] < ms["top1"] and rnd["kl"] >= 3 * ms["kl"]
    assert (out / "control.json").is_file()
