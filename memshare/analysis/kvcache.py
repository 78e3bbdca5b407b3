"""Reading and editing a Hugging Face KV cache block by block (batch size 1).

Hugging Face keeps, per layer, ``keys`` and ``values`` of shape ``(1, H, S, D)``; keys are
stored after RoPE, as in vLLM's paged cache. Block ``b`` holds positions
``b * block_size + range(block_size)``.

Zero-copy sharing (arXiv 2507.21433) points block ``i``'s entry of the block table at the
physical block behind ``j``: every later token then attends to ``j``'s stored K/V in ``i``'s
place. ``share_block`` does exactly that to a dense cache by copying ``j``'s slice over ``i``'s
in every layer (``DynamicLayer.update`` concatenates, so the edit persists).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def cache_layers(cache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(keys, values) per layer, each (1, H, S, D): transformers 5 ``layers`` or 4.x lists."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return list(zip(cache.key_cache, cache.value_cache))


def cache_length(cache) -> int:
    """Tokens whose K/V the cache holds."""
    layers = cache_layers(cache)
    return 0 if not layers or layers[0][0] is None or layers[0][0].numel() == 0 else int(layers[0][0].shape[-2])


def stacked_kv(cache) -> tuple[torch.Tensor, torch.Tensor]:
    """All layers of a batch-1 cache: K, V each (L, H, S, D), copies."""
    layers = cache_layers(cache)
    return torch.stack([k[0] for k, _ in layers]), torch.stack([v[0] for _, v in layers])


def block_kv(keys: torch.Tensor, values: torch.Tensor, blocks: Sequence[int],
             block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather blocks from stacked K, V (L, H, S, D): returns K, V each (C, L, H, T, D)."""
    pos = _positions(blocks, block_size, keys.device)  # (C, T)
    return keys[:, :, pos].permute(2, 0, 1, 3, 4), values[:, :, pos].permute(2, 0, 1, 3, 4)


def cache_block_kv(cache, blocks: Sequence[int], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Gather blocks straight from a live cache: K, V each (C, L, H, T, D), copies."""
    layers = cache_layers(cache)
    pos = _positions(blocks, block_size, layers[0][0].device)  # (C, T)
    k = torch.stack([lk[0][:, pos] for lk, _ in layers])  # (L, H, C, T, D)
    v = torch.stack([lv[0][:, pos] for _, lv in layers])
    return k.permute(2, 0, 1, 3, 4), v.permute(2, 0, 1, 3, 4)


def share_block(cache, query: int, target: int, block_size: int) -> None:
    """Make block ``query`` hold block ``target``'s stored K/V in every layer (in place).

    NOTE: ``target`` is copied as it is now: if it was itself shared, that is the physical
    block behind it, as in the engine.
    """
    if query == target:
        return
    n = cache_length(cache)
    hi = (max(query, target) + 1) * block_size
    if min(query, target) < 0 or hi > n:
        raise ValueError(f"blocks {query} and {target} must be full in a cache of {n} tokens")
    q = slice(query * block_size, (query + 1) * block_size)
    t = slice(target * block_size, (target + 1) * block_size)
    with torch.inference_mode():  # caches filled under inference mode hold inference tensors
        for k, v in cache_layers(cache):
            k[:, :, q] = k[:, :, t]  # disjoint slices of one tensor: a plain copy
            v[:, :, q] = v[:, :, t]


def _positions(blocks: Sequence[int], block_size: int, device) -> torch.Tensor:
    idx = torch.as_tensor(list(blocks), dtype=torch.long, device=device)
    return idx[:, None] * block_size + torch.arange(block_size, device=device)
