"""Read whole KV blocks out of vLLM's per-layer caches as K and V, one reader per backend family.

The reader is chosen by platform and attention backend (facts the adapter reads from vLLM),
never by tensor shape: a shape cannot tell LBNHC from BLNHC, nor a CPU cache from a GPU one
with one KV head. Pure torch; the vLLM lookups live in ``memshare.engine.adapter.worker``.

GPU (FlashAttention, Triton, FlashInfer, FlexAttention on CUDA): every layer's cache is a view
of logical shape ``[num_kernel_blocks, H, kernel_block_size, D + Dv]`` built by vLLM's
``create_kv_cache_views``; its memory order comes from the resolved ``KVCacheLayout`` (LBNHC,
LBHNC, BLNHC, BLHNC), and the backends read it as ``view.transpose(1, 2).split(D, -1)``: K is
the first ``D`` channels of a token, V the rest. Indexing the view follows its strides, so one
reader serves every layout. A scheduler block may be split into ``r`` kernel blocks
(``block_size = r * kernel_block_size``); kernel block ``j`` of block ``b`` is row ``b * r + j``.

CPU (``CPU_ATTN``): ``[num_blocks, H, block_size, 2 * D]`` per layer, which the kernel views as
``[H, 2 * block_size, D]`` per block: K is the first half of a head's bytes, V the second.
Under the ``vec`` ISA each head's K is stored transposed, ``[D, block_size]``; other ISAs pack
K in ways not verified here, so only distances that do not need K per token (``kv``, ``k``,
``v``: a fixed permutation of a block's elements does not change them) are allowed there.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memshare.errors import UserError

# Backends that read the cache as ``view.transpose(1, 2).split(head_size, -1)`` (read in vLLM 0.32:
# v1/attention/backends/{flash_attn,triton_attn,flashinfer,flex_attention}.py).
CUDA_BACKENDS = ("FLASH_ATTN", "TRITON_ATTN", "FLASHINFER", "FLEX_ATTENTION")
FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


@dataclass(frozen=True, slots=True)
class LayerFacts:
    """One attention layer as vLLM built it on this rank."""

    name: str
    backend: str  # AttentionBackend.get_name()
    num_kv_heads: int  # on this rank
    head_size: int
    head_size_v: int
    shares_kv_of: str | None = None  # kv_sharing_target_layer_name


@dataclass(frozen=True, slots=True)
class KVCacheFacts:
    """What the reader must know, read from vLLM by the adapter (see ``adapter.worker.kv_cache_facts``)."""

    platform: str  # "cuda", "cpu", "rocm", ...
    block_size: int  # the scheduler's block size
    layers: tuple[LayerFacts, ...]
    kv_quantized: bool = False  # the cache or a layer stores fp8/int8/fp4 (vLLM's is_quantized_kv_cache)
    use_mla: bool = False
    cpu_isa: str | None = None  # the CPU attention kernel family; CPU only


def needs_per_token_k(distance: str) -> bool:
    return distance.startswith("k_unrope")


def make_kv_reader(kv_caches: dict[str, torch.Tensor], facts: KVCacheFacts, distance: str) -> KVReader:
    """The reader for this worker's caches, or ``UserError`` (one line) naming what is unsupported."""
    if facts.use_mla:
        raise UserError("memshare Stage 2 does not support MLA KV caches (latent KV, not per-head K/V); "
                        "use --policy dense or random with this model")
    if facts.kv_quantized:
        raise UserError("memshare Stage 2 does not support quantized (fp8/int8/fp4) KV caches: distances "
                        "would be measured on raw bytes; run with --kv-cache-dtype auto")
    own = [lf for lf in facts.layers if lf.shares_kv_of is None]
    if not own:
        raise UserError("memshare found no attention layer with its own KV cache")
    missing = [lf.name for lf in own if lf.name not in kv_caches]
    if missing:
        raise UserError(f"memshare: vLLM registered no KV cache for layer {missing[0]}")
    shapes = {(lf.num_kv_heads, lf.head_size, lf.head_size_v) for lf in own}
    if len(shapes) != 1:
        raise UserError("memshare Stage 2 needs every attention layer to have the same KV heads and head "
                        f"sizes; this model has {sorted(shapes)} (kv heads, K size, V size)")
    backends = {lf.backend for lf in own}
    if len(backends) != 1:
        raise UserError(f"memshare Stage 2 needs one attention backend for all layers; got {sorted(backends)}")
    backend = backends.pop()
    num_kv_heads, head_size, head_size_v = shapes.pop()
    caches = _distinct([kv_caches[lf.name] for lf in own])
    bad = {c.dtype for c in caches} - set(FLOAT_DTYPES)
    if bad:
        raise UserError(f"memshare Stage 2 needs a float16/bfloat16/float32 KV cache; got {sorted(map(str, bad))}")
    if facts.platform == "cuda" and backend in CUDA_BACKENDS:
        return CudaKVReader(caches, num_kv_heads, head_size, head_size_v, facts.block_size)
    if facts.platform == "cpu" and backend == "CPU_ATTN":
        if head_size != head_size_v:
            raise UserError("memshare on CPU needs equal K and V head sizes")
        if needs_per_token_k(distance) and facts.cpu_isa != "vec":
            raise UserError(f"--distance {distance} needs K per token, which memshare reads only under the "
                            f"CPU 'vec' attention kernel (this host uses '{facts.cpu_isa}'); use --distance "
                            "kv, k or v here")
        return CpuKVReader(caches, num_kv_heads, head_size, facts.block_size, k_transposed=facts.cpu_isa == "vec")
    raise UserError(f"memshare Stage 2 has no KV reader for attention backend {backend} on {facts.platform}; "
                    f"supported: {', '.join(CUDA_BACKENDS)} on CUDA, CPU_ATTN on CPU")


class KVReader:
    """K and V of whole blocks, over all layers that own a cache: ``(N, L, H, T, D)`` each."""

    def __init__(self, caches: list[torch.Tensor], num_kv_heads: int, head_size: int, head_size_v: int,
                 block_size: int) -> None:
        self.layers = caches
        self.num_kv_heads = num_kv_heads
        self.head_size = head_size
        self.head_size_v = head_size_v
        self.block_size = block_size

    @property
    def device(self) -> torch.device:
        return self.layers[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.layers[0].dtype

    @property
    def num_layers(self) -> int:
        return len(self.layers)

    def block_elems(self, *, want_k: bool, want_v: bool) -> int:
        """Elements of one block's K and/or V over all layers (for memory budgets)."""
        per = self.head_size * want_k + self.head_size_v * want_v
        return self.num_layers * self.num_kv_heads * self.block_size * per

    def gather(self, block_ids: torch.Tensor, *, want_k: bool = True,
               want_v: bool = True) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        raise NotImplementedError

    def fill(self, block_id: int, value: float) -> None:
        """Overwrite one block, K and V, in every layer (tests: poison a freed block)."""
        raise NotImplementedError


class CudaKVReader(KVReader):
    def __init__(self, caches: list[torch.Tensor], num_kv_heads: int, head_size: int, head_size_v: int,
                 block_size: int) -> None:
        super().__init__(caches, num_kv_heads, head_size, head_size_v, block_size)
        first = caches[0]
        if first.dim() != 4 or first.shape[1] != num_kv_heads or first.shape[3] != head_size + head_size_v:
            raise UserError(f"memshare expected vLLM's [blocks, {num_kv_heads}, tokens, {head_size + head_size_v}] "
                            f"KV cache view; got shape {tuple(first.shape)}")
        kernel_bs = first.shape[2]
        if block_size % kernel_bs or first.shape[0] % (block_size // kernel_bs):
            raise UserError(f"memshare: kernel block size {kernel_bs} does not divide block size {block_size}")
        self.ratio = block_size // kernel_bs
        # (B, r, H, kbs, C) per layer: scheduler blocks first; a view, since vLLM keeps the r
        # kernel blocks of a block a constant stride apart.
        self._blocks = [c.unflatten(0, (c.shape[0] // self.ratio, self.ratio)) for c in caches]
        self._stacked = _stack_layers(self._blocks)  # (L, B, r, H, kbs, C) or None

    def gather(self, block_ids, *, want_k=True, want_v=True):
        d = self.head_size
        k = self._part(block_ids, slice(0, d)) if want_k else None
        v = self._part(block_ids, slice(d, None)) if want_v else None
        return k, v

    def _part(self, block_ids: torch.Tensor, channels: slice) -> torch.Tensor:
        n = block_ids.numel()
        if self._stacked is not None:
            x = self._stacked[..., channels][:, block_ids].movedim(0, 1)  # (N, L, r, H, kbs, D)
        else:
            x = torch.stack([b[..., channels][block_ids] for b in self._blocks], 1)
        # (N, L, r, H, kbs, D) -> (N, L, H, r * kbs = T, D)
        return x.transpose(2, 3).reshape(n, self.num_layers, self.num_kv_heads, self.block_size, x.shape[-1])

    def fill(self, block_id, value):
        for b in self._blocks:
            b[block_id].fill_(value)


class CpuKVReader(KVReader):
    def __init__(self, caches: list[torch.Tensor], num_kv_heads: int, head_size: int, block_size: int, *,
                 k_transposed: bool) -> None:
        super().__init__(caches, num_kv_heads, head_size, head_size, block_size)
        first = caches[0]
        if tuple(first.shape[1:]) != (num_kv_heads, block_size, 2 * head_size):
            raise UserError(f"memshare expected the CPU KV cache [blocks, {num_kv_heads}, {block_size}, "
                            f"{2 * head_size}]; got shape {tuple(first.shape)}")
        self.k_transposed = k_transposed
        self._stacked = _stack_layers(caches)  # (L, B, H, N, 2D) or None

    def gather(self, block_ids, *, want_k=True, want_v=True):
        half = self.block_size // 2
        # NOTE: the kernel's [H, 2N, D] view puts K in the first N*D elements of a head, which in
        # the logical [N, 2D] view are rows [0, N/2): slicing rows reads only the half wanted.
        k = self._half(block_ids, slice(0, half)) if want_k else None
        v = self._half(block_ids, slice(half, None)) if want_v else None
        n, h, t, d = block_ids.numel(), self.num_kv_heads, self.block_size, self.head_size
        if k is not None:
            k = k.view(n, self.num_layers, h, d, t).transpose(-1, -2) if self.k_transposed \
                else k.view(n, self.num_layers, h, t, d)
        if v is not None:
            v = v.view(n, self.num_layers, h, t, d)
        return k, v

    def _half(self, block_ids: torch.Tensor, rows: slice) -> torch.Tensor:
        if self._stacked is not None:
            return self._stacked[:, :, :, rows][:, block_ids].movedim(0, 1).contiguous()  # (N, L, H, N/2, 2D)
        return torch.stack([c[:, :, rows][block_ids] for c in self.layers], 1)

    def fill(self, block_id, value):
        for c in self.layers:
            c[block_id].fill_(value)


def _distinct(caches: list[torch.Tensor]) -> list[torch.Tensor]:
    """Drop caches that alias an earlier one (layers sharing KV): each block counts once."""
    seen, out = set(), []
    for c in caches:
        key = (c.data_ptr(), tuple(c.shape), c.stride())
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


def _stack_layers(views: list[torch.Tensor]) -> torch.Tensor | None:
    """One ``(L, ...)`` view over all layers when they sit a constant stride apart in one storage.

    vLLM places a group's layers in one allocation at ``offset + l * layer_stride`` (``KVCacheTensor``),
    so one gather serves every layer instead of one per layer. None when they do not.
    """
    first = views[0]
    if len(views) == 1:
        return first.unsqueeze(0)
    size = first.element_size()
    step = views[1].data_ptr() - first.data_ptr()
    if step <= 0 or step % size:
        return None
    for i, v in enumerate(views):
        if (v.shape != first.shape or v.stride() != first.stride() or v.dtype != first.dtype
                or v.untyped_storage().data_ptr() != first.untyped_storage().data_ptr()
                or v.data_ptr() - first.data_ptr() != i * step):
            return None
    return first.as_strided((len(views), *first.shape), (step // size, *first.stride()), first.storage_offset())
