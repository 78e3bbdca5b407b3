"""``memshare bench``: settings (``config``), orchestration (``run``) and metric formulas (``metrics``)."""

from memshare.bench.config import (
           ALL_POLICIES,
           OPTION_DEFAULTS,
           SUITES,
           BenchConfig,
           Events,
           config_dict,
           resolve_options,
)
from memshare.bench.metrics import add_ratios, quality_vs, summarize_repeats
from memshare.bench.run import _policy_config, run_bench

__all__ = ["ALL_POLICIES", "OPTION_DEFAULTS", "SUITES", "BenchConfig", "Events", "_policy_config", "add_ratios",
           "config_dict", "quality_vs", "resolve_options", "run_bench", "summarize_repeats"]
