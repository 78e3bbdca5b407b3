"""``worker_cls`` for MemShare: the stock worker, plus binding its model runner to the connector.

The worker-side connector must patch the model runner's block table when a block is
shared; vLLM gives connectors the KV tensors but not the runner, so this subclass hands
the runner over right after the KV cache is initialized. Pick it with
``worker_cls="memshare.engine.worker.MemShareWorker"`` (``memshare.engine.llm`` does).
"""

from __future__ import annotations

from typing import Any

from vllm.platforms import current_platform

if current_platform.is_cpu():
    from vllm.v1.worker.cpu_worker import CPUWorker as _BaseWorker
else:
    from vllm.v1.worker.gpu_worker import Worker as _BaseWorker


class MemShareWorker(_BaseWorker):  # type: ignore[misc, valid-type]
    def initialize_from_config(self, kv_cache_config: Any) -> None:
        super().initialize_from_config(kv_cache_config)
        from vllm.distributed.kv_transfer.kv_transfer_state import get_kv_transfer_group, has_kv_transfer_group

        from memshare.engine.connector import MemShareConnector

        if has_kv_transfer_group():
            connector = get_kv_transfer_group()
            if isinstance(connector, MemShareConnector):
                connector.bind_model_runner(self.model_runner)

    def memshare_reconfigure(self, config: dict[str, Any]) -> bool:
        """The next run's ``MemShareConfig`` (as a dict), called on every rank by ``collective_rpc``."""
        from vllm.distributed.kv_transfer.kv_transfer_state import get_kv_transfer_group, has_kv_transfer_group

        from memshare.core.config import MemShareConfig
        from memshare.engine.connector import MemShareConnector

        connector = get_kv_transfer_group() if has_kv_transfer_group() else None
        if not isinstance(connector, MemShareConnector):
            return False
        connector.reconfigure_worker(MemShareConfig.from_dict(config))
        return True
