"""Which RoPE a served model applies to its keys, from the rotary modules its engine built.

The engine's adapter (``memshare.engine.adapter.worker.model_rope``) lists the model's rotary
modules; this half, free of any engine import, decides whether ``k_unrope`` can undo them: one
plain rotary embedding, whose style (NeoX or GPT-J) comes from the module and whose frequencies
come from the model config (``memshare.core.rope.rope_spec_from_hf_config``), with the two
agreeing on the rotary dim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from memshare.core.rope import RopeSpec, rope_spec_from_hf_config


class RotaryModule(NamedTuple):
    """A plain rotary embedding as the engine built it."""

    is_neox: bool
    rotary_dim: int
    head_size: int


def rope_spec_for_model(rotaries: Sequence[RotaryModule], unsupported: Sequence[str],
                        hf_config: Mapping[str, Any]) -> RopeSpec:
    """The ``RopeSpec`` of a model whose rotary modules are ``rotaries``.

    Args:
        rotaries: every plain rotary embedding of the model (repeats allowed: one per layer).
        unsupported: class names of other rotary modules (multimodal RoPE and the like).
        hf_config: the model's Hugging Face config as a dict.
    Raises:
        ValueError: not exactly one style of plain rotary embedding, or a config that disagrees.
    """
    styles = {tuple(r) for r in rotaries}
    if unsupported or len(styles) != 1:
        found = sorted(set(unsupported)) or sorted(styles) or "none"
        raise ValueError(f"--distance k_unrope needs one plain rotary embedding in the model; found {found}: "
                         "use --distance kv or k")
    is_neox, rotary_dim, _ = styles.pop()
    try:
        spec = rope_spec_from_hf_config(hf_config, is_neox=is_neox)
    except ValueError as exc:
        raise ValueError(f"--distance k_unrope: {exc}") from exc
    if spec.rotary_dim != rotary_dim:
        raise ValueError(f"--distance k_unrope: the model rotates {rotary_dim} dims but its config gives "
                         f"{spec.rotary_dim}; use --distance kv or k")
    return spec
