"""``memshare regress``: compare saved runs with reference figures and tolerances.

A baseline file (JSON) names the workload and, per policy, the allowed range of each metric::

    {"schema_version": 1, "model": "smollm2-135m", "dataset": "math500",
     "policies": {"memshare": {"accuracy": {"value": 0.1, "max_drop": 0.03},
                               "requests_speedup_vs_dense": {"min": 1.0},
                               "affected_ratio": {"value": 0.1, "tolerance": 0.05},
                               "leaked_blocks": {"max": 0}}}}

Rule fields: ``value`` with ``max_drop`` (at least value - max_drop), ``max_rise`` (at most
value + max_rise) or ``tolerance`` (within value +- tolerance); ``min`` and ``max`` are absolute
bounds and combine with the others. Speedups are measured against the dense run of the same
workload among the runs checked together (``memshare.experiments.runs.add_speedups``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memshare.bench.run_metrics import RunMetrics
from memshare.core.config import ALL_POLICIES
from memshare.errors import UserError
from memshare.experiments.runs import load_runs
from memshare.results import read_json

BASELINE_SCHEMA = 1
POLICIES = ALL_POLICIES
METRICS = RunMetrics.numeric_names()
RULE_FIELDS = ("value", "max_drop", "max_rise", "tolerance", "min", "max")
TOP_FIELDS = ("schema_version", "model", "dataset", "description", "note", "policies")
EPS = 1e-9


@dataclass(frozen=True, slots=True)
class Rule:
    """Allowed range ``[lo, hi]`` of one metric for one policy (None: unbounded)."""

    policy: str
    metric: str
    value: float | None
    lo: float | None
    hi: float | None

    def allows(self, x: float) -> bool:
        return (self.lo is None or x >= self.lo - EPS) and (self.hi is None or x <= self.hi + EPS)

    def allowed(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"= {_g(self.lo)}" if self.lo == self.hi else f"{_g(self.lo)} .. {_g(self.hi)}"
        return f">= {_g(self.lo)}" if self.lo is not None else f"<= {_g(self.hi)}"


@dataclass(frozen=True, slots=True)
class Baseline:
    model: str | None
    dataset: str | None
    rules: tuple[Rule, ...]


def _g(x: float) -> str:
    return f"{x:.4g}"


def _number(x: Any, where: str, nonneg: bool = False) -> float:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        raise UserError(f"{where} must be a number, got {x!r}")
    if nonneg and x < 0:
        raise UserError(f"{where} must be >= 0, got {x!r}")
    return float(x)


def parse_rule(policy: str, metric: str, spec: Any, where: str) -> Rule:
    if not isinstance(spec, dict):
        raise UserError(f"{where}: expected an object such as {{\"value\": 0.5, \"max_drop\": 0.03}}, got {spec!r}")
    unknown = sorted(set(spec) - set(RULE_FIELDS))
    if unknown:
        raise UserError(f"{where}: unknown field {unknown[0]!r} (use {', '.join(RULE_FIELDS)})")
    f = {k: _number(v, f"{where}.{k}", nonneg=k in ("max_drop", "max_rise", "tolerance")) for k, v in spec.items()}
    relative = [k for k in ("max_drop", "max_rise", "tolerance") if k in f]
    if relative and "value" not in f:
        raise UserError(f"{where}: {relative[0]} needs a \"value\"")
    if "value" in f and not relative:
        raise UserError(f"{where}: \"value\" needs max_drop, max_rise or tolerance")
    if not f:
        raise UserError(f"{where}: empty rule (use {', '.join(RULE_FIELDS)})")
    lo, hi, v = f.get("min"), f.get("max"), f.get("value")
    if v is not None:
        drop, rise = f.get("max_drop", f.get("tolerance")), f.get("max_rise", f.get("tolerance"))
        if drop is not None:
            lo = v - drop if lo is None else max(lo, v - drop)
        if rise is not None:
            hi = v + rise if hi is None else min(hi, v + rise)
    if lo is not None and hi is not None and lo > hi:
        raise UserError(f"{where}: empty range ({_g(lo)} > {_g(hi)})")
    return Rule(policy, metric, v, lo, hi)


def parse_baseline(data: dict[str, Any], source: str = "baseline") -> Baseline:
    """Validate a baseline object; every problem is one clear ``UserError``."""
    unknown = sorted(set(data) - set(TOP_FIELDS))
    if unknown:
        raise UserError(f"{source}: unknown field {unknown[0]!r} (use {', '.join(TOP_FIELDS)})")
    if "schema_version" not in data:
        raise UserError(f"{source}: missing \"schema_version\" (this memshare reads {BASELINE_SCHEMA})")
    if data["schema_version"] != BASELINE_SCHEMA:
        raise UserError(f"{source}: baseline schema {data['schema_version']!r}, this memshare reads {BASELINE_SCHEMA}")
    for key in ("model", "dataset", "description", "note"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise UserError(f"{source}: \"{key}\" must be a string, got {data[key]!r}")
    policies = data.get("policies")
    if not isinstance(policies, dict) or not policies:
        raise UserError(f"{source}: \"policies\" must be a non-empty object of policy -> metric rules")
    rules = []
    for policy, metrics in policies.items():
        if policy not in POLICIES:
            raise UserError(f"{source}: unknown policy {policy!r} (use {', '.join(POLICIES)})")
        if not isinstance(metrics, dict) or not metrics:
            raise UserError(f"{source}: policies.{policy} must be a non-empty object of metric -> rule")
        for metric, spec in metrics.items():
            if metric not in METRICS:
                raise UserError(f"{source}: unknown metric {metric!r} in policies.{policy} (use {', '.join(METRICS)})")
            rules.append(parse_rule(policy, metric, spec, f"{source}: policies.{policy}.{metric}"))
    return Baseline(data.get("model"), data.get("dataset"), tuple(rules))


def load_baseline(path: str | Path) -> Baseline:
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{path}: a folder, expected a baseline JSON file")
    return parse_baseline(read_json(path), str(path))


def check(baseline: Baseline, runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (rule, matching run); a policy with no run gives one ``missing`` row per rule."""
    rows = []
    for rule in baseline.rules:
        matching = [r for r in runs if r.get("policy") == rule.policy] or [None]
        for run in matching:
            x = run.get(rule.metric) if run else None
            ok = isinstance(x, (int, float)) and not isinstance(x, bool) and rule.allows(x)
            rows.append({"policy": rule.policy, "metric": rule.metric, "baseline": rule.value, "measured": x,
                         "min": rule.lo, "max": rule.hi, "allowed": rule.allowed(),
                         "verdict": "pass" if ok else ("missing" if x is None else "FAIL"),
                         "run_dir": run["run_dir"] if run else None})
    return rows


def run_regress(baseline_path: str | Path, run_paths: list[str | Path]) -> dict[str, Any]:
    """Check runs against a baseline file; ``passed`` is False on any regression or missing figure."""
    baseline = load_baseline(baseline_path)
    runs = load_runs(run_paths)
    chosen = [r for r in runs if (baseline.model is None or r.get("model") == baseline.model)
              and (baseline.dataset is None or r.get("dataset") == baseline.dataset)]
    if not chosen:
        seen = sorted({f"{r.get('model')}/{r.get('dataset')}" for r in runs})
        raise UserError(f"no run of model {baseline.model or '(any)'} on dataset {baseline.dataset or '(any)'} "
                        f"among the given runs (found {', '.join(seen)})")
    rows = check(baseline, chosen)
    failed = [r for r in rows if r["verdict"] != "pass"]
    return {"baseline": str(baseline_path), "model": baseline.model, "dataset": baseline.dataset,
            "passed": not failed, "num_runs": len(chosen), "checks": rows,
            "failed": list(dict.fromkeys(f"{r['policy']} {r['metric']}" for r in failed))}
