"""The RoPE Stage 2 undoes is the one vLLM's model applies: style and rotary dim from its module."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from vllm.config import VllmConfig, set_current_vllm_config
from vllm.model_executor.layers.rotary_embedding import get_rope

from memshare.core.rope import unrotate
from memshare.engine.adapter import worker as adapter
from memshare.errors import UserError

HEAD = 16


def rope_module(is_neox: bool, factor: float = 1.0, **extra):
    with set_current_vllm_config(VllmConfig()):
        return get_rope(HEAD, 256, is_neox_style=is_neox, dtype=torch.float32,
                        rope_parameters={"rope_theta": 10000.0, "partial_rotary_factor": factor, **extra})


def runner_with(*ropes):
    model = torch.nn.Module()
    model.layers = torch.nn.ModuleList()
    for r in ropes:
        layer = torch.nn.Module()
        layer.rotary_emb = r
        model.layers.append(layer)
    return SimpleNamespace(get_model=lambda: model)


def model_config(**hf):
    cfg = {"hidden_size": 4 * HEAD, "num_attention_heads": 4, "rope_theta": 10000.0, **hf}
    return SimpleNamespace(hf_config=SimpleNamespace(to_dict=lambda: dict(cfg)))


@pytest.mark.parametrize("is_neox", [True, False], ids=["neox", "gptj"])
@pytest.mark.parametrize("factor", [1.0, 0.5], ids=["full", "partial"])
def test_undoing_rope_inverts_what_the_vllm_module_applied(is_neox, factor):
    module = rope_module(is_neox, factor)
    spec = adapter.model_rope(runner_with(module, module), model_config(partial_rotary_factor=factor))
    assert spec.is_neox is is_neox and spec.rotary_dim == int(HEAD * factor)
    g = torch.Generator().manual_seed(0)
    pos = torch.arange(40, 72)
    q, k = torch.randn(32, 2 * HEAD, generator=g), torch.randn(32, 2 * HEAD, generator=g)
    _, k_rot = module.forward_native(pos, q.clone(), k.clone())  # (T, H * D), as the model stores K
    back = unrotate(k_rot.view(32, 2, HEAD).transpose(0, 1), pos, spec.inv_freq, spec.is_neox, spec.scaling)
    torch.testing.assert_close(back, k.view(32, 2, HEAD).transpose(0, 1), atol=1e-5, rtol=1e-5)


def test_a_config_that_disagrees_with_the_module_is_refused():
    with pytest.raises(UserError, match="rotates 8 dims but its config gives 16"):
        adapter.model_rope(runner_with(rope_module(True, 0.5)), model_config())


def test_two_rope_styles_in_one_model_are_refused():
    with pytest.raises(UserError, match="one plain rotary embedding"):
        adapter.model_rope(runner_with(rope_module(True), rope_module(False)), model_config())
    with pytest.raises(UserError, match="found none"):
        adapter.model_rope(runner_with(), model_config())
