"""``memshare regress``: pass, fail and malformed-baseline cases on run folders written by the tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_exp_helpers import snapshot, write_run
from typer.testing import CliRunner

from memshare.experiments.regress import POLICIES, load_baseline, parse_baseline
from memshare_cli.main import app

REPO = Path(__file__).resolve().parents[2]


def baseline(**memshare):
    rules = {"accuracy": {"value": 0.5, "max_drop": 0.05}, "requests_speedup_vs_dense": {"min": 1.0},
             "affected_ratio": {"value": 0.1, "tolerance": 0.05}, "leaked_blocks": {"max": 0}}
    return {"schema_version": 1, "model": "smollm2-135m", "dataset": "math500",
            "policies": {"dense": {"leaked_blocks": {"max": 0}}, "memshare": {**rules, **memshare}}}


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, tmp_path, base, runs, *extra):
    path = tmp_path / "baseline.json"
    path.write_text(json.dumps(base) if isinstance(base, dict) else base)
    return runner.invoke(app, ["regress", "--baseline", str(path), *map(str, runs), *extra])


@pytest.fixture
def ci(tmp_path):
    root = tmp_path / "ci"
    write_run(root, "dense", correct=6)
    return root


def test_everything_within_tolerance_exits_0(runner, tmp_path, ci):
    write_run(ci, "memshare", correct=5)
    res = invoke(runner, tmp_path, baseline(accuracy={"value": 0.53, "max_drop": 0.03}), [ci])
    assert res.exit_code == 0, res.output
    assert "no regression" in res.stdout and "FAIL" not in res.stdout
    assert "accuracy" in res.stdout and ">= 0.5" in res.stdout and "0.05 .. 0.15" in res.stdout


def test_accuracy_drop_beyond_tolerance_exits_1_naming_the_metric(runner, tmp_path, ci):
    write_run(ci, "memshare", correct=4)
    before = snapshot(ci)
    res = invoke(runner, tmp_path, baseline(), [ci])
    assert res.exit_code == 1, res.output
    assert res.stderr.strip() == "error: regression in memshare accuracy"
    assert "FAIL" in res.stdout and "0.4" in res.stdout and ">= 0.45" in res.stdout
    assert snapshot(ci) == before


@pytest.mark.parametrize("metrics, failed", [
    ({"requests_per_s": 0.45}, "memshare requests_speedup_vs_dense"),   # 0.9x dense
    ({"affected_ratio": 0.2}, "memshare affected_ratio"),
    ({"leaked_blocks": 1}, "memshare leaked_blocks"),
])
def test_other_regressions(runner, tmp_path, ci, metrics, failed):
    write_run(ci, "memshare", correct=5, metrics=metrics)
    res = invoke(runner, tmp_path, baseline(), [ci], "--json")
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    assert out["passed"] is False and out["failed"] == [failed]


def test_speedup_needs_the_dense_run_among_the_runs(runner, tmp_path):
    ms = write_run(tmp_path / "ci", "memshare", correct=5)
    res = invoke(runner, tmp_path, baseline(), [ms], "--json")
    assert res.exit_code == 1
    out = json.loads(res.stdout)
    verdicts = {(c["policy"], c["metric"]): c["verdict"] for c in out["checks"]}
    assert verdicts[("memshare", "requests_speedup_vs_dense")] == "missing"
    assert verdicts[("dense", "leaked_blocks")] == "missing"
    assert verdicts[("memshare", "accuracy")] == "pass"


def test_json_rows(runner, tmp_path, ci):
    write_run(ci, "memshare", correct=5)
    res = invoke(runner, tmp_path, baseline(), [ci], "--json")
    out = json.loads(res.stdout)
    assert out["passed"] is True and out["failed"] == [] and out["num_runs"] == 2
    acc = next(c for c in out["checks"] if c["metric"] == "accuracy")
    assert acc["baseline"] == 0.5 and acc["measured"] == pytest.approx(0.5) and acc["min"] == pytest.approx(0.45)
    assert acc["max"] is None and acc["verdict"] == "pass"


def test_no_run_of_the_baseline_model_is_bad_input(runner, tmp_path, ci):
    res = invoke(runner, tmp_path, {**baseline(), "model": "r1-distill-qwen-1.5b"}, [ci])
    assert res.exit_code == 2 and "no run of model r1-distill-qwen-1.5b" in res.stderr


def _without(d, key):
    return {k: v for k, v in d.items() if k != key}


@pytest.mark.parametrize("base, message", [
    ("{oops", "not valid JSON"),
    ("[1, 2]", "expected a JSON object"),
    (_without(baseline(), "schema_version"), 'missing "schema_version"'),
    ({**baseline(), "schema_version": 2}, "baseline schema 2"),
    (_without(baseline(), "policies"), '"policies" must be a non-empty object'),
    ({**baseline(), "policies": ["memshare"]}, '"policies" must be a non-empty object'),
    ({**baseline(), "policies": {"fancy": {"accuracy": {"min": 0}}}}, "unknown policy 'fancy'"),
    ({**baseline(), "modle": "x"}, "unknown field 'modle'"),
    (baseline(acuracy={"min": 0.1}), "unknown metric 'acuracy' in policies.memshare"),
    (baseline(accuracy={"max_drop": 0.1}), "policies.memshare.accuracy: max_drop needs a \"value\""),
    (baseline(accuracy={"value": 0.5}), '"value" needs max_drop, max_rise or tolerance'),
    (baseline(accuracy={"value": "0.5", "max_drop": 0.1}), "policies.memshare.accuracy.value must be a number"),
    (baseline(accuracy={"value": 0.5, "max_drop": -0.1}), "max_drop must be >= 0"),
    (baseline(accuracy={"value": 0.5, "max_dorp": 0.1}), "unknown field 'max_dorp'"),
    (baseline(accuracy=0.5), "expected an object"),
    (baseline(accuracy={"min": True}), "must be a number"),
    (baseline(accuracy={"min": 0.6, "max": 0.4}), "empty range"),
    ({**baseline(), "model": 3}, '"model" must be a string'),
])
def test_malformed_baseline_is_one_line_exit_2(runner, tmp_path, ci, base, message):
    write_run(ci, "memshare", correct=5)
    before = snapshot(ci)
    res = invoke(runner, tmp_path, base, [ci])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error:") and message in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert snapshot(ci) == before


def test_missing_baseline_file(runner, tmp_path, ci):
    res = runner.invoke(app, ["regress", "--baseline", str(tmp_path / "none.json"), str(ci)])
    assert res.exit_code == 2 and "file not found" in res.stderr


def test_the_shipped_example_baseline_parses_and_says_it_is_a_placeholder():
    b = load_baseline(REPO / "results" / "baselines" / "smollm2-math500.json")
    assert (b.model, b.dataset) == ("smollm2-135m", "math500")
    metrics = {(r.policy, r.metric) for r in b.rules}
    assert {("memshare", "accuracy"), ("memshare", "requests_speedup_vs_dense"), ("memshare", "affected_ratio"),
            ("memshare", "leaked_blocks")} <= metrics
    data = json.loads((REPO / "results" / "baselines" / "smollm2-math500.json").read_text())
    assert "PLACEHOLDER" in data["note"]


def test_rule_ranges():
    rules = {r.metric: r for r in parse_baseline(baseline(peak_kv_blocks={"value": 60, "max_rise": 4, "min": 10}))
             .rules if r.policy == "memshare"}
    assert (rules["accuracy"].lo, rules["accuracy"].hi) == (pytest.approx(0.45), None)
    assert (rules["affected_ratio"].lo, rules["affected_ratio"].hi) == (pytest.approx(0.05), pytest.approx(0.15))
    assert (rules["leaked_blocks"].lo, rules["leaked_blocks"].hi) == (None, 0)
    assert (rules["peak_kv_blocks"].lo, rules["peak_kv_blocks"].hi) == (10, 64)
    assert rules["leaked_blocks"].allowed() == "<= 0" and not rules["leaked_blocks"].allows(1)


def test_policy_names_match_bench():
    from memshare.bench import ALL_POLICIES

    assert set(POLICIES) == set(ALL_POLICIES)


def test_gpu_workflow_runs_bench_then_regress():
    text = (REPO / ".github" / "workflows" / "gpu-regression.yml").read_text()
    assert "self-hosted" in text and "gpu" in text and ".[gpu,dev]" in text
    assert "memshare bench --model r1-distill-qwen-1.5b --dataset math500 --limit 64 --policy dense,memshare" in text
    assert "memshare regress --baseline" in text and "upload-artifact" in text
