"""``memshare bench``: settings (``config``), orchestration (``run``, ``sweep``), the engine
processes (``engines``) and metric formulas (``metrics``, ``fidelity``)."""

from memshare.bench.config import (
           ALL_POLICIES,
           OPTION_DEFAULTS,
           SUITES,
           BenchConfig,
           parse_budgets,
           resolve_options,
)
from memshare.bench.engines import Engines, pool_capacity
from memshare.bench.metrics import add_ratios, quality_vs, summarize_repeats
from memshare.bench.run import run_bench
from memshare.bench.sweep import run_sweep
from memshare.results import Events

__all__ = ["ALL_POLICIES", "OPTION_DEFAULTS", "SUITES", "BenchConfig", "Engines", "Events", "pool_capacity", "add_ratios", "parse_budgets",
           "quality_vs", "resolve_options", "run_bench", "run_sweep", "summarize_repeats"]
