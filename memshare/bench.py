"""``memshare bench``: generate with each policy on the same prompts, grade, and compare.

Each policy runs in a child process (``memshare.engine.batch``); this module never imports
vLLM, so bad input fails fast and cleanly. Samples land in the run folder as they finish;
a rerun resumes. When both ``memshare`` and ``random`` are asked for, ``memshare`` runs
first and ``random`` is matched to its measured affected ratio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.data import FieldMap, Problem, load_problems
from memshare.errors import UserError
from memshare.results import RunDir, run_name, write_json

ALL_POLICIES = ("vanilla", "dense", "random", "memshare")
# Preset workloads for `memshare bench --suite NAME`.
SUITES = {
    "throughput": {"limit": 32, "kv_blocks": 96, "policy": "vanilla,dense,random,memshare", "repeats": 3,
                   "max_tokens": 512},
    # avg@k-style sampling: siblings of one prompt share its prefix (vanilla: prefix caching) and,
    # with MemShare, same-position blocks; the pool makes vanilla preempt.
    "samples": {"limit": 8, "samples": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 512, "kv_blocks": 96,
                "policy": "vanilla,dense,random,memshare", "repeats": 1},
}


# What an option left out (None) becomes when no suite sets it.
OPTION_DEFAULTS = {"limit": 16, "kv_blocks": None, "policy": "dense,memshare", "repeats": 1, "max_tokens": 512,
                   "samples": 1, "temperature": 0.0, "top_p": 1.0}


def resolve_options(suite: str | None, given: dict[str, Any]) -> dict[str, Any]:
    """Options for ``BenchConfig``: what the user gave wins, then the suite's preset, then defaults.

    ``given`` maps option names to the user's value, None where the option was left out.
    """
    if suite is not None and suite not in SUITES:
        raise UserError(f"unknown suite {suite!r}: use one of {', '.join(SUITES)}")
    preset = SUITES.get(suite, {}) if suite else {}
    out = dict(given)
    for key, default in OPTION_DEFAULTS.items():
        if out.get(key) is None:
            out[key] = preset.get(key, default)
    return out


@dataclass(frozen=True)
class BenchConfig:
    model: str = "smollm2-135m"
    dataset: str = "math500"
    data_file: str | None = None
    fields: FieldMap = FieldMap()
    limit: int | None = 16
    samples: int = 1
    max_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    block_size: int = 32
    kv_blocks: int | None = None
    max_num_seqs: int = 256
    policies: tuple[str, ...] = ("dense", "memshare")
    sharing: MemShareConfig = field(default_factory=MemShareConfig)
    out: str = "results"
    force: bool = False
    dtype: str = "auto"
    repeats: int = 1
    prefix_caching: bool = True

    def __post_init__(self) -> None:
        if self.samples < 1:
            raise UserError(f"--samples must be at least 1, got {self.samples}")
        if self.max_tokens < 1:
            raise UserError(f"--max-tokens must be at least 1, got {self.max_tokens}")
        if not 0.0 <= self.top_p <= 1.0 or self.top_p == 0.0:
            raise UserError(f"--top-p must be in (0, 1], got {self.top_p}")
        if self.temperature < 0:
            raise UserError(f"--temperature must be >= 0, got {self.temperature}")
        if self.block_size <= 0 or self.block_size % 16:
            raise UserError(f"--block-size must be a positive multiple of 16 (32 on CPU), got {self.block_size}")
        if self.repeats < 1:
            raise UserError(f"--repeats must be at least 1, got {self.repeats}")
        if self.max_num_seqs < 1:
            raise UserError(f"--max-num-seqs must be at least 1, got {self.max_num_seqs}")
        bad = [p for p in self.policies if p not in ALL_POLICIES]
        if bad or not self.policies:
            raise UserError(f"unknown policy {', '.join(bad) or '(none)'}: use a comma list of {', '.join(ALL_POLICIES)}")


Events = Callable[[str, dict[str, Any]], None]


def run_bench(cfg: BenchConfig, on_event: Events | None = None) -> list[dict[str, Any]]:
    """Run every policy in ``cfg.policies``; return one result dict per policy."""
    from memshare.models import resolve_model

    emit = on_event or (lambda kind, data: None)
    problems = load_problems(cfg.dataset, data_file=cfg.data_file, limit=cfg.limit, fields=cfg.fields, seed=cfg.seed)
    model_path = resolve_model(cfg.model, status=lambda msg: emit("status", {"message": msg}))
    prompts = _tokenize(model_path, problems)
    max_prompt = max(len(p) for p in prompts.values())
    max_model_len = -(-(max_prompt + cfg.max_tokens) // cfg.block_size) * cfg.block_size
    if cfg.kv_blocks is not None:
        need = max_model_len // cfg.block_size + 1
        if cfg.kv_blocks < need:
            raise UserError(f"--kv-blocks {cfg.kv_blocks} cannot hold one request of {max_model_len} tokens "
                            f"({need} blocks of {cfg.block_size} needed): raise it or lower --max-tokens")
    order = sorted(cfg.policies, key=lambda p: ("vanilla", "dense", "memshare", "random").index(p))
    reps: dict[str, list[dict[str, Any]]] = {p: [] for p in order}
    # NOTE: repeats alternate policies (d m r, d m r, ...) so machine noise hits all alike.
    for rep in range(cfg.repeats):
        for policy in order:
            sharing = _policy_config(cfg, policy, {p: v[0] for p, v in reps.items() if v})
            reps[policy].append(_run_one(cfg, policy, sharing, problems, prompts, model_path, max_model_len,
                                         emit, rep))
    results = {p: summarize_repeats(v) for p, v in reps.items()}
    add_ratios(results)
    add_quality_vs_dense(results, reps)
    return [results[p] for p in cfg.policies if p in results]


def summarize_repeats(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Median of every numeric metric over repeats; the first repeat's other fields."""
    import statistics

    out = dict(runs[0])
    out["repeats"] = len(runs)
    for key, value in runs[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            vals = [r[key] for r in runs if isinstance(r.get(key), (int, float))]
            out[key] = statistics.median(vals) if vals else None
    out["run_dirs"] = [r["run_dir"] for r in runs]
    return out


def add_ratios(results: dict[str, dict[str, Any]]) -> None:
    """Ratios against dense measured in the same invocation, and two ideal gains.

    ``ideal_gain`` = 1 / (1 - affected_ratio) (the "bound"): the concurrency gain if every
    output block were shared from the start and all KV were output blocks;
    ``concurrency_gain`` = mean running requests / dense's: what the freed blocks really
    allowed, i.e. the gain if decoding scaled perfectly with the number of running requests;
    ``bound_achieved`` = (concurrency_gain - 1) / (ideal_gain - 1). ``ideal_gain_achieved`` =
    (requests/s ratio - 1) / (ideal_gain - 1); ``concurrency_gain_achieved`` likewise for
    ``concurrency_gain``; None when the gain is under 1% (not a memory-bound run).
    ``steps_speedup_vs_vanilla`` = vanilla's engine steps / the run's: the speed-up of a
    decoder whose step time does not grow with the batch (a memory-bound GPU).
    """
    dense = results.get("dense") or results.get("vanilla")
    vanilla = results.get("vanilla")
    for r in results.values():
        for key, name in (("output_tokens_per_s", "speedup_vs_dense"), ("requests_per_s", "requests_speedup_vs_dense"),
                          ("mean_running_requests", "concurrency_gain")):
            base = dense.get(key) if dense else None
            r[name] = r[key] / base if base and r.get(key) is not None else None
        steps = r.get("engine_steps")
        for base, name in ((vanilla, "steps_speedup_vs_vanilla"), (dense, "steps_speedup_vs_dense")):
            base_steps = (base or {}).get("engine_steps")
            r[name] = base_steps / steps if steps and base_steps else None
        ratio = r.get("affected_ratio")
        r["ideal_gain"] = 1.0 / (1.0 - ratio) if ratio is not None and ratio < 1 else None
        gain = r.get("requests_speedup_vs_dense")
        for ideal in ("ideal_gain", "concurrency_gain"):
            bound = r.get(ideal)
            # NOTE: below a 1% gain (a run that is not memory-bound) the share is noise over noise.
            r[f"{ideal}_achieved"] = (gain - 1.0) / (bound - 1.0) if gain is not None and bound and bound > 1.01 else None
        bound, conc = r.get("ideal_gain"), r.get("concurrency_gain")
        # The share of the possible concurrency gain that sharing really bought.
        r["bound_achieved"] = (conc - 1.0) / (bound - 1.0) if conc is not None and bound and bound > 1.01 else None


def add_quality_vs_dense(results: dict[str, dict[str, Any]], reps: dict[str, list[dict[str, Any]]]) -> None:
    """Free-running quality against dense (first repeat): same answer, common prefix, loops."""
    base = reps.get("dense") or reps.get("vanilla")
    ref = _samples(base[0]) if base else []
    for policy, runs in reps.items():
        results[policy].update(quality_vs(_samples(runs[0]), ref))


def quality_vs(rows: list[dict[str, Any]], reference: list[dict[str, Any]]) -> dict[str, Any]:
    """Loop/cap share of ``rows``; same answer, mean common prefix and identical outputs against
    ``reference`` (matched by problem and sample)."""
    from memshare.analysis.loops import first_divergence, loop_period

    loops = sum(1 for r in rows if r.get("finish_reason") == "length" or loop_period(r["output_token_ids"]))
    out: dict[str, Any] = {"loop_or_cap_share": loops / len(rows) if rows else None}
    ref = {(str(r["problem_id"]), r["sample_index"]): r for r in reference}
    pairs = [(r, ref[k]) for r in rows if (k := (str(r["problem_id"]), r["sample_index"])) in ref]
    if not pairs:
        return out
    prefix = [first_divergence(a["output_token_ids"], b["output_token_ids"]) for a, b in pairs]
    out["same_answer_as_dense"] = sum(1 for a, b in pairs if a.get("extracted") == b.get("extracted")) / len(pairs)
    out["mean_common_prefix"] = sum(len(a["output_token_ids"]) if p is None else p
                                    for p, (a, _) in zip(prefix, pairs)) / len(pairs)
    out["identical_to_dense"] = sum(1 for p in prefix if p is None) / len(pairs)
    return out


def _samples(run: dict[str, Any]) -> list[dict[str, Any]]:
    return RunDir(Path(run["run_dir"])).load_samples()


def _policy_config(cfg: BenchConfig, policy: str, done: dict[str, dict[str, Any]]) -> MemShareConfig | None:
    if policy == "vanilla":
        return None
    sharing = cfg.sharing.replace(policy=policy, block_size=cfg.block_size, seed=cfg.seed)
    if policy == "random" and "memshare" in done:
        sharing = sharing.replace(random_rate=min(1.0, float(done["memshare"].get("affected_ratio") or 0.0)))
    return sharing


def _tokenize(model_path: str, problems: list[Problem]) -> dict[str, list[int]]:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    out = {}
    for p in problems:
        ids = tok.apply_chat_template([{"role": "user", "content": p.prompt}], add_generation_prompt=True, tokenize=True)
        out[p.id] = [int(i) for i in (ids["input_ids"] if hasattr(ids, "keys") else ids)]
    return out


def _run_one(cfg: BenchConfig, policy: str, sharing: MemShareConfig | None, problems: list[Problem],
             prompts: dict[str, list[int]], model_path: str, max_model_len: int, emit: Events,
             rep: int = 0) -> dict[str, Any]:
    from memshare.engine.protocol import BatchSpec, EngineSettings, Job, SamplingSpec

    engine = EngineSettings(model=model_path, block_size=cfg.block_size, kv_blocks=cfg.kv_blocks,
                            max_num_seqs=cfg.max_num_seqs, max_model_len=max_model_len, seed=cfg.seed,
                            dtype=cfg.dtype, prefix_caching=cfg.prefix_caching)
    sampling = SamplingSpec(max_tokens=cfg.max_tokens, temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed)
    params = {"engine": {**engine.to_dict(), "model": cfg.model}, "sampling": sampling.to_dict(),
              "samples": cfg.samples, "limit": cfg.limit, "data_file": cfg.data_file,
              # NOTE: sharing settings do not change a dense run: keep them out of its folder name.
              "sharing": sharing.to_dict() if sharing and policy not in ("dense", "vanilla") else policy}
    if cfg.repeats > 1:
        params["repeat"] = rep
    run = RunDir(Path(cfg.out) / run_name(cfg.dataset, cfg.model, policy, params))
    kind = problems[0].kind if problems else "math"
    run.prepare({"policy": policy, "dataset": cfg.dataset, "kind": kind, "model": cfg.model, **params}, cfg.force)
    done = {(str(r["problem_id"]), int(r["sample_index"])) for r in run.load_samples()}
    jobs = [Job(f"{p.id}#{s}", p.id, s, prompts[p.id])
            for p in problems for s in range(cfg.samples) if (p.id, s) not in done]
    label = policy if cfg.repeats == 1 else f"{policy}#{rep + 1}"
    emit("policy", {"policy": label, "total": len(problems) * cfg.samples, "done": len(done), "run_dir": str(run.path)})
    report: dict[str, Any] = {}
    if jobs:
        spec = BatchSpec(engine, sharing.to_dict() if sharing else None, sampling, jobs, str(run.samples_path),
                         dataset=cfg.dataset, kind=kind)
        report = _spawn(spec, emit, label)
        write_json(run.metrics_path, {"engine": report, "status": "generated, not graded"})
        report["resumed_from"] = len(done)
    elif run.metrics_path.exists():
        report = json.loads(run.metrics_path.read_text()).get("engine", {})
    rows = _grade(run, problems, emit)
    metrics = _metrics(policy, cfg, problems, rows, report, run)
    write_json(run.metrics_path, {**metrics, "engine": report})
    return metrics


def _spawn(spec: Any, emit: Events, policy: str) -> dict[str, Any]:
    from memshare.engine.protocol import Done, Failed, Progress, decode_event

    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec.to_dict(), fh)
        spec_path = fh.name
    env = dict(os.environ, PYTHONUNBUFFERED="1", VLLM_ENABLE_V1_MULTIPROCESSING="0")
    env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    proc = subprocess.Popen([sys.executable, "-m", "memshare.engine.batch", spec_path], stdout=subprocess.PIPE,
                            stderr=log, text=True, env=env)
    report: dict[str, Any] | None = None
    error = None
    try:
        for line in proc.stdout:
            event = decode_event(line)
            if isinstance(event, Progress):
                emit("progress", {"policy": policy, **event.to_dict()})
            elif isinstance(event, Done):
                report = event.report
            elif isinstance(event, Failed):
                error = event.message
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
        os.unlink(spec_path)
    if error:
        raise UserError(f"{policy}: {error}")
    if proc.returncode != 0 or report is None:
        log.seek(0)
        tail = [ln for ln in log.read().splitlines() if ln.strip()][-1:] or ["(no output)"]
        raise UserError(f"{policy}: the engine process failed (exit {proc.returncode}): {tail[0][:300]} "
                        f"[full log: {log.name}]")
    os.unlink(log.name)
    return report


def _grade(run: RunDir, problems: list[Problem], emit: Events) -> list[dict[str, Any]]:
    from evaluators import grade_detailed

    by_id = {p.id: p for p in problems}
    rows = run.load_samples()
    changed = False
    for row in rows:
        p = by_id.get(str(row["problem_id"]))
        if p is None or "correct" in row:
            continue
        res = grade_detailed(row["response"], p.gold, p.kind)
        row.update(gold=p.gold, extracted=res.extracted, correct=res.correct, reason=res.reason)
        changed = True
    if changed:
        run.rewrite_samples(rows)
    emit("graded", {"num": len(rows)})
    return rows


def _metrics(policy: str, cfg: BenchConfig, problems: list[Problem], rows: list[dict[str, Any]],
             report: dict[str, Any], run: RunDir) -> dict[str, Any]:
    wanted = {p.id for p in problems}
    rows = [r for r in rows if str(r["problem_id"]) in wanted]
    graded = [r for r in rows if "correct" in r]
    n_correct = sum(1 for r in graded if r["correct"])
    wall = report.get("wall_s") or 0.0
    out_tokens = report.get("output_tokens", 0)
    n_req = report.get("num_requests", 0)
    lengths = [r["output_tokens"] for r in rows]
    return {
        "policy": policy, "model": cfg.model, "dataset": cfg.dataset, "num_prompts": len(problems),
        "samples": cfg.samples, "run_dir": str(run.path),
        "num_graded": len(graded), "num_correct": n_correct,
        "accuracy": n_correct / len(graded) if graded else None,
        "output_tokens": out_tokens, "wall_s": wall,
        "output_tokens_per_s": out_tokens / wall if wall else None,
        "requests_per_s": n_req / wall if wall else None,
        "mean_output_tokens": sum(lengths) / len(lengths) if lengths else None,
        "hit_token_cap": sum(1 for r in rows if r.get("finish_reason") == "length"),
        "mean_ttft_s": _mean([r["ttft_s"] for r in rows]),
        "bookkeeping_share_of_step": _bookkeeping(report),
        "mean_tpot_s": _mean([(r["latency_s"] - r["ttft_s"]) / max(r["output_tokens"] - 1, 1) for r in rows]),
        **{k: report.get(k) for k in ("peak_kv_blocks", "num_preemptions", "mean_running_requests",
                                       "kv_blocks_per_running", "affected_ratio", "shared_blocks", "freed_blocks", "leaked_blocks",
                                       "stage1_ms_per_step", "stage2_ms_per_step", "remap_ms_per_step",
                                       "step_ms", "engine_steps", "kv_blocks_total", "resumed_from",
                                       "prefix_caching")},
        "prefix_cached_tokens": sum(r.get("num_cached_tokens") or 0 for r in rows),
    }


def _bookkeeping(report: dict[str, Any]) -> float | None:
    """MemShare's own time per step (Stage 1, Stage 2, remap) as a share of the step's wall time."""
    step = report.get("step_ms")
    parts = [report.get(k) for k in ("stage1_ms_per_step", "stage2_ms_per_step", "remap_ms_per_step")]
    if not step or any(p is None for p in parts):
        return None
    return sum(parts) / step


def _mean(xs: list[float]) -> float | None:
    return sum(xs) / len(xs) if xs else None


def config_dict(cfg: BenchConfig) -> dict[str, Any]:
    d = asdict(cfg)
    d["sharing"] = cfg.sharing.to_dict()
    return d
