"""vLLM's scheduler side: the block pool, the per-request block lists, and the in-process engine.

Reads and the two edits MemShare makes (``replace_block``, ``stop_prefix_caching``) go through
here; reference counts change only through the pool's own verbs (``touch``, ``free_blocks``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memshare.errors import UserError


def single_type_manager(kv_cache_manager: Any) -> Any:
    """The one full-attention manager that owns ``req_to_blocks``."""
    managers = kv_cache_manager.coordinator.single_type_managers
    if len(managers) != 1:
        raise UserError("memshare supports models with one KV cache group (full attention only)")
    return managers[0]


def block_pool(kv_cache_manager: Any) -> Any:
    return kv_cache_manager.block_pool


def prefix_caching_enabled(block_pool: Any) -> bool:
    return bool(block_pool.enable_caching)


def used_blocks(block_pool: Any) -> int:
    """KV blocks held by requests (the null block and blocks held out of the pool excluded);
    evictable cached blocks count as free."""
    return (block_pool.num_gpu_blocks - 1) - block_pool.get_num_free_blocks() - held_out(block_pool)


def scheduled_req_ids(scheduler_output: Any) -> dict[str, int]:
    """Requests scheduled in this step -> tokens scheduled for each."""
    return scheduler_output.num_scheduled_tokens


def preempted_req_ids(scheduler_output: Any) -> Any:
    return scheduler_output.preempted_req_ids


@dataclass(frozen=True, slots=True)
class RequestView:
    """What the scheduler side reads of a vLLM ``Request``."""

    prompt_token_ids: Any
    all_token_ids: Any
    num_computed_tokens: int
    num_preemptions: int


def request_view(request: Any) -> RequestView:
    return RequestView(request.prompt_token_ids, request.all_token_ids, request.num_computed_tokens,
                       request.num_preemptions)


def requests_with_new_full_blocks(records: dict[str, Any], scheduled: Any, block_size: int) -> list[tuple[str, Any, int]]:
    """The per-step check: ``(req_id, record, num_full_blocks)`` of the scheduled requests, in
    ``records`` order, whose full blocks (KV written) number more than ``record.seen_full``
    (``record.request`` is vLLM's ``Request``). One pass, no call per request: it runs over every
    running request every step."""
    return [(rid, rec, n) for rid, rec in records.items()
            if rid in scheduled and (n := rec.request.num_computed_tokens // block_size) > rec.seen_full]


def all_token_ids(request: Any) -> Any:
    return request.all_token_ids


def num_preemptions(request: Any) -> int:
    return request.num_preemptions


def num_output_tokens(request: Any) -> int:
    """Output positions sampled or being sampled: with async scheduling the token of a step in
    flight is a placeholder (``num_output_placeholders``, always 0 with synchronous scheduling)."""
    return len(request.all_token_ids) - len(request.prompt_token_ids) + request.num_output_placeholders


def external_request_id(req_id: str) -> str:
    """The id the client gave: vLLM 0.32 appends ``-`` and 8 random characters to it
    (``InputProcessor.assign_request_id``) unless VLLM_DISABLE_REQUEST_ID_RANDOMIZATION is set."""
    head, sep, tail = req_id.rpartition("-")
    return head if sep and len(tail) == 8 else req_id


def block_id(block: Any) -> int:
    return block.block_id


def block_ids(blocks: list[Any]) -> list[int]:
    return [b.block_id for b in blocks]


def ref_count(block: Any) -> int:
    return block.ref_cnt


def is_null(block: Any) -> bool:
    return block.is_null


def is_free_and_unhashed(block: Any) -> bool:
    """No request holds ``block`` and it is no prefix-cache entry (nothing can read it)."""
    return block.ref_cnt == 0 and block.block_hash is None


def add_refs(block_pool: Any, blocks: list[Any]) -> None:
    """Ref count +1 through the pool's own verb (takes ref-0 blocks off the free queue)."""
    block_pool.touch(blocks)


def drop_refs(block_pool: Any, blocks: list[Any]) -> None:
    """Ref count -1 through the pool's own verb (ref-0 blocks go back to the free queue)."""
    block_pool.free_blocks(blocks)


def request_blocks(manager: Any, req_id: str) -> list[Any]:
    """The request's block list (KVCacheBlock objects), or [] if it holds none."""
    return manager.req_to_blocks.get(req_id, [])


def num_hashed_blocks(manager: Any, req_id: str) -> int:
    """Leading blocks of ``req_id`` registered for prefix caching."""
    return manager.num_cached_block.get(req_id, 0)


# Larger than any block count: ``cache_blocks`` hashes blocks [num_cached_block, num_full) only.
_NEVER_HASH = 1 << 40


def stop_prefix_caching(manager: Any, req_id: str) -> int:
    """Never hash another block of ``req_id`` for prefix caching; return how many it had hashed.

    NOTE: ``SingleTypeKVCacheManager.cache_blocks`` returns early when ``num_cached_block``
    is at or past the request's full blocks; vLLM resets the entry when it frees the request
    (finish or preemption), so a re-admitted request is hashed again from exact KV.
    """
    hashed = num_hashed_blocks(manager, req_id)
    if req_id in manager.num_cached_block:
        manager.num_cached_block[req_id] = _NEVER_HASH
    return hashed


def replace_block(manager: Any, block_pool: Any, req_id: str, index: int, new_block: Any) -> Any:
    """Point block ``index`` of ``req_id`` at ``new_block``; free the old one.

    NOTE: order matters: touch the new block first, then swap, then free the old,
    so no block is ever at ref 0 while a table still names it.
    """
    blocks = manager.req_to_blocks[req_id]
    old = blocks[index]
    block_pool.touch([new_block])
    blocks[index] = new_block
    block_pool.free_blocks([old])
    return old


def num_kv_blocks(block_pool: Any) -> int:
    """Blocks requests can hold (the pool keeps one as its null block; held-out blocks excluded)."""
    return block_pool.num_gpu_blocks - 1 - held_out(block_pool)


def leaked_blocks(block_pool: Any) -> int:
    """Blocks not back in the free pool plus blocks whose ref count is not zero (held-out blocks excluded)."""
    held = {b.block_id for b in getattr(block_pool, _HELD, ())}
    not_free = (block_pool.num_gpu_blocks - 1) - block_pool.get_num_free_blocks() - len(held)
    nonzero = sum(1 for b in block_pool.blocks if not b.is_null and b.ref_cnt != 0 and b.block_id not in held)
    return max(not_free, nonzero)


# ------------------------------------------------------------------ a smaller budget in a larger pool
# One engine serves runs at several KV budgets (``memshare.engine.session``): it is built with the
# largest, and a run at a smaller one holds the difference out of the free queue through the pool's
# own verb, so admission and preemption see exactly the smaller pool. NOTE: vLLM's admission
# watermark (``scheduler_config.watermark``, default 0) is a fraction of the built pool; the backend
# never sets it.
_HELD = "_memshare_held_out"


def held_out(block_pool: Any) -> int:
    return len(getattr(block_pool, _HELD, ()))


def hold_out(block_pool: Any, num_blocks: int) -> int:
    """Take ``num_blocks`` free blocks out of the pool until ``release_held``; return the blocks
    requests can hold now. Call on an idle engine after its prefix cache was reset."""
    if held_out(block_pool):
        raise RuntimeError("memshare: blocks are already held out of this pool (release_held first)")
    if num_blocks < 0 or num_blocks > block_pool.get_num_free_blocks():
        raise ValueError(f"cannot hold {num_blocks} of {block_pool.get_num_free_blocks()} free KV blocks")
    setattr(block_pool, _HELD, block_pool.get_new_blocks(num_blocks) if num_blocks else [])
    return num_kv_blocks(block_pool)


def release_held(block_pool: Any) -> int:
    """Give the held-out blocks back to the free queue; return how many."""
    blocks = getattr(block_pool, _HELD, [])
    if blocks:
        block_pool.free_blocks(blocks)
    setattr(block_pool, _HELD, [])
    return len(blocks)


# --------------------------------------------------------------------------- in-process engine


def watch_schedule(scheduler: Any, on_output: Any) -> None:
    """Call ``on_output(scheduler_output)`` after every ``scheduler.schedule()`` (plain vLLM runs)."""
    schedule = scheduler.schedule

    def watched(*args: Any, **kwargs: Any) -> Any:
        out = schedule(*args, **kwargs)
        on_output(out)
        return out

    scheduler.schedule = watched


def connector_of(scheduler: Any) -> Any:
    """The scheduler's KV connector (None for plain vLLM)."""
    return scheduler.connector


def block_pool_of(scheduler: Any) -> Any:
    return scheduler.kv_cache_manager.block_pool


def _llm_engine(llm: Any) -> Any:
    """The ``LLMEngine`` of an ``LLM``, or the engine itself."""
    return getattr(llm, "llm_engine", llm)


def in_process(llm: Any) -> bool:
    """Whether the engine core (and so its scheduler) lives in this process."""
    return getattr(_llm_engine(llm).engine_core, "engine_core", None) is not None


def scheduler_of(llm: Any) -> Any:
    """The Scheduler of an ``LLM`` or ``LLMEngine`` built with VLLM_ENABLE_V1_MULTIPROCESSING=0."""
    core = getattr(_llm_engine(llm).engine_core, "engine_core", None)
    if core is None:
        raise UserError("memshare statistics need the in-process engine (VLLM_ENABLE_V1_MULTIPROCESSING=0)")
    return core.scheduler
