"""A tiny random Llama (2 layers, 2 KV heads, head_dim 8) and a toy vocabulary for fast tests."""

from __future__ import annotations

import random

import torch

from memshare.analysis.traces import LoadedModel
from memshare.core.rope import rope_spec_from_hf_config
from memshare.core.steps import StepVocab

WORDS = ["the", "x", "y", "z", "=", "2", "3", "plus", "so", "we", "get", "answer", "is", "check", "value", "of"]
TEXTS = ["\n\n", "\n", ".", ",", " Wait", " So"] + [" " + w for w in WORDS]
TOK = {t: i for i, t in enumerate(TEXTS)}
VOCAB_SIZE = 64
VOCAB = StepVocab.from_token_texts(TEXTS + [f"<{i}>" for i in range(len(TEXTS), VOCAB_SIZE)])


def tiny_model(seed: int = 0) -> LoadedModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=VOCAB_SIZE, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024)
    torch.manual_seed(seed)
    model = LlamaForCausalLM(cfg).eval()
    return LoadedModel("tiny", "", model, None, frozenset(), cfg.to_dict())


def tiny_rope(lm: LoadedModel):
    return rope_spec_from_hf_config(lm.hf_config)


def words(*ws: str) -> list[int]:
    return [TOK[" " + w] if " " + w in TOK else TOK[w] for w in ws]



def reasoning_ids(n_steps: int, seed: int = 0) -> list[int]:
    """Token ids of ``n_steps`` near-repeated steps ("so x plus y is the value of z."), each cut at
    a random length and ended by a blank line."""
    rng = random.Random(seed)
    step = words("so", "x", "plus", "y", "is", "the", "value", "of", "z") + [2]
    out = []
    for _ in range(n_steps):
        out += step[:rng.randint(6, len(step))] + [0]  # "\n\n" ends a step
    return out
