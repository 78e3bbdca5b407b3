"""``memshare report`` on run folders written by the tests: tables, JSON, plots, bad input."""

from __future__ import annotations

import json

import pytest
from test_exp_helpers import snapshot, write_run
from typer.testing import CliRunner

from memshare_cli.main import app


@pytest.fixture
def runner():
    return CliRunner()


@pytest.fixture
def results(tmp_path):
    root = tmp_path / "results"
    dense = write_run(root, "dense", correct=6)
    # The samples were re-graded after bench wrote metrics.json: 4 right, not the stored 0.9.
    ms = write_run(root, "memshare", correct=4, stored_accuracy=0.9)
    return root, dense, ms


def test_json_recomputes_accuracy_and_speedup_from_a_parent_folder(runner, results, tmp_path):
    root, dense, ms = results
    res = runner.invoke(app, ["report", str(root), "--json", "--plots", str(tmp_path / "plots")])
    assert res.exit_code == 0, res.output
    runs = {r["policy"]: r for r in json.loads(res.stdout)["runs"]}
    assert set(runs) == {"dense", "memshare"}
    assert runs["memshare"]["accuracy"] == pytest.approx(0.4)
    assert runs["memshare"]["num_correct"] == 4 and runs["memshare"]["num_graded"] == 10
    assert runs["dense"]["accuracy"] == pytest.approx(0.6)
    assert runs["memshare"]["requests_speedup_vs_dense"] == pytest.approx(0.6 / 0.5)
    assert runs["memshare"]["speedup_vs_dense"] == pytest.approx(120 / 100)
    assert runs["dense"]["speedup_vs_dense"] == pytest.approx(1.0)
    assert runs["memshare"]["dense_run_dir"] == str(dense) and runs["memshare"]["run_dir"] == str(ms)
    assert runs["memshare"]["affected_ratio"] == pytest.approx(0.12)
    for name in ("accuracy_vs_affected.png", "throughput.png"):
        assert (tmp_path / "plots" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_table_side_by_side_with_default_plot_folder(runner, results):
    root, dense, ms = results
    res = runner.invoke(app, ["report", str(ms), str(dense)])
    assert res.exit_code == 0, res.output
    assert "memshare report" in res.stdout and "40.0%" in res.stdout and "60.0%" in res.stdout
    assert "1.20" in res.stdout and ms.name in res.stdout
    assert (root / "report" / "throughput.png").is_file()
    # The plot folder is not a run folder: a second report of the parent skips it.
    assert runner.invoke(app, ["report", str(root), "--no-plots"]).exit_code == 0


def test_no_speedup_without_a_dense_run_of_the_same_workload(runner, tmp_path):
    ms = write_run(tmp_path / "a", "memshare")
    dense = write_run(tmp_path / "b", "dense", limit=20)  # another workload
    res = runner.invoke(app, ["report", str(ms), str(dense), "--json", "--no-plots"])
    runs = {r["policy"]: r for r in json.loads(res.stdout)["runs"]}
    assert runs["memshare"]["speedup_vs_dense"] is None and runs["memshare"]["dense_run_dir"] is None
    assert json.loads(res.stdout)["plots"] == []


def test_single_run_makes_no_plots(runner, tmp_path):
    ms = write_run(tmp_path, "memshare")
    res = runner.invoke(app, ["report", str(ms), "--json"])
    assert res.exit_code == 0 and json.loads(res.stdout)["plots"] == []
    assert sorted(p.name for p in tmp_path.iterdir()) == [ms.name]


def test_torn_last_line_is_ignored_and_left_alone(runner, tmp_path):
    ms = write_run(tmp_path, "memshare", correct=3)
    with (ms / "samples.jsonl").open("a") as fh:
        fh.write('{"problem_id": "99", "sample_index": 0, "corr')
    before = snapshot(tmp_path)
    res = runner.invoke(app, ["report", str(ms), "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["runs"][0]["accuracy"] == pytest.approx(0.3)
    assert snapshot(tmp_path) == before


def _schema(run):
    cfg = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**cfg, "schema_version": 99}))


def _corrupt_metrics(run):
    (run / "metrics.json").write_text("{not json")


def _corrupt_samples(run):
    (run / "samples.jsonl").write_text('{"problem_id": "0", "correct": true}\n{oops}\n')


def _unfinished(run):
    (run / "metrics.json").unlink()


@pytest.mark.parametrize("breaker, message", [
    (_schema, "written by results schema 99, this memshare reads schema 1"),
    (_corrupt_metrics, "metrics.json: not valid JSON"),
    (_corrupt_samples, "samples.jsonl line 2: not valid JSON"),
    (_unfinished, "no metrics.json"),
])
def test_bad_run_folder_is_one_line_exit_2_nothing_modified(runner, results, breaker, message):
    root, dense, ms = results
    breaker(ms)
    before = snapshot(root)
    res = runner.invoke(app, ["report", str(root)])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error:") and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert snapshot(root) == before and not (root / "report").exists()


def test_folder_that_is_not_a_run_folder(runner, tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    for target, message in ((tmp_path / "empty", "not a run folder and holds none"),
                            (tmp_path / "nope", "no such folder")):
        res = runner.invoke(app, ["report", str(target)])
        assert res.exit_code == 2 and message in res.stderr, res.output


def _replay_run(root, policy, flipped):
    """A replay run folder with logprobs: request 0's top-1 differs from dense's at ``flipped`` of 10 positions."""
    import numpy as np

    path = write_run(root, policy, n=2)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps({**config, "replay": "/traces/r1.jsonl"}))
    (path / "logprobs").mkdir()
    for i in range(2):
        top_ids = np.tile(np.arange(4, dtype=np.int32), (10, 1))
        if i == 0:
            top_ids[:flipped] = top_ids[:flipped, ::-1]  # another token ranks first
        np.savez(path / "logprobs" / f"{i}#0.npz",
                 token_logprob=np.full(10, -1.0, np.float32), token_rank=np.ones(10, np.int32), top_ids=top_ids,
                 top_logprobs=np.log(np.tile(np.float32([0.4, 0.3, 0.2, 0.1]), (10, 1))))
    return path


def test_replay_runs_get_teacher_forced_fidelity_against_dense(runner, tmp_path):
    dense = _replay_run(tmp_path, "dense", flipped=0)
    ms = _replay_run(tmp_path, "memshare", flipped=3)
    res = runner.invoke(app, ["report", str(tmp_path), "--json", "--no-plots"])
    assert res.exit_code == 0, res.output
    runs = {r["policy"]: r for r in json.loads(res.stdout)["runs"]}
    assert runs["dense"]["top1_agreement"] == pytest.approx(1.0)
    assert runs["memshare"]["top1_agreement"] == pytest.approx(17 / 20)
    assert runs["memshare"]["topk_kl"] > 0 and runs["dense"]["topk_kl"] == pytest.approx(0.0)
    table = runner.invoke(app, ["report", str(ms), str(dense), "--no-plots"])
    assert "teacher-forced fidelity" in table.stdout and "0.8500" in table.stdout
    # Not a replay (no "replay" in config.json): no fidelity columns, even with logprobs present.
    plain = write_run(tmp_path / "plain", "memshare")
    res = runner.invoke(app, ["report", str(plain), "--json", "--no-plots"])
    assert "top1_agreement" not in json.loads(res.stdout)["runs"][0]
