"""KV caches built with vLLM's own view construction, filled as its attention backends read them."""

from __future__ import annotations

import torch
from vllm.v1.kv_cache_interface import FullAttentionSpec, KVCacheTensor, compute_layout_strides, create_kv_cache_views
from vllm.v1.kv_cache_layout import KVCacheLayout

GPU_LAYOUTS = (KVCacheLayout.LBNHC, KVCacheLayout.BLNHC, KVCacheLayout.LBHNC, KVCacheLayout.BLHNC)


def build_views(layout: KVCacheLayout, *, dtype: torch.dtype, block_size: int, num_kv_heads: int, head_size: int,
                head_size_v: int | None = None, num_layers: int = 3, num_blocks: int = 6,
                kernel_block_size: int | None = None, device: str = "cpu") -> dict[str, torch.Tensor]:
    """Per-layer views ``[blocks, H, tokens, D + Dv]`` over one allocation, as ``allocate_kv_cache`` makes them."""
    spec = FullAttentionSpec(block_size=block_size, num_kv_heads=num_kv_heads, head_size=head_size,
                             head_size_v=head_size_v, dtype=dtype)
    layer_stride, block_stride, *_ = compute_layout_strides(spec, num_blocks, num_layers, layout)
    size = spec.page_size_bytes * num_blocks * num_layers
    tensor = KVCacheTensor(size=size, layers=[f"layers.{i}.attn" for i in range(num_layers)],
                           layer_stride=layer_stride, block_stride=block_stride)
    raw = torch.zeros(size, dtype=torch.int8, device=device)
    views = create_kv_cache_views(raw, spec, num_blocks, layout, tensor, kernel_block_size=kernel_block_size)
    return dict(zip(tensor.layers, views))


def fill_as_gpu_backends(views: dict[str, torch.Tensor], head_size: int, block_size: int,
                         seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Write random K and V through ``view.transpose(1, 2).split(head_size, -1)`` (FlashAttention,
    Triton, FlashInfer); return them per scheduler block, ``(B, L, H, T, D)`` and ``(B, L, H, T, Dv)``.

    With kernel blocks (``kbs < block_size``) token ``t`` of block ``b`` is in kernel block
    ``b * r + t // kbs`` at row ``t % kbs``, as the backends' kernel-block mapping reads it.
    """
    g = torch.Generator().manual_seed(seed)
    ks, vs = [], []
    for view in views.values():
        key_cache, value_cache = view.transpose(1, 2).split(head_size, dim=-1)  # (kB, kbs, H, D), (kB, kbs, H, Dv)
        kb, kbs, h = key_cache.shape[:3]
        r = block_size // kbs
        k = torch.randn(kb // r, block_size, h, key_cache.shape[-1], generator=g).to(view.dtype)
        v = torch.randn(kb // r, block_size, h, value_cache.shape[-1], generator=g).to(view.dtype)
        key_cache.copy_(k.view(kb, kbs, h, -1).to(view.device))
        value_cache.copy_(v.view(kb, kbs, h, -1).to(view.device))
        ks.append(k.transpose(1, 2))  # (B, H, T, D)
        vs.append(v.transpose(1, 2))
    return torch.stack(ks, 1), torch.stack(vs, 1)


def fill_as_cpu_vec_kernel(views: dict[str, torch.Tensor], head_size: int, block_size: int,
                           seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Write K and V the way ``cpu_attn`` stores them under the ``vec`` ISA: the kernel views a
    block as ``[H, 2 * T, D]``; a head's K is stored transposed (``[D, T]``) in the first half,
    its V as ``[T, D]`` in the second. Returns K, V per block, ``(B, L, H, T, D)``."""
    g = torch.Generator().manual_seed(seed)
    ks, vs = [], []
    for view in views.values():
        b, h = view.shape[:2]
        kernel = view.view(b, h, 2 * block_size, head_size)
        k = torch.randn(b, h, block_size, head_size, generator=g).to(view.dtype)
        v = torch.randn(b, h, block_size, head_size, generator=g).to(view.dtype)
        kernel[:, :, :block_size].copy_(k.transpose(-1, -2).reshape(b, h, block_size, head_size))
        kernel[:, :, block_size:].copy_(v)
        ks.append(k)
        vs.append(v)
    return torch.stack(ks, 1), torch.stack(vs, 1)
