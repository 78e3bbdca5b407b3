"""Build a vLLM engine with or without the MemShare backend, and read its statistics.

``sharing=None`` gives plain vLLM: ``vanilla`` with vLLM's own defaults (``engine_mode="defaults"``:
async scheduling where the platform has it, vLLM's default model runner, the engine core in its own
process) or ``vanilla-sync`` (``"sync"``, the former baseline). A ``MemShareConfig`` loads the
backend: the KV connector and the worker class, on the V1 model runner with the engine core in this
process; scheduling is vLLM's choice unless the mode says otherwise (``ENGINE_MODES``).
``engine_kwargs`` is the one place the config is serialized for the engine (vLLM's
``kv_connector_extra_config``). Prefix caching is vLLM's default (on) for every policy; a sharing
request stops hashing its own blocks at its first share (see ``SchedulerSide``).
"""

from __future__ import annotations

import os
from typing import Any

from memshare.core.config import MemShareConfig
from memshare.engine import adapter
from memshare.engine.adapter import scheduler as vllm_scheduler
from memshare.engine.protocol import EngineSettings

__all__ = ["EngineSettings", "engine_kwargs", "make_engine", "make_llm", "run_report", "scheduler_connector",
           "watch_steps"]


def engine_kwargs(settings: EngineSettings, sharing: MemShareConfig | None, *, stats_path: str | None = None,
                  debug: dict[str, Any] | None = None) -> dict[str, Any]:
    if _is_cpu() and settings.block_size % 32:
        # The CPU attention backend refuses any other size deep inside its worker.
        raise ValueError(f"block size {settings.block_size}: vLLM's CPU build needs a multiple of 32")
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
        enable_prefix_caching=settings.prefix_caching,
        tensor_parallel_size=settings.tensor_parallel_size,
    )
    if settings.engine_mode != "defaults":
        # The engine core stays in this process (make_engine), so run statistics are read directly.
        # NOTE: the workers run in vLLM's multiprocessing executor on the CPU build even for one
        # worker: vLLM's CPU platform does the same whenever the engine core has its own process
        # ("OMP requires the MP executor"); a worker inside this process shares its OpenMP threads
        # and ran 6-8x slower on the loaded 2-core machine (docs/RESULTS.md). On a GPU one
        # worker runs in this process, as vLLM's default ("uni") does.
        multi = settings.tensor_parallel_size > 1 or _is_cpu()
        kwargs["distributed_executor_backend"] = "mp" if multi else "uni"
    if settings.engine_mode == "sync":
        kwargs["async_scheduling"] = False
    elif sharing is not None and settings.engine_mode == "defaults":
        raise ValueError("the MemShare backend needs the V1 model runner and the in-process engine core: "
                         "engine mode 'defaults' is plain vLLM only (use 'backend')")
    if settings.kv_blocks is not None:
        kwargs["num_gpu_blocks_override"] = settings.kv_blocks
    if settings.forced_decoding:
        from memshare.engine.forcing import PROCESSOR

        kwargs["logits_processors"] = [PROCESSOR]
    if _is_cpu():
        # NOTE: the CPU worker refuses to start when "gpu_memory_utilization" of RAM is not
        # free; an explicit KV budget skips that check. 1 GiB is plenty for small models.
        kwargs["kv_cache_memory_bytes"] = int(os.environ.get("MEMSHARE_CPU_KV_BYTES", 1 << 30))
    if sharing is not None:
        from vllm.config import KVTransferConfig

        if sharing.block_size != settings.block_size:
            raise ValueError(f"the sharing config's block size {sharing.block_size} is not the engine's "
                             f"{settings.block_size}: build the MemShareConfig with block_size={settings.block_size}")
        extra: dict[str, Any] = {"memshare": sharing.to_dict()}
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


def make_engine(settings: EngineSettings, sharing: MemShareConfig | None, *,
                debug: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """``(LLMEngine, step statistics)`` for a batch run, in ``settings.engine_mode``.

    ``defaults`` builds vLLM as users run it (the caller's environment, engine core in its own
    process) and counts steps through vLLM's stat loggers; other modes build the in-process engine
    whose scheduler is read directly (``watch_steps``).
    """
    from memshare.engine.adapter import engine as vllm_engine

    adapter.check_version()
    kwargs = engine_kwargs(settings, sharing, debug=debug)
    if settings.engine_mode == "defaults":
        from memshare.engine.stats import StepStats

        adapter.set_engine_env(settings.tensor_parallel_size, vllm_defaults=True)
        stats = StepStats()
        return vllm_engine.build_engine(kwargs, stats=stats), stats
    adapter.set_engine_env(settings.tensor_parallel_size)
    engine = vllm_engine.build_engine(kwargs, force_async=settings.engine_mode == "async")
    return engine, watch_steps(engine)


def engine_facts(engine: Any) -> dict[str, Any]:
    """Scheduler class, model runner and engine-process mode that ran (``adapter.engine``)."""
    from memshare.engine.adapter import engine as vllm_engine

    return vllm_engine.engine_facts(engine)


def make_llm(settings: EngineSettings, sharing: MemShareConfig | None, **kw: Any) -> Any:
    """An in-process ``LLM`` (harness, probes): the backend's modes only."""
    if settings.engine_mode in ("defaults", "async"):
        raise ValueError(f"make_llm builds in-process engines; engine mode {settings.engine_mode!r} needs make_engine")
    adapter.check_version()
    # One process: the scheduler's statistics are read directly after a run.
    adapter.set_engine_env(settings.tensor_parallel_size)
    from vllm import LLM

    return LLM(**engine_kwargs(settings, sharing, **kw))


def scheduler_connector(llm: Any) -> Any:
    """The scheduler-side MemShareConnector of an in-process engine (``LLM`` or ``LLMEngine``;
    None for plain vLLM)."""
    return vllm_scheduler.connector_of(vllm_scheduler.scheduler_of(llm))


def watch_steps(llm: Any) -> Any:
    """Per-step statistics of an in-process engine: the backend's own, or for plain vLLM a
    ``StepStats`` fed by a wrapped ``schedule`` (same counting either way)."""
    sched = vllm_scheduler.scheduler_of(llm)
    connector = vllm_scheduler.connector_of(sched)
    if connector is not None:
        return connector.scheduler_side.steps
    from memshare.engine.stats import StepStats

    stats = StepStats()
    pool = vllm_scheduler.block_pool_of(sched)
    vllm_scheduler.watch_schedule(sched, lambda out: stats.record(len(vllm_scheduler.scheduled_req_ids(out)),
                                                                  vllm_scheduler.used_blocks(pool),
                                                                  len(vllm_scheduler.preempted_req_ids(out))))
    return stats


def run_report(llm: Any, steps: Any) -> dict[str, Any]:
    """Step and sharing statistics plus the leak check; call when no request is in flight."""
    if not vllm_scheduler.in_process(llm):
        from memshare.engine.adapter import engine as vllm_engine

        return vllm_engine.stat_logger_report(llm, steps)
    sched = vllm_scheduler.scheduler_of(llm)
    connector = vllm_scheduler.connector_of(sched)
    pool = vllm_scheduler.block_pool_of(sched)
    report: dict[str, Any] = connector.scheduler_side.report() if connector is not None else steps.report()
    pins = connector.scheduler_side.outstanding_pins() if connector is not None else 0
    report["leaked_blocks"] = vllm_scheduler.leaked_blocks(pool) + pins
    report["kv_blocks_total"] = vllm_scheduler.num_kv_blocks(pool)
    report["prefix_caching"] = vllm_scheduler.prefix_caching_enabled(pool)
    return report


def _is_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()
