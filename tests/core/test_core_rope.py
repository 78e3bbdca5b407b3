"""RoPE forward/inverse and inverse frequencies from HF configs (memshare.core.rope)."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memshare.core.rope import RopeSpec, inv_freq_from_hf_config, rope_spec_from_hf_config, rotate, unrotate

LLAMA = {"hidden_size": 256, "num_attention_heads": 4, "rope_theta": 10000.0, "max_position_embeddings": 4096}


def default_inv_freq(dim: int, theta: float = 10000.0) -> torch.Tensor:
    return 1.0 / theta ** (torch.arange(0, dim, 2).float() / dim)


@settings(max_examples=30, deadline=None)
@given(is_neox=st.booleans(), rot_frac=st.sampled_from([1.0, 0.5]), scaling=st.sampled_from([1.0, 1.3]),
       start=st.integers(0, 40_000), seed=st.integers(0, 100))
def test_round_trip(is_neox, rot_frac, scaling, start, seed):
    g = torch.Generator().manual_seed(seed)
    k = torch.randn(2, 3, 8, 16, generator=g)  # (L, H, T, D)
    inv_freq = default_inv_freq(int(16 * rot_frac))
    pos = torch.arange(start, start + 8)
    back = unrotate(rotate(k, pos, inv_freq, is_neox, scaling), pos, inv_freq, is_neox, scaling)
    assert torch.allclose(back, k, atol=1e-5, rtol=1e-5)
    assert (back - k).abs().max() < 1e-5


def test_round_trip_small_positions_to_1e6():
    k = torch.randn(4, 2, 32, 64, dtype=torch.float64).float()
    pos = torch.arange(32)
    back = unrotate(rotate(k, pos, default_inv_freq(64), True), pos, default_inv_freq(64), True)
    assert (back - k).abs().max() < 1e-6


def test_rotation_preserves_norm_and_passes_extra_dims():
    k = torch.randn(3, 5, 10)
    pos = torch.arange(5)
    out = rotate(k, pos, default_inv_freq(6), True)
    assert torch.allclose(out.norm(dim=-1), k.norm(dim=-1), atol=1e-5)
    assert torch.equal(out[..., 6:], k[..., 6:])


def test_matches_hf_llama():
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    cfg = LlamaConfig(**LLAMA)
    emb = llama.LlamaRotaryEmbedding(cfg)
    x = torch.randn(1, 4, 7, 64)  # (B, H, T, D)
    pos = torch.arange(100, 107)[None]
    cos, sin = emb(x, pos)
    ref, _ = llama.apply_rotary_pos_emb(x, x, cos, sin)
    ours = rotate(x, pos[0], rope_spec_from_hf_config(LLAMA).inv_freq, True)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_gptj_interleaved_is_complex_multiplication():
    x = torch.randn(5, 8)
    pos = torch.arange(5)
    f = default_inv_freq(8)
    z = torch.view_as_complex(x.reshape(5, 4, 2).contiguous())
    ref = torch.view_as_real(z * torch.polar(torch.ones(5, 4), pos[:, None].float() * f)).reshape(5, 8)
    assert torch.allclose(rotate(x, pos, f, is_neox=False), ref, atol=1e-5)


def test_broadcast_positions_per_candidate():
    k = torch.randn(3, 2, 2, 4, 8)  # (C, L, H, T, D)
    pos = torch.arange(12).reshape(3, 4)
    out = unrotate(k, pos.reshape(3, 1, 1, 4), default_inv_freq(8))
    for c in range(3):
        assert torch.allclose(out[c], unrotate(k[c], pos[c], default_inv_freq(8)))


def test_inv_freq_default_and_partial():
    assert torch.allclose(inv_freq_from_hf_config(LLAMA), default_inv_freq(64))
    spec = rope_spec_from_hf_config({**LLAMA, "head_dim": 32, "partial_rotary_factor": 0.5, "rope_theta": 1e6})
    assert spec.rotary_dim == 16 and torch.allclose(spec.inv_freq, default_inv_freq(16, 1e6))
    assert rope_spec_from_hf_config({**LLAMA, "rope_scaling": {"rope_type": "default"}}).scaling == 1.0


@pytest.mark.parametrize("scaling", [
    {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
     "original_max_position_embeddings": 1024},
    {"type": "linear", "factor": 2.0},
    {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 1024},
])
def test_scaled_rope_through_transformers(scaling):
    pytest.importorskip("transformers")
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    cfg = {**LLAMA, "rope_scaling": scaling}
    spec = rope_spec_from_hf_config(cfg)
    hf_cfg = LlamaConfig(**cfg)
    kind = scaling.get("rope_type", scaling.get("type"))
    ref, factor = ROPE_INIT_FUNCTIONS[kind](hf_cfg, "cpu")
    assert torch.allclose(spec.inv_freq, ref.float()) and spec.scaling == pytest.approx(factor)
    assert not torch.allclose(spec.inv_freq, default_inv_freq(64))


def test_scaled_rope_without_transformers_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(ValueError, match="needs transformers"):
        rope_spec_from_hf_config({**LLAMA, "rope_scaling": {"rope_type": "linear", "factor": 2.0}})
    assert torch.allclose(inv_freq_from_hf_config(LLAMA), default_inv_freq(64))  # default still works


def test_bad_rope_configs():
    with pytest.raises(ValueError, match="unknown rope type"):
        rope_spec_from_hf_config({**LLAMA, "rope_scaling": {"rope_type": "nope"}})
    with pytest.raises(ValueError, match="head_dim"):
        rope_spec_from_hf_config({"rope_theta": 1.0})
    with pytest.raises(ValueError, match="rotary dim"):
        rotate(torch.randn(2, 4), torch.arange(2), default_inv_freq(8))
    with pytest.raises(ValueError, match="non-empty"):
        RopeSpec(torch.zeros(0))


def test_transformers_v5_style_config_dict():
    """``PretrainedConfig.to_dict()`` may hold rope_theta inside rope_parameters and None elsewhere."""
    cfg = {"hidden_size": 256, "num_attention_heads": 4, "head_dim": None, "rope_theta": None,
           "rope_scaling": None, "partial_rotary_factor": None,
           "rope_parameters": {"rope_theta": 1e6, "rope_type": "default"}}
    assert torch.allclose(inv_freq_from_hf_config(cfg), default_inv_freq(64, 1e6))
