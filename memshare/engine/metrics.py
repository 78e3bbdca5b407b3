"""MemShare's counters on vLLM's metrics path: the server log and the Prometheus ``/metrics``.

vLLM's connector API carries them (``KVConnectorBase_V1.get_kv_connector_stats``,
``build_kv_connector_stats`` and ``build_prom_metrics``). Each engine step the scheduler
asks the connector for its stats; ``StatsDelta`` takes what changed in the run's
``SharingStats`` since the last ask (counters as increments, gauges as values) and vLLM ships
the dict to the API server process, where ``MemShareProm`` adds it to its Prometheus series
and ``MemShareConnectorStats`` sums it for the periodic log line.

Exported, with vLLM's per-engine labels (prometheus_client adds ``_total`` to counters):

* counters ``vllm:memshare_<name>`` for every ``SharingStats`` total: ``full_blocks``,
  ``shared_blocks``, ``freed_blocks``, ``stage1_queries``, ``stage2_queries``, ``matches``,
  ``dropped_stale``, ... and the stage timers as ``stage1_seconds``, ``stage2_seconds``,
  ``remap_seconds``;
* gauges ``vllm:memshare_affected_ratio`` (shared / full blocks so far) and
  ``vllm:memshare_outstanding_pins`` (blocks pinned for a Stage-2 decision right now).
"""

from __future__ import annotations

from typing import Any

from vllm.distributed.kv_transfer.kv_connector.v1.metrics import KVConnectorPromMetrics, KVConnectorStats

from memshare.core.stats import FIELDS, SharingStats

GAUGES = ("affected_ratio", "outstanding_pins")
_DOC = {
    "full_blocks": "Full output blocks MemShare considered for sharing.",
    "shared_blocks": "Blocks remapped to another block (zero-copy share).",
    "freed_blocks": "Blocks returned to the free pool by shares.",
    "stage1_queries": "Blocks that went through the Stage-1 search.",
    "stage1_candidates": "Candidate blocks Stage 1 proposed.",
    "stage2_queries": "Stage-2 (KV distance) decisions.",
    "stage2_candidates": "Candidate blocks Stage 2 measured.",
    "matches": "Stage-2 decisions below the block threshold.",
    "dropped_stale": "Matches dropped because the query block changed hands first.",
    "prefix_caching_stopped": "Requests whose prefix-cache hashing stopped at their first share.",
    "block_steps_freed": "Engine steps each freed block stayed free while its request ran, summed.",
    "eligible_block_steps": "Engine steps each eligible output block existed while its request ran, summed.",
    "stage1_seconds": "Time in Stage 1 (scheduler process).",
    "stage2_seconds": "Time in Stage 2 (workers, summed).",
    "remap_seconds": "Time in decisions, pins, remaps and frees (scheduler process).",
    "affected_ratio": "Shared blocks / full blocks so far.",
    "outstanding_pins": "Blocks pinned for a Stage-2 decision now.",
}


def _counter_name(field: str) -> str:
    return field[:-2] + "_seconds" if field.endswith("_s") else field


class StatsDelta:
    """What changed in ``stats`` since the last ``take`` (None when nothing did)."""

    def __init__(self, stats: SharingStats) -> None:
        self.stats = stats
        self._last: dict[str, float] = {}
        self._last_gauges: dict[str, float] | None = None

    def take(self, outstanding_pins: int) -> dict[str, Any] | None:
        now = self.stats.counters()
        counters = {_counter_name(k): v - self._last.get(k, 0) for k, v in now.items() if v != self._last.get(k, 0)}
        gauges = {"affected_ratio": self.stats.affected_ratio, "outstanding_pins": float(outstanding_pins)}
        if not counters and gauges == self._last_gauges:
            return None
        self._last, self._last_gauges = now, gauges
        return {"counters": counters, "gauges": gauges}


class MemShareConnectorStats(KVConnectorStats):
    """One interval's stats: counter increments summed, the latest gauge values."""

    def reset(self) -> None:
        self.data = {}

    def is_empty(self) -> bool:
        return not self.data

    def aggregate(self, other: KVConnectorStats) -> MemShareConnectorStats:
        if not other.data:
            return self
        if not self.data:
            return MemShareConnectorStats(data=dict(other.data))
        counters = dict(self.data.get("counters", {}))
        for k, v in other.data.get("counters", {}).items():
            counters[k] = counters.get(k, 0) + v
        gauges = {**self.data.get("gauges", {}), **other.data.get("gauges", {})}
        return MemShareConnectorStats(data={"counters": counters, "gauges": gauges})

    def reduce(self) -> dict[str, int | float]:
        """The periodic log line: shares and frees this interval, the gauges now."""
        c, g = self.data.get("counters", {}), self.data.get("gauges", {})
        return {"memshare_shared_blocks": int(c.get("shared_blocks", 0)),
                "memshare_freed_blocks": int(c.get("freed_blocks", 0)),
                "memshare_affected_ratio": round(g.get("affected_ratio", 0.0), 4),
                "memshare_outstanding_pins": int(g.get("outstanding_pins", 0))}


class MemShareProm(KVConnectorPromMetrics):
    """Prometheus series for MemShare, one child per engine (vLLM's label values)."""

    def __init__(self, vllm_config: Any, metric_types: dict, labelnames: list[str],
                 per_engine_labelvalues: dict[int, list[object]]) -> None:
        super().__init__(vllm_config, metric_types, labelnames, per_engine_labelvalues)
        self.counters = {name: self._per_engine(self._counter_cls, name)
                         for name in map(_counter_name, FIELDS)}
        self.gauges = {name: self._per_engine(self._gauge_cls, name, multiprocess_mode="mostrecent")
                       for name in GAUGES}

    def _per_engine(self, cls: Any, name: str, **kw: Any) -> dict[int, Any]:
        metric = cls(name=f"vllm:memshare_{name}", documentation=_DOC.get(name, name),
                     labelnames=self._labelnames, **kw)
        return {idx: metric.labels(*values) for idx, values in self.per_engine_labelvalues.items()}

    def observe(self, transfer_stats_data: dict[str, Any], engine_idx: int = 0) -> None:
        for name, value in transfer_stats_data.get("counters", {}).items():
            if name in self.counters and value > 0:
                self.counters[name][engine_idx].inc(value)
        for name, value in transfer_stats_data.get("gauges", {}).items():
            if name in self.gauges:
                self.gauges[name][engine_idx].set(value)
