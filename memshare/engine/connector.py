"""MemShare as a vLLM v1 KV connector: the public extension point that carries it.

vLLM builds one instance in the scheduler process (role SCHEDULER) and one per worker
(role WORKER). The scheduler instance owns a ``SchedulerSide``; the worker instance a
``WorkerSide``. Settings travel in ``kv_transfer_config.kv_connector_extra_config``:

* ``memshare``: a ``MemShareConfig`` as a dict (see ``memshare.core.config``);
* ``stats_path``: optional JSON file the scheduler rewrites with run statistics;

The run's counters also go out on vLLM's metrics path (``memshare.engine.metrics``): the
server's periodic log line and, under ``memshare serve``, Prometheus ``/metrics``.
* ``debug_skip_worker_remap`` / ``debug_poison_freed`` / ``debug_keep_prefix_hashing``: test
  switches (negative controls).

Load it with ``kv_connector="MemShareConnector"`` and
``kv_connector_module_path="memshare.engine.connector"`` (``memshare.engine.llm`` does this).
"""

from __future__ import annotations

import logging
from typing import Any

from vllm.distributed.kv_transfer.kv_connector.v1.base import KVConnectorBase_V1, KVConnectorRole

from memshare.core.config import MemShareConfig
from memshare.engine.messages import MemShareMeta, MemShareWorkerMeta
from memshare.engine.metrics import MemShareConnectorStats, MemShareProm, StatsDelta
from memshare.results import write_json

logger = logging.getLogger("memshare")


class MemShareConnector(KVConnectorBase_V1):
    def __init__(self, vllm_config: Any, role: KVConnectorRole, kv_cache_config: Any = None) -> None:
        super().__init__(vllm_config=vllm_config, role=role, kv_cache_config=kv_cache_config)
        from memshare.engine.adapter import check_version

        check_version()
        from memshare.errors import UserError

        extra = dict(vllm_config.kv_transfer_config.kv_connector_extra_config or {})
        self.memshare_config = MemShareConfig.from_dict(extra.get("memshare", {}))
        # NOTE: ``engine_kwargs`` builds the engine from the same block size; this catches a
        # hand-written kv_transfer_config (or vLLM choosing another size) before a wrong block map.
        if self.memshare_config.block_size != vllm_config.cache_config.block_size:
            raise UserError(f"memshare block size {self.memshare_config.block_size} is not the engine's "
                            f"{vllm_config.cache_config.block_size}: give both the same --block-size")
        self._vllm_config = vllm_config
        self.stats_path: str | None = extra.get("stats_path")
        self.scheduler_side = None
        self.worker_side = None
        self._debug = extra
        self._kv_cache_manager: Any = None
        if role == KVConnectorRole.SCHEDULER:
            self._new_scheduler_side(self.memshare_config)
        else:
            from memshare.engine.worker_side import WorkerSide

            self.worker_side = WorkerSide(
                self.memshare_config,
                skip_remap=bool(extra.get("debug_skip_worker_remap", False)),
                poison_freed=bool(extra.get("debug_poison_freed", False)),
            )

    def _new_scheduler_side(self, config: MemShareConfig) -> None:
        from memshare.core import make_policy
        from memshare.engine.scheduler_side import SchedulerSide

        sharing_policy = make_policy(config, **_policy_resources(config, self._vllm_config))
        self.scheduler_side = SchedulerSide(config, sharing_policy,
                                            keep_prefix_hashing=bool(self._debug.get("debug_keep_prefix_hashing", False)))
        self._delta = StatsDelta(sharing_policy.stats)
        if self._kv_cache_manager is not None:
            self.scheduler_side.bind(self._kv_cache_manager)

    def reconfigure(self, config: MemShareConfig) -> None:
        """Serve the next run with ``config`` (policy, thresholds): a fresh policy, Stage-1 index,
        pins and statistics on this idle engine. Scheduler role; the workers get the same config
        through ``MemShareWorker.memshare_reconfigure`` (``memshare.engine.session``)."""
        side = self.scheduler_side
        if side is None:
            raise RuntimeError("memshare: reconfigure is the scheduler-side connector's")
        if side.requests or side.outstanding_pins():
            raise RuntimeError(f"memshare: reconfigured with {len(side.requests)} requests and "
                               f"{side.outstanding_pins()} pinned blocks outstanding")
        if config.block_size != self.memshare_config.block_size:
            raise ValueError(f"memshare block size {config.block_size} is not the engine's {self.memshare_config.block_size}")
        self.memshare_config = config
        self._new_scheduler_side(config)

    def reconfigure_worker(self, config: MemShareConfig) -> None:
        """Worker role: the next run's settings (see ``reconfigure``)."""
        self.memshare_config = config
        self.worker_side.reconfigure(config)

    # NOTE: MemShare hands off nothing: a preempted request is recomputed as usual.
    @property
    def requires_kv_delivery(self) -> bool:
        return False

    # ---------------------------------------------------------------- worker side
    def register_kv_caches(self, kv_caches: dict[str, Any]) -> None:
        self.worker_side.register_kv_caches(kv_caches, self._vllm_config)

    def bind_model_runner(self, runner: Any) -> None:
        self.worker_side.bind_runner(runner)

    def handle_preemptions(self, kv_connector_metadata: Any) -> None:
        if isinstance(kv_connector_metadata, MemShareMeta):
            self.worker_side.handle(kv_connector_metadata)

    def build_connector_worker_meta(self) -> MemShareWorkerMeta | None:
        return self.worker_side.take_results()

    def start_load_kv(self, forward_context: Any, **kwargs: Any) -> None:
        return None

    def wait_for_layer_load(self, layer_name: str) -> None:
        return None

    def save_kv_layer(self, layer_name: str, kv_layer: Any, attn_metadata: Any, **kwargs: Any) -> None:
        return None

    def wait_for_save(self) -> None:
        return None

    # ---------------------------------------------------------------- scheduler side
    def bind_kv_cache_manager(self, kv_cache_manager: Any) -> None:
        super().bind_kv_cache_manager(kv_cache_manager)
        self._kv_cache_manager = kv_cache_manager
        self.scheduler_side.bind(kv_cache_manager)

    def get_num_new_matched_tokens(self, request: Any, num_computed_tokens: int) -> tuple[int, bool]:
        return 0, False

    def update_state_after_alloc(self, request: Any, blocks: Any, num_external_tokens: int) -> None:
        return None

    def on_new_request(self, request: Any) -> None:
        self.scheduler_side.on_new_request(request)

    def build_connector_meta(self, scheduler_output: Any) -> MemShareMeta:
        return self.scheduler_side.build_meta(scheduler_output)

    def update_connector_output(self, connector_output: Any) -> None:
        meta = connector_output.kv_connector_worker_meta
        self.scheduler_side.apply_results(meta if isinstance(meta, MemShareWorkerMeta) else None)
        if self.stats_path and not self.scheduler_side.requests:
            self.write_stats()

    def request_finished(self, request: Any, block_ids: list[int]) -> tuple[bool, dict[str, Any] | None]:
        self.scheduler_side.request_finished(request)
        return False, None

    # ---------------------------------------------------------------- metrics
    def get_kv_connector_stats(self) -> MemShareConnectorStats | None:
        """This step's changes to the run's counters (scheduler side; workers report none)."""
        if self.scheduler_side is None:
            return None
        data = self._delta.take(self.scheduler_side.outstanding_pins())
        return None if data is None else MemShareConnectorStats(data=data)

    @classmethod
    def build_kv_connector_stats(cls, data: dict[str, Any] | None = None) -> MemShareConnectorStats:
        return MemShareConnectorStats(data=dict(data or {}))

    @classmethod
    def build_prom_metrics(cls, vllm_config: Any, metric_types: dict, labelnames: list[str],
                           per_engine_labelvalues: dict[int, list[object]]) -> MemShareProm:
        return MemShareProm(vllm_config, metric_types, labelnames, per_engine_labelvalues)

    def write_stats(self) -> None:
        if not self.stats_path:
            return
        write_json(self.stats_path, self.scheduler_side.report())

    def shutdown(self) -> None:
        if self.scheduler_side is not None:
            self.write_stats()


def _policy_resources(config: MemShareConfig, vllm_config: Any) -> dict[str, Any]:
    """Tokenizer-derived step vocabulary and, for the embedding encoder, the embedding matrix."""
    from memshare.engine.resources import load_policy_resources

    return load_policy_resources(config, vllm_config.model_config)
