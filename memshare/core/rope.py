"""Rotary position embedding (RoPE) forward and inverse, for keys read from a KV cache.

vLLM stores keys *after* RoPE, so the same text at two positions gives different stored
keys. Stage 2's ``k_unrope`` distances rotate each key back by its own position first.

Conventions follow Hugging Face / vLLM:

* angles ``theta[..., i] = position * inv_freq[i]`` in float32 (as both engines compute
  their cos/sin caches), ``inv_freq: (rotary_dim // 2,)``;
* ``is_neox=True`` (Llama, Qwen, Mistral: "rotate half"): dims ``i`` and
  ``i + rotary_dim/2`` form a pair; ``is_neox=False`` (GPT-J, interleaved): dims ``2i``
  and ``2i + 1`` form a pair;
* partial rotary: only the first ``rotary_dim`` dims rotate, the rest pass through;
* ``scaling`` (YaRN's attention factor) multiplies cos and sin; ``unrotate`` divides it out.

References: RoFormer (arXiv 2104.09864); ``transformers.models.llama.modeling_llama``;
``vllm.model_executor.layers.rotary_embedding``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True, slots=True, eq=False)
class RopeSpec:
    """How a model rotates its keys: ``inv_freq (rotary_dim // 2,)`` float32."""

    inv_freq: torch.Tensor
    is_neox: bool = True
    scaling: float = 1.0

    def __post_init__(self) -> None:
        if self.inv_freq.ndim != 1 or self.inv_freq.numel() == 0:
            raise ValueError(f"inv_freq must be a non-empty 1-D tensor, got shape {tuple(self.inv_freq.shape)}")
        if not self.scaling > 0:
            raise ValueError(f"RoPE scaling must be > 0, got {self.scaling!r}")

    @property
    def rotary_dim(self) -> int:
        return 2 * self.inv_freq.numel()


def rotate(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor, is_neox: bool = True,
           scaling: float = 1.0) -> torch.Tensor:
    """Apply RoPE as the model does.

    Args:
        x: (..., D) queries or keys, D >= rotary_dim.
        positions: integer positions broadcastable to ``x.shape[:-1]``, e.g. ``(T,)`` for
            ``x: (L, H, T, D)`` or ``(C, 1, 1, T)`` for ``x: (C, L, H, T, D)``.
        inv_freq: (rotary_dim // 2,).
    Returns:
        float32 tensor of ``x``'s shape.
    """
    return _apply(x, positions, inv_freq, is_neox, scaling, inverse=False)


def unrotate(k: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor, is_neox: bool = True,
             scaling: float = 1.0) -> torch.Tensor:
    """Undo RoPE: ``unrotate(rotate(k, p, f), p, f) == k`` (up to float32 rounding).

    Same arguments as ``rotate``; returns float32.
    """
    return _apply(k, positions, inv_freq, is_neox, scaling, inverse=True)


def _apply(x: torch.Tensor, positions: torch.Tensor, inv_freq: torch.Tensor, is_neox: bool,
           scaling: float, *, inverse: bool) -> torch.Tensor:
    half = inv_freq.numel()
    rot = 2 * half
    if x.shape[-1] < rot:
        raise ValueError(f"head dim {x.shape[-1]} is smaller than the rotary dim {rot}")
    x = x.float()
    inv_freq = inv_freq.to(device=x.device, dtype=torch.float32)
    angles = positions.to(x.device).float()[..., None] * inv_freq  # (..., half)
    cos, sin = angles.cos(), angles.sin()
    if inverse:
        cos, sin = cos / scaling, -sin / scaling
    elif scaling != 1.0:
        cos, sin = cos * scaling, sin * scaling
    # Written into one output buffer: no concatenation, two passes per half (CPU matters here).
    out = torch.empty_like(x)
    if is_neox:
        x1, x2, o1, o2 = x[..., :half], x[..., half:rot], out[..., :half], out[..., half:rot]
    else:
        x1, x2, o1, o2 = x[..., 0:rot:2], x[..., 1:rot:2], out[..., 0:rot:2], out[..., 1:rot:2]
    torch.mul(x1, cos, out=o1)
    o1.addcmul_(x2, sin, value=-1.0)
    torch.mul(x2, cos, out=o2)
    o2.addcmul_(x1, sin)
    if rot < x.shape[-1]:
        out[..., rot:] = x[..., rot:]
    return out


def rope_spec_from_hf_config(config: Mapping[str, Any], *, is_neox: bool = True) -> RopeSpec:
    """``RopeSpec`` from a Hugging Face model config dict (``config.json``).

    Reads ``rope_theta`` (default 10000), ``head_dim`` (else ``hidden_size //
    num_attention_heads``), ``partial_rotary_factor`` (or ``rope_parameters.rope_dim``) and
    ``rope_scaling`` / ``rope_parameters``. The style (``is_neox``) is not in Hugging Face
    configs; the engine reads it from the model's rotary module (``memshare.core.rope_detect``).
    Scaled variants (linear, dynamic, yarn, longrope, llama3, ...) are computed by
    ``transformers.modeling_rope_utils.ROPE_INIT_FUNCTIONS`` and need ``transformers``; without
    it only the default RoPE is supported. Note: ``dynamic`` NTK scaling depends on the sequence
    length at run time; the inverse frequencies returned here are the ones at the model's
    maximum position.
    """
    scaling_cfg = config.get("rope_scaling") or config.get("rope_parameters") or {}
    rope_type = scaling_cfg.get("rope_type", scaling_cfg.get("type", "default"))
    if rope_type == "default":
        theta = float(config.get("rope_theta") or scaling_cfg.get("rope_theta") or 10000.0)
        factor = float(config.get("partial_rotary_factor") or scaling_cfg.get("partial_rotary_factor") or 1.0)
        # vLLM's get_rope takes an explicit ``rope_dim`` over the factor; so do we.
        dim = int(scaling_cfg.get("rope_dim") or _head_dim(config) * factor)
        inv_freq = 1.0 / (theta ** (torch.arange(0, dim, 2, dtype=torch.int64).float() / dim))
        return RopeSpec(inv_freq.float(), is_neox, 1.0)
    try:
        from transformers import LlamaConfig
        from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS
    except ImportError as e:
        raise ValueError(f"rope type {rope_type!r} needs transformers (only the default RoPE works "
                         "without it)") from e
    if rope_type not in ROPE_INIT_FUNCTIONS:
        raise ValueError(f"unknown rope type {rope_type!r}; known: default, {', '.join(ROPE_INIT_FUNCTIONS)}")
    fields = {k: v for k, v in config.items() if k not in ("architectures", "model_type") and v is not None}
    fields.setdefault("head_dim", _head_dim(config))
    try:
        hf_config = LlamaConfig(**fields)
        inv_freq, attention_factor = ROPE_INIT_FUNCTIONS[rope_type](hf_config, "cpu")
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise ValueError(f"cannot build {rope_type!r} RoPE from this config: {e}") from e
    return RopeSpec(inv_freq.float(), is_neox, float(attention_factor))


def _head_dim(config: Mapping[str, Any]) -> int:
    if config.get("head_dim"):
        return int(config["head_dim"])
    try:
        return int(config["hidden_size"]) // int(config["num_attention_heads"])
    except KeyError as e:
        raise ValueError("config needs head_dim, or hidden_size and num_attention_heads") from e


def inv_freq_from_hf_config(config: Mapping[str, Any]) -> torch.Tensor:
    """Inverse frequencies ``(rotary_dim // 2,)`` of a HF config (see ``rope_spec_from_hf_config``)."""
    return rope_spec_from_hf_config(config).inv_freq
