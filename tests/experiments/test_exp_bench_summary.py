"""The numbers ``memshare bench`` derives after the runs: ratios, ideal gains, quality vs dense."""

from __future__ import annotations

import pytest

from memshare.bench import add_ratios, quality_vs, summarize_repeats


def test_ratios_and_ideal_gains():
    results = {
        "dense": {"requests_per_s": 0.5, "output_tokens_per_s": 100.0, "mean_running_requests": 8.0,
                  "affected_ratio": 0.0},
        "memshare": {"requests_per_s": 0.55, "output_tokens_per_s": 120.0, "mean_running_requests": 10.0,
                     "affected_ratio": 0.5},
    }
    add_ratios(results)
    m, d = results["memshare"], results["dense"]
    assert m["requests_speedup_vs_dense"] == pytest.approx(1.1) and m["speedup_vs_dense"] == pytest.approx(1.2)
    assert m["ideal_gain"] == pytest.approx(2.0) and m["ideal_gain_achieved"] == pytest.approx(0.1)
    assert m["concurrency_gain"] == pytest.approx(1.25) and m["concurrency_gain_achieved"] == pytest.approx(0.4)
    # Dense against itself: gains of 1, nothing to achieve.
    assert d["concurrency_gain"] == 1.0 and d["ideal_gain"] == 1.0 and d["ideal_gain_achieved"] is None


def test_no_achieved_share_when_sharing_bought_no_concurrency():
    results = {"dense": {"requests_per_s": 1.0, "output_tokens_per_s": 1.0, "mean_running_requests": 10.0},
               "memshare": {"requests_per_s": 1.03, "output_tokens_per_s": 1.0, "mean_running_requests": 10.0002,
                            "affected_ratio": 0.2}}
    add_ratios(results)
    m = results["memshare"]
    assert m["concurrency_gain_achieved"] is None and m["ideal_gain_achieved"] == pytest.approx(0.12)


def test_ratios_without_a_baseline_or_affected_ratio():
    results = {"memshare": {"requests_per_s": 0.5, "output_tokens_per_s": 10.0, "affected_ratio": None}}
    add_ratios(results)
    r = results["memshare"]
    assert r["requests_speedup_vs_dense"] is None and r["ideal_gain"] is None and r["concurrency_gain"] is None


def row(pid, tokens, extracted, finish="stop"):
    return {"problem_id": pid, "sample_index": 0, "output_token_ids": tokens, "extracted": extracted,
            "finish_reason": finish}


def test_quality_against_dense():
    dense = [row("a", [1, 2, 3, 4], "5"), row("b", [7, 8, 9], "1"), row("c", [5, 6], "2")]
    shared = [row("a", [1, 2, 3, 4], "5"),  # identical
              row("b", [7, 8, 0, 0], "3"),  # diverges at token 2, other answer
              row("c", [5] + [9, 4] * 40, None, finish="length")]  # diverges at 1 and runs to the cap
    q = quality_vs(shared, dense)
    assert q["same_answer_as_dense"] == pytest.approx(1 / 3)
    assert q["identical_to_dense"] == pytest.approx(1 / 3)
    assert q["mean_common_prefix"] == pytest.approx((4 + 2 + 1) / 3)
    assert q["loop_or_cap_share"] == pytest.approx(1 / 3)
    assert quality_vs(dense, dense)["identical_to_dense"] == 1.0


def test_quality_with_no_reference_reports_loops_only():
    q = quality_vs([row("a", [1, 2], "x")], [])
    assert q == {"loop_or_cap_share": 0.0}


def test_medians_over_repeats():
    runs = [{"policy": "dense", "run_dir": f"r{i}", "requests_per_s": v, "ok": True} for i, v in enumerate([3.0, 1.0, 2.0])]
    s = summarize_repeats(runs)
    assert s["requests_per_s"] == 2.0 and s["repeats"] == 3 and s["run_dirs"] == ["r0", "r1", "r2"] and s["ok"] is True


def test_suite_presets_fill_only_what_the_user_left_out():
    from memshare.bench import OPTION_DEFAULTS, SUITES, resolve_options
    from memshare.errors import UserError

    given = {k: None for k in OPTION_DEFAULTS}
    plain = resolve_options(None, given)
    assert plain == OPTION_DEFAULTS
    samples = resolve_options("samples", {**given, "temperature": 0.0})
    assert samples["samples"] == 4 and samples["top_p"] == 0.95 and samples["limit"] == 8
    assert samples["temperature"] == 0.0  # explicit wins, even when it equals the default
    assert resolve_options("throughput", given)["repeats"] == SUITES["throughput"]["repeats"]
    with pytest.raises(UserError, match="unknown suite"):
        resolve_options("nope", given)


def test_steps_speedup_is_against_vanilla_and_bound_achieved_is_the_share_of_the_possible_gain():
    from memshare.bench.metrics import add_ratios

    runs = {"vanilla": {"engine_steps": 300, "mean_running_requests": 4.0},
            "dense": {"engine_steps": 300, "mean_running_requests": 4.0},
            "memshare": {"engine_steps": 200, "mean_running_requests": 5.0, "affected_ratio": 0.5}}
    add_ratios(runs)
    m = runs["memshare"]
    assert m["steps_speedup_vs_vanilla"] == pytest.approx(1.5) and m["steps_speedup_vs_dense"] == pytest.approx(1.5)
    assert m["ideal_gain"] == pytest.approx(2.0) and m["concurrency_gain"] == pytest.approx(1.25)
    assert m["bound_achieved"] == pytest.approx(0.25)
    assert runs["vanilla"]["steps_speedup_vs_vanilla"] == 1.0 and runs["vanilla"]["bound_achieved"] is None
