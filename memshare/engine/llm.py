"""Build a vLLM ``LLM`` with or without the MemShare backend, and read its statistics.

``policy=None`` gives plain vLLM (reported as ``vanilla``); a ``MemShareConfig`` loads the
backend: the KV connector, the worker class, synchronous scheduling and, for sharing
policies, prefix caching off (see ``SchedulerSide.bind``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.engine import adapter


@dataclass(frozen=True, slots=True)
class EngineSettings:
    model: str
    block_size: int = 32
    kv_blocks: int | None = None
    max_num_seqs: int = 256
    max_model_len: int = 2048
    seed: int = 0
    dtype: str = "auto"
    # None: eager on the CPU build (it has no CUDA graphs), CUDA graphs on a GPU. Graphs are safe
    # with sharing: a remap edits the block table before the step's copy to the device (README).
    enforce_eager: bool | None = None
    tensor_parallel_size: int = 1
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.block_size <= 0:
            raise ValueError(f"block size must be positive, got {self.block_size}")
        if not isinstance(self.tensor_parallel_size, int) or self.tensor_parallel_size < 1:
            raise ValueError(f"--tensor-parallel-size must be an integer >= 1, got {self.tensor_parallel_size!r}")
        if self.kv_blocks is not None:
            need = -(-self.max_model_len // self.block_size) + 1
            if self.kv_blocks < need:
                raise ValueError(f"--kv-blocks {self.kv_blocks} is too small: one request of up to "
                                 f"{self.max_model_len} tokens needs {need} blocks of {self.block_size}")


def engine_kwargs(settings: EngineSettings, policy: MemShareConfig | None, *, stats_path: str | None = None,
                  debug: dict[str, Any] | None = None) -> dict[str, Any]:
    dtype = settings.dtype
    if dtype == "auto" and _is_cpu():
        # NOTE: vLLM's CPU build picks bf16 for "auto"; on CPUs without native bf16 that is
        # ~7x slower than fp32 (measured on the 2-core CI machine), so prefer fp32 here.
        dtype = "float32"
    kwargs: dict[str, Any] = dict(
        model=settings.model,
        dtype=dtype,
        block_size=settings.block_size,
        max_num_seqs=settings.max_num_seqs,
        max_model_len=settings.max_model_len,
        seed=settings.seed,
        enforce_eager=_is_cpu() if settings.enforce_eager is None else settings.enforce_eager,
        enable_prefix_caching=False,
        async_scheduling=False,
        tensor_parallel_size=settings.tensor_parallel_size,
        # One worker runs in this process; more need vLLM's multiprocessing executor. The engine
        # core stays in-process either way (make_llm), so run statistics are read directly.
        distributed_executor_backend="uni" if settings.tensor_parallel_size == 1 else "mp",
    )
    if settings.kv_blocks is not None:
        kwargs["num_gpu_blocks_override"] = settings.kv_blocks
    if _is_cpu():
        # NOTE: the CPU worker refuses to start when "gpu_memory_utilization" of RAM is not
        # free; an explicit KV budget skips that check. 1 GiB is plenty for small models.
        kwargs["kv_cache_memory_bytes"] = int(os.environ.get("MEMSHARE_CPU_KV_BYTES", 1 << 30))
    if policy is not None:
        from vllm.config import KVTransferConfig

        extra: dict[str, Any] = {"memshare": policy.replace(block_size=settings.block_size).to_dict()}
        if stats_path:
            extra["stats_path"] = stats_path
        extra.update(debug or {})
        kwargs["kv_transfer_config"] = KVTransferConfig(
            kv_connector="MemShareConnector",
            kv_connector_module_path="memshare.engine.connector",
            kv_role="kv_both",
            kv_connector_extra_config=extra,
        )
        kwargs["worker_cls"] = "memshare.engine.worker.MemShareWorker"
    kwargs.update(settings.extra)
    return kwargs


def make_llm(settings: EngineSettings, policy: MemShareConfig | None, **kw: Any) -> Any:
    adapter.check_version()
    # One process: the scheduler's statistics are read directly after a run.
    os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_USE_V2_MODEL_RUNNER", "0")
    from vllm import LLM

    return LLM(**engine_kwargs(settings, policy, **kw))


def scheduler_connector(llm: Any) -> Any:
    """The scheduler-side MemShareConnector of an in-process engine (None for vanilla)."""
    return adapter.scheduler_of(llm).connector


def run_report(llm: Any) -> dict[str, Any]:
    """Sharing statistics plus the leak check; call when no request is in flight."""
    sched = adapter.scheduler_of(llm)
    connector = sched.connector
    pool = sched.kv_cache_manager.block_pool
    report: dict[str, Any] = connector.scheduler_side.report() if connector is not None else {}
    pins = connector.scheduler_side.outstanding_pins() if connector is not None else 0
    report["leaked_blocks"] = adapter.leaked_blocks(pool) + pins
    report["kv_blocks_total"] = pool.num_gpu_blocks - 1
    return report


def worker_side(llm: Any) -> Any:
    """The in-process worker-side connector (tests)."""
    return adapter.worker_connector_of(llm).worker_side


def _is_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()
