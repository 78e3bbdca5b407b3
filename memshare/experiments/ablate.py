"""``memshare ablate``: sweep MemShare's settings and compare with dense and random sharing.

One backend engine serves every run of the ablation (``memshare.bench.engines``). The grid (``memshare.experiments.grid``) crosses step/block threshold pairs with Stage-1
encoders, Stage-2 metrics and distances, as arXiv 2507.21433 studies them. Every point is a
``run_bench`` call, so each policy run is an ordinary, resumable run folder under
``<out>/runs/``; a rerun of the same ablation skips finished runs.

NOTE: dense runs once, in its own call: bench names a run folder from its full config, and
the sharing settings (thresholds included) are part of dense's config too, so a dense run in
every point's call would be repeated per point. Random runs in its own call too, with
``random_rate`` set to the point's measured memshare affected ratio: the same run folder that
bench's own matching (memshare and random in one call) would produce.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memshare.bench import BenchConfig, Engines, Events, pool_capacity
from memshare.bench.run_metrics import RunMetrics
from memshare.core.config import DISTANCES, ENCODERS, METRICS
from memshare.errors import UserError
from memshare.experiments.grid import (
    ABLATE_POLICIES,
    DEFAULT_PAIRS,
    check_pair,
    format_pairs,
    grid_points,
    pareto_front,
    parse_choices,
    parse_pairs,
)
from memshare.results import SCHEMA_VERSION, default_out_dir, write_json

# A point keeps every metric of its run (run_bench adds ratios and quality against the dense reference).
POINT_KEYS = RunMetrics.names()


@dataclass(frozen=True)
class AblateConfig:
    """An ablation: ``bench`` holds the workload (model, dataset, limits, engine); its
    ``policies`` and ``out`` are set per call. ``out`` defaults to
    ``results/ablate__<dataset>__<model>``."""

    bench: BenchConfig = dataclasses.field(default_factory=BenchConfig)
    pairs: tuple[tuple[float, float], ...] = DEFAULT_PAIRS
    encoders: tuple[str, ...] = ("tokenizer",)
    metrics: tuple[str, ...] = ("euclidean",)
    distances: tuple[str, ...] = ("k_unrope",)
    policies: tuple[str, ...] = ABLATE_POLICIES
    out: str | None = None
    # KV budgets: the grid runs at each (a thresholds x budgets curve); () means ``bench.kv_blocks``.
    budgets: tuple[int | None, ...] = ()

    def __post_init__(self) -> None:
        if not self.pairs:
            raise UserError("--pairs needs at least one STEP/BLOCK pair, e.g. 0.8/0.8")
        for step, block in self.pairs:
            check_pair(step, block)
        for flag, noun, values, allowed in (("--encoders", "encoder", self.encoders, ENCODERS),
                                            ("--metrics", "metric", self.metrics, METRICS),
                                            ("--distances", "distance", self.distances, DISTANCES),
                                            ("--policies", "policy", self.policies, ABLATE_POLICIES)):
            bad = [v for v in values if v not in allowed]
            if bad or not values:
                raise UserError(f"unknown {noun} {bad[0] if bad else '(none)'!r} in {flag}: use a comma list of "
                                f"{', '.join(allowed)}")
        if self.bench.replay and self.bench.samples > 1:
            raise UserError("--samples > 1 with --replay: every sample would emit the same trace")
        if "memshare" not in self.policies:
            raise UserError("--policies must include memshare: the grid is a set of memshare settings")

    @classmethod
    def from_options(cls, bench: BenchConfig, budgets: tuple[int | None, ...], *, pairs: str | None, encoders: str,
                     metrics: str, distances: str, policies: str, out: str | None) -> AblateConfig:
        """An ablation from command-line options: comma lists, and ``budgets`` from ``BenchConfig.from_options``
        (one budget is ``bench.kv_blocks``; several draw thresholds x budgets)."""
        return cls(bench=bench, pairs=parse_pairs(pairs),
                   encoders=parse_choices(encoders, "--encoders", "encoder", ENCODERS),
                   metrics=parse_choices(metrics, "--metrics", "metric", METRICS),
                   distances=parse_choices(distances, "--distances", "distance", DISTANCES),
                   policies=parse_choices(policies, "--policies", "policy", ABLATE_POLICIES), out=out,
                   budgets=budgets if len(budgets) > 1 else ())

    @property
    def out_dir(self) -> Path:
        return Path(self.out) if self.out else default_out_dir("ablate", self.bench.dataset_name, self.bench.model)

    def to_dict(self) -> dict[str, Any]:
        b = dataclasses.asdict(self.bench)
        b["sharing"] = self.bench.sharing.to_dict()
        return {"bench": b, "pairs": format_pairs(self.pairs), "encoders": list(self.encoders),
                "metrics": list(self.metrics), "distances": list(self.distances), "policies": list(self.policies),
                "budgets": list(self.budgets), "out": str(self.out_dir)}

    @property
    def quality(self) -> str:
        """The quality axis: teacher-forced top-1 agreement with dense on a replay, else accuracy."""
        return "top1_agreement" if self.bench.replay else "accuracy"


def run_ablation(cfg: AblateConfig, on_event: Events | None = None) -> dict[str, Any]:
    """Run the grid (at every budget); write ``ablation.json`` and the PNGs into ``cfg.out_dir``."""
    emit = on_event or (lambda kind, data: None)
    budgets = cfg.budgets or (cfg.bench.kv_blocks,)
    points: list[dict[str, Any]] = []
    # One backend engine serves every point at every budget (built with the largest).
    with Engines(pool_capacity(budgets), per_run=cfg.bench.engine_per_run) as engines:
        for budget in budgets:
            if len(budgets) > 1:
                emit("status", {"message": f"KV budget {budget} blocks"})
            points.extend(_grid_at(cfg, dataclasses.replace(cfg.bench, kv_blocks=budget), emit, engines))
    # The Pareto front is taken within each budget: a tighter pool is a different workload.
    on_front: set[int] = set()
    front: list[dict[str, Any]] = []
    for budget in budgets:
        here = pareto_front([p for p in points if p.get("kv_budget") == budget], y=cfg.quality)
        front.extend(here)
        on_front |= {id(p) for p in here}
    for p in points:
        p["pareto"] = id(p) in on_front
    from memshare.experiments.plots import ablation_plots, budget_plot

    out = cfg.out_dir
    title = f"{cfg.bench.dataset_name} / {cfg.bench.model}"
    first = [p for p in points if p.get("kv_budget") == budgets[0]]
    figures = ablation_plots(first, [p for p in front if p.get("kv_budget") == budgets[0]], out, title,
                             quality=cfg.quality)
    if len(budgets) > 1:
        figures.append(budget_plot(points, out / "thresholds_vs_budgets.png", title, quality=cfg.quality))
    result = {"schema_version": SCHEMA_VERSION, "config": cfg.to_dict(), "points": points,
              "pareto": [f"{p['policy']} {p['label']}" + (f" @{p.get('kv_budget')}" if len(budgets) > 1 else "")
                         for p in front], "plots": figures, "engines": engines.summary(),
              "written": str(out / "ablation.json")}
    write_json(out / "ablation.json", result)
    return result


def _grid_at(cfg: AblateConfig, workload: BenchConfig, emit: Events, engines: Engines) -> list[dict[str, Any]]:
    """Dense once, then every grid point (memshare, and random at its measured ratio) on ``workload``."""
    from memshare import bench

    runs_dir = str(cfg.out_dir / "runs")
    grid = grid_points(cfg.pairs, cfg.encoders, cfg.metrics, cfg.distances)

    def one(policy: str, label: str, sharing, g: dict[str, Any]) -> dict[str, Any]:
        call = dataclasses.replace(workload, policies=(policy,), sharing=sharing, out=runs_dir)
        run = bench.run_bench(call, _relabel(emit, label), reference=dense, engines=engines)[0]
        return {"policy": policy, **g, **{k: run.get(k) for k in POINT_KEYS}}

    dense = None
    if "dense" in cfg.policies:
        emit("status", {"message": "dense reference: run once, shared by every point"})
        dense = one("dense", "", workload.sharing, {"label": "dense"})
    points = [dense] if dense else []
    for i, g in enumerate(grid, 1):
        emit("status", {"message": f"point {i}/{len(grid)}: step/block {g['label']}"})
        sharing = workload.sharing.replace(**{k: g[k] for k in ("step_threshold", "block_threshold", "encoder",
                                                                 "metric", "distance")})
        ms = one("memshare", g["label"], sharing, g)
        points.append(ms)
        if "random" not in cfg.policies:
            continue
        if ms["affected_ratio"] is None:
            emit("status", {"message": f"{g['label']}: memshare reported no affected ratio; random skipped"})
            continue
        rate = min(1.0, float(ms["affected_ratio"]))
        rnd = one("random", g["label"], sharing.replace(random_rate=rate), g)
        points.append({**rnd, "random_rate": rate})
    return points


def _relabel(emit: Events, label: str) -> Events:
    """Progress bars name the point: ``memshare 0.8/0.8``."""

    def on_event(kind: str, data: dict[str, Any]) -> None:
        if label and kind in ("policy", "progress") and "policy" in data:
            data = {**data, "policy": f"{data['policy']} {label}"}
        emit(kind, data)

    return on_event
