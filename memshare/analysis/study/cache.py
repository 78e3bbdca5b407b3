"""A Hugging Face KV cache that writes into preallocated buffers (no per-chunk concatenation).

``DynamicCache`` concatenates the new K/V onto the old at every forward pass, which copies the
whole cache each time: quadratic in the trace length, and the main cost of a batched replay of
2,048-token traces on a CPU. ``buffered_cache`` keeps per layer one ``(B, H, max_len, D)``
buffer and hands attention a view of its first ``n`` positions, so an edit of ``layer.keys``
(``memshare.analysis.kvcache.share_block``) lands in the buffer, as a block-table remap would.
"""

from __future__ import annotations

import torch
from transformers.cache_utils import DynamicLayer


class BufferedLayer(DynamicLayer):
    """``DynamicLayer`` semantics over a preallocated buffer of ``max_len`` positions."""

    def __init__(self, max_len: int) -> None:
        super().__init__()
        self.max_len = max_len
        self._n = 0

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        self.dtype, self.device = key_states.dtype, key_states.device
        b, h, _, d = key_states.shape
        self._kbuf = torch.zeros(b, h, self.max_len, d, dtype=self.dtype, device=self.device)
        self._vbuf = torch.zeros(b, h, self.max_len, value_states.shape[-1], dtype=self.dtype, device=self.device)
        self.keys, self.values = self._kbuf[:, :, :0], self._vbuf[:, :, :0]
        self.is_initialized = True

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        q = key_states.shape[-2]
        if self._n + q > self.max_len:
            raise ValueError(f"buffered cache holds {self.max_len} positions; {self._n + q} asked for")
        self._kbuf[:, :, self._n:self._n + q] = key_states
        self._vbuf[:, :, self._n:self._n + q] = value_states
        self._n += q
        self.keys, self.values = self._kbuf[:, :, :self._n], self._vbuf[:, :, :self._n]
        return self.keys, self.values

    def get_seq_length(self) -> int:
        return self._n

    def widen(self, rows: int) -> None:
        """Copy batch row 0 into ``rows`` rows (a prompt prefilled once for every row)."""
        self._kbuf = self._kbuf[:1].expand(rows, -1, -1, -1).contiguous()
        self._vbuf = self._vbuf[:1].expand(rows, -1, -1, -1).contiguous()
        self.keys, self.values = self._kbuf[:, :, :self._n], self._vbuf[:, :, :self._n]


def buffered_cache(model_config, max_len: int):
    """A ``DynamicCache`` whose layers are ``BufferedLayer``s of ``max_len`` positions."""
    from transformers import DynamicCache

    cache = DynamicCache(config=model_config)
    cache.layers = [BufferedLayer(max_len) for _ in range(model_config.num_hidden_layers)]
    return cache


def cache_from_kv(model_config, keys: torch.Tensor, values: torch.Tensor, upto: int, max_len: int):
    """A batch-1 buffered cache holding the first ``upto`` positions of ``keys``/``values`` (L, H, S, D)."""
    cache = buffered_cache(model_config, max_len)
    for layer, k, v in zip(cache.layers, keys, values):
        layer.lazy_initialization(k[None, :, :0], v[None, :, :0])
        layer._kbuf[0, :, :upto] = k[:, :upto]
        layer._vbuf[0, :, :upto] = v[:, :upto]
        layer._n = upto
        layer.keys, layer.values = layer._kbuf[:, :, :upto], layer._vbuf[:, :, :upto]
    return cache
