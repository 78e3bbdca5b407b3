"""Greedy traces of a Hugging Face model on CPU, with an optional sharer in the loop.

``greedy_generate`` is the one decoding loop: dense traces (no sharer) and free-running
sharing runs (a ``CacheSharer``) go through the same code, so a policy that never shares
reproduces the dense trace token for token. ``sequence_kv`` recomputes the K/V of a whole
trace block by block (the cache as vLLM would hold it; keys after RoPE).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from memshare.analysis.kvcache import stacked_kv
from memshare.errors import UserError

if TYPE_CHECKING:
    from memshare.workload import Workload


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A causal LM in float32 eval mode with what the analysis needs beside it."""

    name: str
    path: str
    model: Any
    tokenizer: Any
    eos_ids: frozenset[int]
    hf_config: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Trace:
    """One greedy generation: prompt and output token ids; ``finished``: ended with EOS."""

    problem_id: str
    prompt_ids: tuple[int, ...]
    output_ids: tuple[int, ...]
    finished: bool

    @property
    def token_ids(self) -> list[int]:
        return list(self.prompt_ids) + list(self.output_ids)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["prompt_ids"], d["output_ids"] = list(self.prompt_ids), list(self.output_ids)
        return d


def load_model(name: str, status=None) -> LoadedModel:
    """Resolve and load ``name`` (alias, hub id or folder) for CPU float32 inference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from memshare.models import resolve_model

    hf_logging.disable_progress_bar()

    path = resolve_model(name, status=status)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserError(f"cannot load model {name!r} from {path}: {first}") from None
    eos = model.generation_config.eos_token_id if model.generation_config is not None else None
    eos_ids = set(eos if isinstance(eos, (list, tuple)) else [eos] if eos is not None else [])
    if tokenizer.eos_token_id is not None:
        eos_ids.add(int(tokenizer.eos_token_id))
    return LoadedModel(name, str(path), model, tokenizer, frozenset(int(e) for e in eos_ids), model.config.to_dict())


@torch.inference_mode()
def greedy_generate(lm: LoadedModel, prompt: Sequence[int], max_new_tokens: int,
                    sharer=None) -> tuple[list[int], bool]:
    """Greedy decoding one token per forward pass; returns (output ids, ended with EOS).

    With ``sharer`` (a ``CacheSharer``), ``sharer.step`` runs after every forward pass, as
    the engine runs the policy after every step, so blocks are shared as they fill.
    """
    from transformers import DynamicCache

    cache = DynamicCache(config=lm.model.config)
    ids = list(prompt)
    logits = lm.model(torch.tensor([ids]), past_key_values=cache, use_cache=True, logits_to_keep=1).logits
    out: list[int] = []
    while True:
        tok = int(logits[0, -1].argmax())
        out.append(tok)
        ids.append(tok)
        if sharer is not None:
            sharer.step(cache, ids)
        if tok in lm.eos_ids:
            return out, True
        if len(out) >= max_new_tokens:
            return out, False
        logits = lm.model(torch.tensor([[tok]]), past_key_values=cache, use_cache=True, logits_to_keep=1).logits


@torch.inference_mode()
def sequence_kv(lm: LoadedModel, token_ids: Sequence[int], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """K, V (L, H, S, D) of ``token_ids`` computed in block-sized chunks (keys after RoPE)."""
    from transformers import DynamicCache

    cache = DynamicCache(config=lm.model.config)
    for start in range(0, len(token_ids), block_size):
        chunk = torch.tensor([list(token_ids[start:start + block_size])])
        lm.model(chunk, past_key_values=cache, use_cache=True, logits_to_keep=1)
    return stacked_kv(cache)


def dense_traces(lm: LoadedModel, work: Workload, max_tokens: int, cache_file: Path | None = None,
                 force: bool = False, status=None) -> list[Trace]:
    """Greedy dense traces of ``work``'s problems from its prompts, reusing ``cache_file`` where it holds them.

    A trace saved with a larger token cap is cut to ``max_tokens``: greedy decoding is
    deterministic, so that is exactly the trace this cap would generate.
    """
    problems, prompts = work.problems, work.prompts
    saved = {} if force or cache_file is None else _read_traces(cache_file, lm.name, max_tokens)
    traces, generated = [], False
    for k, p in enumerate(problems):
        old = saved.get(p.id)
        if old is not None and list(old.prompt_ids) == prompts[p.id]:
            traces.append(old)
            continue
        if status:
            status(f"generating trace {k + 1}/{len(problems)} ({p.id}, {len(prompts[p.id])} prompt tokens)")
        out, finished = greedy_generate(lm, prompts[p.id], max_tokens)
        traces.append(Trace(p.id, tuple(prompts[p.id]), tuple(out), finished))
        generated = True
    if cache_file is not None and generated:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        merged = {**saved, **{t.problem_id: t for t in traces}}
        tmp = cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"model": lm.name, "max_tokens": max_tokens,
                                   "traces": [t.to_dict() for t in merged.values()]}) + "\n")
        tmp.replace(cache_file)
    return traces


def replay_traces(lm: LoadedModel, path: str, limit: int | None, max_tokens: int, status=None, *,
                  split: str = "all") -> list[Trace]:
    """The traces of a replay file (``memshare.replay``; the first ``limit`` of ``split``), tokenized
    as ``bench --replay`` does."""
    from memshare.workload import load_workload

    work = load_workload(lm.path, max_tokens, replay=path, limit=limit, split=split)
    for note in work.notes:
        if status:
            status(note)
    return [Trace(p.id, tuple(work.prompts[p.id]), tuple(work.forced[p.id]), False) for p in work.problems]


def _read_traces(path: Path, model: str, max_tokens: int) -> dict[str, Trace]:
    """Saved traces of ``model`` cut to ``max_tokens``; empty if the file cannot serve them."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("model") != model or not isinstance(data.get("max_tokens"), int) \
            or data["max_tokens"] < max_tokens:
        return {}
    out = {}
    for row in data.get("traces", []):
        try:
            ids, finished = tuple(int(i) for i in row["output_ids"]), bool(row["finished"])
            t = Trace(str(row["problem_id"]), tuple(int(i) for i in row["prompt_ids"]), ids[:max_tokens],
                      finished and len(ids) <= max_tokens)
        except (KeyError, TypeError, ValueError):
            continue
        out[t.problem_id] = t
    return out
