"""``memshare ablate``: grid parsing, the Pareto front, and the orchestration with ``run_bench``
replaced by a deterministic fake (no engine)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memshare import bench
from memshare.bench.metrics import ratios
from memshare.errors import UserError
from memshare.experiments.grid import DEFAULT_PAIRS, grid_points, pareto_front, parse_choices, parse_pairs
from memshare_cli.main import app

PNG = b"\x89PNG\r\n\x1a\n"


# --- grid parsing ---------------------------------------------------------------------------

def test_pairs():
    assert parse_pairs(None) == DEFAULT_PAIRS == ((0.7, 0.7), (0.8, 0.8), (0.9, 0.8), (0.9, 0.9))
    assert parse_pairs("0.7/0.7, 0.8/1.5,0.7/0.7") == ((0.7, 0.7), (0.8, 1.5))
    assert parse_pairs("0/0,1/2") == ((0.0, 0.0), (1.0, 2.0))


@pytest.mark.parametrize("text, message", [
    ("", "--pairs needs at least one"),
    ("0.8", "'0.8' is not STEP/BLOCK"),
    ("0.8/0.8/0.8", "is not STEP/BLOCK"),
    ("a/0.8", "'a/0.8' is not STEP/BLOCK"),
    ("1.1/0.8", "step threshold 1.1 is outside [0, 1]"),
    ("-0.1/0.8", "step threshold -0.1 is outside [0, 1]"),
    ("0.8/2.5", "block threshold 2.5 is outside [0, 2]"),
    ("nan/0.5", "step threshold nan is outside"),
])
def test_bad_pairs(text, message):
    with pytest.raises(UserError) as exc:
        parse_pairs(text)
    assert message in str(exc.value)


def test_choices_and_grid_labels():
    assert parse_choices("cosine, euclidean,cosine", "--metrics", "metric", ("euclidean", "cosine")) == \
        ("cosine", "euclidean")
    with pytest.raises(UserError, match="unknown metric 'manhattan' in --metrics"):
        parse_choices("euclidean,manhattan", "--metrics", "metric", ("euclidean", "cosine"))
    pts = grid_points(((0.8, 0.8), (0.9, 0.9)), ("tokenizer",), ("euclidean", "cosine"), ("k_unrope",))
    assert [p["label"] for p in pts] == ["0.8/0.8 euclidean", "0.8/0.8 cosine", "0.9/0.9 euclidean", "0.9/0.9 cosine"]
    assert pts[1] == {"label": "0.8/0.8 cosine", "step_threshold": 0.8, "block_threshold": 0.8,
                      "encoder": "tokenizer", "metric": "cosine", "distance": "k_unrope"}


# --- Pareto front ---------------------------------------------------------------------------

def test_pareto_front_exact_points():
    pts = [{"n": "dense", "affected_ratio": None, "accuracy": 0.50},
           {"n": "a", "affected_ratio": 0.10, "accuracy": 0.50},   # dominates dense (more shared, same accuracy)
           {"n": "b", "affected_ratio": 0.20, "accuracy": 0.45},
           {"n": "c", "affected_ratio": 0.20, "accuracy": 0.40},   # dominated by b
           {"n": "d", "affected_ratio": 0.15, "accuracy": 0.44},   # dominated by b
           {"n": "e", "affected_ratio": 0.30, "accuracy": 0.30},
           {"n": "e2", "affected_ratio": 0.30, "accuracy": 0.30},  # equal points are both kept
           {"n": "f", "affected_ratio": 0.25, "accuracy": None}]   # no accuracy: left out
    assert [p["n"] for p in pareto_front(pts)] == ["a", "b", "e", "e2"]
    assert pareto_front([]) == []
    assert [p["n"] for p in pareto_front(pts[:1])] == ["dense"]


# --- orchestration with a fake run_bench ----------------------------------------------------

class FakeBench:
    """Deterministic results: stricter thresholds share less and keep more accuracy."""

    def __init__(self, leak: bool = False):
        self.calls: list[bench.BenchConfig] = []
        self.leak = leak

    def __call__(self, cfg, on_event=None, reference=None, engines=None):
        self.calls.append(cfg)
        (policy,) = cfg.policies
        s = cfg.sharing
        if on_event:
            on_event("policy", {"policy": policy, "total": 4, "done": 0, "run_dir": "x"})
        if policy == "dense":
            m = dict(accuracy=0.5, affected_ratio=0.0, requests_per_s=1.0, output_tokens_per_s=100.0)
        elif policy == "memshare":
            m = dict(accuracy=round(0.3 + 0.2 * s.step_threshold, 6),
                     affected_ratio=round(0.4 - 0.3 * s.step_threshold + 0.1 * s.block_threshold, 6),
                     requests_per_s=1.2, output_tokens_per_s=110.0, leaked_blocks=int(self.leak))
        else:
            m = dict(accuracy=0.3, affected_ratio=s.random_rate, requests_per_s=1.1, output_tokens_per_s=105.0)
        row = {"policy": policy, "run_dir": f"{cfg.out}/{policy}-{s.step_threshold}-{s.block_threshold}",
               "leaked_blocks": 0, "kv_budget": cfg.kv_blocks, **m}
        if cfg.replay:  # replay runs grade by agreement with dense; a tighter pool makes sharing no worse here
            row["top1_agreement"] = 1.0 if policy == "dense" else m["accuracy"] + 0.4
            row["steps_speedup_vs_dense"] = 1.0 if policy == "dense" else 1.0 + 8.0 / cfg.kv_blocks
        # As run_bench does: ratios against the dense run of this call, else the reference.
        row.update(ratios(row, row if policy == "dense" else reference, None))
        return [row]


@pytest.fixture
def fake(monkeypatch):
    f = FakeBench()
    monkeypatch.setattr(bench, "run_bench", f)
    return f


def test_ablation_runs_dense_once_matches_random_and_writes_plots(fake, tmp_path):
    out = tmp_path / "abl"
    res = CliRunner().invoke(app, ["ablate", "--out", str(out), "--limit", "4", "--quiet"])
    assert res.exit_code == 0, res.output
    assert [c.policies for c in fake.calls] == [("dense",)] + [("memshare",), ("random",)] * 4
    assert all(c.out == str(out / "runs") and c.limit == 4 for c in fake.calls)
    ms = [c for c in fake.calls if c.policies == ("memshare",)]
    assert [(c.sharing.step_threshold, c.sharing.block_threshold) for c in ms] == list(DEFAULT_PAIRS)
    summary = json.loads((out / "ablation.json").read_text())
    points = summary["points"]
    assert [p["policy"] for p in points] == ["dense"] + ["memshare", "random"] * 4
    for m, r, call in zip(points[1::2], points[2::2], fake.calls[2::2]):
        assert r["random_rate"] == m["affected_ratio"] == call.sharing.random_rate
        assert r["label"] == m["label"] and call.sharing.step_threshold == m["step_threshold"]
    assert points[1]["requests_speedup_vs_dense"] == pytest.approx(1.2)
    assert points[2]["speedup_vs_dense"] == pytest.approx(1.05)
    assert summary["pareto"] == ["dense dense", "memshare 0.9/0.9", "memshare 0.8/0.8", "memshare 0.7/0.7"]
    assert [p["pareto"] for p in points if p["policy"] == "memshare"] == [True, True, False, True]
    for name in ("accuracy_vs_affected.png", "throughput_vs_thresholds.png"):
        assert (out / name).read_bytes()[:8] == PNG
    assert "0.9/0.8" in res.stdout and "memshare ablate" in res.stdout


def test_variants_json_and_no_random(fake, tmp_path):
    out = tmp_path / "abl"
    res = CliRunner().invoke(app, ["ablate", "--out", str(out), "--pairs", "0.8/0.8", "--encoders",
                                   "tokenizer,embedding", "--metrics", "cosine", "--distances", "k,kv",
                                   "--policies", "memshare", "--json"])
    assert res.exit_code == 0, res.output
    out_json = json.loads(res.stdout)
    assert [p["label"] for p in out_json["points"]] == ["0.8/0.8 tokenizer k", "0.8/0.8 tokenizer kv",
                                                        "0.8/0.8 embedding k", "0.8/0.8 embedding kv"]
    assert {(c.sharing.encoder, c.sharing.metric, c.sharing.distance) for c in fake.calls} == {
        ("tokenizer", "cosine", "k"), ("tokenizer", "cosine", "kv"), ("embedding", "cosine", "k"),
        ("embedding", "cosine", "kv")}
    assert all(p["requests_speedup_vs_dense"] is None for p in out_json["points"])  # no dense run
    assert (out / "throughput_vs_thresholds.png").is_file()


def test_leaked_blocks_exit_3(monkeypatch, tmp_path):
    monkeypatch.setattr(bench, "run_bench", FakeBench(leak=True))
    res = CliRunner().invoke(app, ["ablate", "--out", str(tmp_path / "abl"), "--pairs", "0.8/0.8", "--quiet"])
    assert res.exit_code == 3 and "KV blocks leaked in: memshare 0.8/0.8" in res.stderr


def test_default_out_folder(fake, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["ablate", "--pairs", "0.8/0.8", "--quiet", "--model", "org/Some-Model"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "results" / "ablate__math500__Some-Model" / "ablation.json").is_file()


@pytest.mark.parametrize("args, message", [
    (["--pairs", "0.8-0.8"], "--pairs: '0.8-0.8' is not STEP/BLOCK"),
    (["--pairs", "1.2/0.8"], "step threshold 1.2 is outside [0, 1]"),
    (["--pairs", "0.8/2.1"], "block threshold 2.1 is outside [0, 2]"),
    (["--encoders", "bert"], "unknown encoder 'bert' in --encoders"),
    (["--metrics", "l1"], "unknown metric 'l1' in --metrics"),
    (["--distances", "q"], "unknown distance 'q' in --distances"),
    (["--policies", "dense,vanilla"], "unknown policy 'vanilla' in --policies"),
    (["--policies", "dense,random"], "--policies must include memshare"),
    (["--samples", "0"], "--samples must be at least 1"),
])
def test_bad_input_is_one_line_exit_2_and_nothing_written(fake, tmp_path, args, message):
    res = CliRunner().invoke(app, ["ablate", "--out", str(tmp_path / "abl"), *args])
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error:") and message in res.stderr and len(res.stderr.strip().splitlines()) == 1
    assert fake.calls == [] and list(tmp_path.iterdir()) == []


def test_separate_random_call_gets_the_folder_bench_matching_would():
    from memshare.core.config import MemShareConfig

    cfg = bench.BenchConfig(sharing=MemShareConfig(step_threshold=0.9, block_threshold=0.8))
    joint = cfg.sharing_for("random", {"memshare": {"affected_ratio": 0.123}})
    alone = bench.BenchConfig(sharing=cfg.sharing.replace(random_rate=0.123)).sharing_for("random", {})
    assert joint == alone


def test_a_budget_list_runs_the_grid_at_every_budget_with_top1_on_a_replay(fake, tmp_path):
    out = tmp_path / "abl"
    traces = tmp_path / "t.jsonl"
    traces.write_text(json.dumps({"problem": "P", "reasoning": "r"}) + "\n")
    res = CliRunner().invoke(app, ["ablate", "--out", str(out), "--replay", str(traces), "--kv-blocks", "40,80",
                                   "--pairs", "0.8/0.8,0.5/0.8", "--policies", "dense,memshare", "--quiet"])
    assert res.exit_code == 0, res.output
    assert [(c.policies, c.kv_blocks) for c in fake.calls] == [
        (("dense",), 40), (("memshare",), 40), (("memshare",), 40),
        (("dense",), 80), (("memshare",), 80), (("memshare",), 80)]
    assert all(c.replay == str(traces) for c in fake.calls)
    summary = json.loads((out / "ablation.json").read_text())
    assert summary["config"]["budgets"] == [40, 80]
    # The front is taken per budget, on top-1 agreement.
    assert summary["pareto"] == ["dense dense @40", "memshare 0.8/0.8 @40", "memshare 0.5/0.8 @40",
                                 "dense dense @80", "memshare 0.8/0.8 @80", "memshare 0.5/0.8 @80"]
    assert (out / "thresholds_vs_budgets.png").read_bytes()[:8] == PNG
    assert "top-1 =dense" in res.stdout and "KV budget" in res.stdout
    bad = CliRunner().invoke(app, ["ablate", "--out", str(out), "--kv-blocks", "40,x"])
    assert bad.exit_code == 2 and "--kv-blocks" in bad.output
