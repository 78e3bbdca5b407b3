"""vLLM's engine: building it from a config, what actually ran, and statistics of plain vLLM.

* ``build_engine``: an ``LLMEngine`` from engine keywords, as ``LLM`` builds one, with the option
  to turn async scheduling on after vLLM's platform hook (the CPU build turns it off there).
* ``engine_facts``: the scheduler class, the model runner and the engine-process mode of a
  running engine, read from it (the runner from the workers themselves).
* ``StepStatsLogger`` and ``stat_logger_report``: per-step statistics of an engine whose core runs
  in its own process (``vanilla`` as users run it), through vLLM's stat-logger interface.
"""

from __future__ import annotations

from typing import Any

from memshare.engine.stats import StepStats


def build_engine(kwargs: dict[str, Any], *, force_async: bool = False, stats: StepStats | None = None) -> Any:
    """An ``LLMEngine`` from ``LLM``-style keywords.

    Args:
        kwargs: ``EngineArgs`` fields (``memshare.engine.llm.engine_kwargs``).
        force_async: set ``scheduler_config.async_scheduling`` after vLLM resolved the config.
            NOTE: the CPU platform hook sets it False unconditionally (``platforms/cpu.py``); set
            afterwards, the engine core builds the AsyncScheduler and a batch queue of 2 and the
            V1 runner takes its async path (``max_concurrent_batches``, ``get_scheduler_cls`` and
            ``GPUModelRunner.use_async_scheduling`` all read the flag later). A test switch.
        stats: filled every engine step through vLLM's stat loggers (log stats and per-iteration
            details on: observability only, the schedule is the same).
    """
    from vllm.engine.arg_utils import EngineArgs
    from vllm.usage.usage_lib import UsageContext
    from vllm.v1.engine.llm_engine import LLMEngine

    if stats is not None:
        kwargs = {**kwargs, "enable_logging_iteration_details": True}
    config = EngineArgs(**kwargs).create_engine_config(UsageContext.LLM_CLASS)
    if force_async:
        config.scheduler_config.async_scheduling = True
    loggers = None
    if stats is not None:
        loggers = [lambda vllm_config, engine_index=0: StepStatsLogger(stats, vllm_config)]
    return LLMEngine.from_vllm_config(config, UsageContext.LLM_CLASS, stat_loggers=loggers,
                                      disable_log_stats=stats is None)


def runner_facts(worker: Any) -> dict[str, Any]:
    """Run on each worker (``collective_rpc``): its model runner and whether it schedules async."""
    runner = worker.model_runner
    return {"model_runner": _name(type(runner)),
            "runner_async_scheduling": bool(getattr(runner, "use_async_scheduling", False))}


def engine_facts(engine: Any) -> dict[str, Any]:
    """What ran, read from the engine: scheduler class, model runner, engine-process mode, executor.

    In-process engines are read from their objects: the scheduler, and the model runner from the
    workers themselves (``collective_rpc``). NOTE: with the engine core in its own process (vLLM's
    default) both are out of reach without a flag of ours (a function crosses to the workers only
    with VLLM_ALLOW_INSECURE_SERIALIZATION=1), so they come from the engine's resolved config, the
    values the engine core and workers build from: ``scheduler_config.get_scheduler_cls()`` and
    ``vllm_config.use_v2_model_runner`` (``facts_source`` says which).
    """
    config = engine.vllm_config
    client = engine.engine_core
    inner = getattr(client, "engine_core", None)  # InprocClient: the EngineCore itself
    facts: dict[str, Any] = {
        "async_scheduling": bool(config.scheduler_config.async_scheduling),
        "engine_process": "in-process" if inner is not None else "own process",
        "engine_client": type(client).__name__,
        "executor": str(config.parallel_config.distributed_executor_backend),
    }
    if inner is not None:
        workers = engine.collective_rpc(runner_facts)
        facts.update(scheduler_class=_name(type(inner.scheduler)), batch_queue_size=int(inner.batch_queue_size),
                     facts_source="engine objects", **workers[0])
        if any(w != workers[0] for w in workers):
            facts["workers_differ"] = workers
    else:
        facts.update(scheduler_class=_name(config.scheduler_config.get_scheduler_cls()),
                     batch_queue_size=int(config.max_concurrent_batches),
                     model_runner="V2" if config.use_v2_model_runner else "V1",
                     runner_async_scheduling=bool(config.scheduler_config.async_scheduling),
                     facts_source="engine config")
    return facts


def stat_logger_report(engine: Any, steps: StepStats) -> dict[str, Any]:
    """The run report of an engine whose core runs in its own process (``vanilla``), from vLLM's
    own statistics. ``leaked_blocks``: KV blocks still in use after the last step (no backend, no pins)."""
    cache = engine.vllm_config.cache_config
    report: dict[str, Any] = steps.report()
    report["leaked_blocks"] = steps.last_kv_blocks
    report["kv_blocks_total"] = cache.num_gpu_blocks - 1 - steps.held_out if cache.num_gpu_blocks else None
    report["prefix_caching"] = bool(cache.enable_prefix_caching)
    return report


def _name(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _stat_logger_base() -> type:
    from vllm.v1.metrics.loggers import StatLoggerBase

    return StatLoggerBase


class StepStatsLogger(_stat_logger_base()):  # type: ignore[misc]
    """Feeds a ``StepStats`` from the ``SchedulerStats`` vLLM sends after every engine step.

    NOTE: ``SchedulerStats`` is no stable vLLM interface (its docstring says so); fields read:
    ``iteration_details`` (requests scheduled: context + generation), ``kv_cache_usage`` (fraction of
    the pool minus its null block, taken after the step's frees, not at ``schedule()`` as
    ``StepStats`` is elsewhere). Preemptions come from ``IterationStats.num_preempted_reqs``.
    """

    def __init__(self, stats: StepStats, vllm_config: Any, engine_index: int = 0) -> None:
        self.stats = stats
        self.num_blocks: int | None = None
        self._vllm_config = vllm_config

    def record(self, scheduler_stats: Any, iteration_stats: Any, mm_cache_stats: Any = None,
               engine_idx: int = 0) -> None:
        if self.num_blocks is None:
            blocks = self._vllm_config.cache_config.num_gpu_blocks
            self.num_blocks = (blocks - 1) if blocks else 0
        preempted = int(getattr(iteration_stats, "num_preempted_reqs", 0) or 0)
        if scheduler_stats is None:
            if preempted:
                self.stats.num_preemptions += preempted
            return
        details = scheduler_stats.iteration_details
        scheduled = (details.num_ctx_requests + details.num_generation_requests) if details is not None else 0
        usage = float(scheduler_stats.kv_cache_usage)
        # NOTE: a pool size unknown to this process still reports a non-empty pool as in use.
        used = round(usage * self.num_blocks) if self.num_blocks else int(usage > 0)
        if self.num_blocks:
            used = max(used - self.stats.held_out, 0)
        self.stats.record(scheduled, used, preempted)

    def log_engine_initialized(self) -> None:
        return None


# --------------------------------------------------------------------------- one engine, many runs
# A KV budget smaller than the engine's pool is held out of the pool's free queue for a run
# (``adapter.scheduler.hold_out``). An in-process engine core is reached directly; vLLM's default
# engine core runs in its own process (``vanilla``), reached through vLLM's utility-call channel,
# which calls an ``EngineCore`` method by name: the plugin (``memshare.engine.plugin``) adds these
# two there, in every process vLLM loads its general plugins in (the engine core's included).
HOLD_METHOD = "memshare_hold_out"
RELEASE_METHOD = "memshare_release_held"


def install_pool_utilities() -> None:
    """Add ``memshare_hold_out(n)`` and ``memshare_release_held()`` to vLLM's ``EngineCore`` (idempotent)."""
    from vllm.v1.engine.core import EngineCore

    from memshare.engine.adapter import scheduler as vllm_scheduler

    def hold(core: Any, num_blocks: int) -> int:
        return vllm_scheduler.hold_out(core.scheduler.kv_cache_manager.block_pool, int(num_blocks))

    def release(core: Any) -> int:
        return vllm_scheduler.release_held(core.scheduler.kv_cache_manager.block_pool)

    if not hasattr(EngineCore, HOLD_METHOD):
        setattr(EngineCore, HOLD_METHOD, hold)
        setattr(EngineCore, RELEASE_METHOD, release)


def _core_call(engine: Any, method: str, *args: Any) -> Any:
    client = engine.engine_core
    inner = getattr(client, "engine_core", None)  # InprocClient: the EngineCore itself
    if inner is not None:
        return getattr(inner, method)(*args)
    return client.call_utility(method, *args)


def pool_size(engine: Any) -> int:
    """KV blocks the engine was built with that requests can hold (its null block excluded)."""
    return int(engine.vllm_config.cache_config.num_gpu_blocks) - 1


def hold_out(engine: Any, num_blocks: int) -> int:
    """Hold ``num_blocks`` blocks out of an idle engine's pool; return the blocks requests can hold."""
    install_pool_utilities()
    return int(_core_call(engine, HOLD_METHOD, int(num_blocks)))


def release_held(engine: Any) -> int:
    install_pool_utilities()
    return int(_core_call(engine, RELEASE_METHOD))


def reset_prefix_cache(engine: Any) -> None:
    """Forget every prefix-cache entry of an idle engine (vLLM's own call); raise if blocks are in use."""
    if not engine.reset_prefix_cache():
        raise RuntimeError("vLLM could not reset the prefix cache: KV blocks are still in use")
