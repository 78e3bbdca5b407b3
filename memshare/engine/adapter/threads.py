"""The CPU build's OpenMP thread binding for tensor-parallel workers (``VLLM_CPU_OMP_THREADS_BIND``).

vLLM's CPU build starts one worker process per tensor-parallel rank and pins each rank's OpenMP
threads (``vllm/utils/ompmultiprocessing.py``, 0.32). The variable takes ``auto`` (its default: rank
i gets the CPUs of the i-th NUMA node, so ``auto`` stops at start with "Not enough allowed NUMA
nodes" when there are fewer nodes than ranks), ``nobind`` (no pinning and no thread count: every
rank starts as many OpenMP threads as there are CPUs) or one CPU list per rank, ``|``-separated
(``0-3|4-7``; rank i runs one thread per CPU of its list). There is no ``all``.

Where ``auto`` fails and the user set nothing, the backend sets a list per rank:

* at least as many CPUs as ranks: contiguous, near-equal slices of the allowed CPUs;
* fewer CPUs than ranks, up to two ranks per CPU: one CPU per rank, round robin (``0|1|0`` for
  3 ranks on 2 CPUs). Ranks meet in an all-reduce in every layer, so a rank waits for the
  slowest one: one pinned thread each keeps the overlap to ranks taking turns on a core. Measured
  on the shared 2-CPU machine (TP = 3, 2 prompts, 64 + 17 output tokens, runs alternated):
  ``0|1|0`` generated them in 19-21 s; ``nobind`` with ``OMP_NUM_THREADS=1`` (one thread per rank,
  unpinned) in 34-41 s; plain ``nobind`` (2 OpenMP threads per rank, 6 on 2 CPUs, spinning at every
  all-reduce) had finished only the 17-token request after 12 minutes, when it was stopped. The
  price of pinning: a rank cannot move off a CPU that another busy process holds (seen at start-up
  on the shared machine, next to another engine's threads);
* more than two ranks per CPU: refused (``UserError``); set the variable by hand to insist.

Where ``auto`` works (a NUMA node per rank), vLLM's own NUMA-aware choice stands.
"""

from __future__ import annotations

import logging
import os
from collections.abc import MutableMapping, Sequence

from memshare.errors import UserError

THREADS_BIND_ENV = "VLLM_CPU_OMP_THREADS_BIND"
# vLLM's switch that fakes NUMA nodes for ``auto``: whoever sets it has chosen a binding too.
_SIM_NUMA_ENV = "VLLM_CPU_SIM_MULTI_NUMA"
MAX_RANKS_PER_CPU = 2

logger = logging.getLogger("memshare")
# The value this process put into os.environ (a reused process may next build another TP size).
_ours: str | None = None


def thread_binding(num_ranks: int, cpus: Sequence[int], num_numa_nodes: int) -> str | None:
    """The ``VLLM_CPU_OMP_THREADS_BIND`` value for ``num_ranks`` local ranks on ``cpus`` (the
    allowed CPU ids), or None where vLLM's ``auto`` works; UserError when none is sensible."""
    if num_ranks <= 1 or num_numa_nodes >= num_ranks:
        return None
    cpus = sorted(cpus)
    if not cpus or num_ranks > MAX_RANKS_PER_CPU * len(cpus):
        raise UserError(f"--tensor-parallel-size {num_ranks} on {len(cpus)} CPU(s) is more than "
                        f"{MAX_RANKS_PER_CPU} ranks per CPU: lower it, or set {THREADS_BIND_ENV} yourself, "
                        "one CPU list per rank, '|'-separated (e.g. 0|1|0: 3 ranks on CPUs 0 and 1)")
    if num_ranks > len(cpus):
        return "|".join(str(cpus[rank % len(cpus)]) for rank in range(num_ranks))
    per, extra = divmod(len(cpus), num_ranks)
    lists, start = [], 0
    for rank in range(num_ranks):
        size = per + (rank < extra)
        lists.append(_id_list(cpus[start:start + size]))
        start += size
    return "|".join(lists)


def apply_binding(env: MutableMapping[str, str], tensor_parallel_size: int) -> str | None:
    """Set ``THREADS_BIND_ENV`` in ``env`` (os.environ or a child's environment) for an engine of
    ``tensor_parallel_size`` ranks, logged in one line, and return it; None where none is needed
    (not the CPU build, one rank, ``auto`` works) or the user set one. A value this process set
    for an earlier engine is replaced or dropped."""
    current = env.get(THREADS_BIND_ENV)
    ours = current is not None and current == _ours
    if current is not None and not ours:
        return None
    facts = None if tensor_parallel_size <= 1 or _SIM_NUMA_ENV in env else _cpu_facts()
    value = thread_binding(tensor_parallel_size, *facts) if facts is not None else None
    if value is None:
        if ours:
            del env[THREADS_BIND_ENV]
        return None
    if value != current:
        logger.warning("memshare: %s=%s (one CPU list per tensor-parallel rank: vLLM's 'auto' needs a NUMA "
                       "node per rank; set the variable yourself to choose)", THREADS_BIND_ENV, value)
    env[THREADS_BIND_ENV] = value
    return value


def set_binding(tensor_parallel_size: int) -> None:
    """``apply_binding`` on this process's environment, before it builds an engine."""
    global _ours
    before = os.environ.get(THREADS_BIND_ENV)
    value = apply_binding(os.environ, tensor_parallel_size)
    if value is not None or before == _ours:  # set, or ours dropped
        _ours = value
    if os.environ.get(THREADS_BIND_ENV) != before:
        # NOTE: vLLM caches its environment variables once an engine has started in this process
        # (``vllm.envs.enable_envs_cache``); the next engine must read the new value.
        from vllm import envs

        envs.disable_envs_cache()


def _cpu_facts() -> tuple[list[int], int] | None:
    """(allowed CPU ids, visible NUMA nodes) as vLLM's CPU build reads them; None off the CPU build."""
    from vllm.platforms import current_platform

    if not current_platform.is_cpu():
        return None
    from vllm.utils import cpu_resource_utils

    cpus = [cpu.id for cpu in cpu_resource_utils.get_allowed_cpu_list()]
    return cpus, len(cpu_resource_utils.get_visible_memory_node())


def _id_list(ids: Sequence[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``0-2,5`` (vLLM's CPU list syntax)."""
    runs: list[list[int]] = []
    for i in ids:
        if runs and i == runs[-1][1] + 1:
            runs[-1][1] = i
        else:
            runs.append([i, i])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)
