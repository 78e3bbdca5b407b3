"""vLLM's worker side: the model runner's block table, the KV cache facts, the model's RoPE.

What the worker needs to read the KV cache and to follow a remap: the model runner (V1, synchronous
or async scheduling), its block table, the attention layers vLLM built (platform, backend, heads, dtypes)
and the rotary embedding the model applies to keys (``memshare.core.rope`` has the math).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from memshare.errors import UserError

if TYPE_CHECKING:
    import torch


def check_model_runner(runner: Any) -> None:
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    if not isinstance(runner, GPUModelRunner):
        raise UserError(
            f"memshare needs vLLM's V1 model runner, got {type(runner).__name__}; "
            "set VLLM_USE_V2_MODEL_RUNNER=0"
        )


def wait_for_input_copies(runner: Any) -> None:
    """Under async scheduling, wait until the previous step's host-to-device input copies are done.

    NOTE: the V1 runner copies the persistent block table (pinned host memory) to the device
    without blocking, and only waits for that copy inside ``execute_model``'s input preparation
    (``synchronize_input_prep``, the ``prepare_inputs_event``), which runs after the connector's
    ``handle_preemptions``. A remap written into the host table before that wait could reach the
    device as part of the previous step's copy, so the wait comes first. The runner waits on the
    same event right after; without async scheduling there is no event and nothing to wait for.
    """
    event = getattr(runner, "prepare_inputs_event", None)
    if event is not None:
        event.synchronize()


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


def check_parallel(vllm_config: Any, policy_name: str) -> None:
    """Refuse parallel layouts a sharing policy cannot serve (dense runs anywhere vLLM runs)."""
    if policy_name == "dense":
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
    """The RoPE this model applies to keys: style and rotary dim from vLLM's rotary modules, the
    frequencies from the model config (``memshare.core.rope_detect``).

    NOTE: Hugging Face configs do not say NeoX (rotate-half) vs GPT-J (interleaved); the model
    code does, so the style is read from the rotary embedding vLLM built for this model.
    """
    from vllm.model_executor.layers.rotary_embedding.base import RotaryEmbeddingBase
    from vllm.model_executor.layers.rotary_embedding.mrope import MRotaryEmbedding

    from memshare.core.rope_detect import RotaryModule, rope_spec_for_model

    found, other, inside = [], [], []
    for name, module in runner.get_model().named_modules():
        if any(name.startswith(p) for p in inside):
            continue  # a rotary module's own helpers (ApplyRotaryEmb)
        if isinstance(module, RotaryEmbeddingBase) and not isinstance(module, MRotaryEmbedding):
            found.append(RotaryModule(bool(module.is_neox_style), int(module.rotary_dim), int(module.head_size)))
            inside.append(name + ".")
        elif "Rotary" in type(module).__name__ or "RoPE" in type(module).__name__:
            other.append(type(module).__name__)
            inside.append(name + ".")
    try:
        return rope_spec_for_model(found, other, model_config.hf_config.to_dict())
    except ValueError as exc:
        raise UserError(str(exc)) from exc


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
