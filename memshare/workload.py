"""One workload for every command: problems, their prompts, a replay's forced outputs, the lengths.

``load_workload`` is the one place a run's prompts are built: a dataset's problems
(``memshare.data``) or a replay file's traces (``memshare.replay``), each prompt under the serving
model's chat template (``chat_prompt_ids``). A replay's trace is tokenized with the same tokenizer
and cut at ``max_tokens`` and at the model's context; what was cut is said in ``notes``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from memshare.data import DEFAULT_DATASET, FieldMap, Problem, load_problems
from memshare.errors import UserError
from memshare.replay import THINK_CLOSE, THINK_OPEN, Trace, load_traces


@dataclass(frozen=True, slots=True)
class Workload:
    """Tokenized requests: prompt (and, for a replay, forced output) ids per problem id.

    ``model_path``: the model the ids belong to (``memshare.models.resolve_model``).
    """

    model_path: str
    problems: list[Problem]
    prompts: dict[str, list[int]]
    forced: dict[str, list[int]] = field(default_factory=dict)  # empty unless a replay
    notes: tuple[str, ...] = ()  # what the builder cut, for the user

    def longest(self, max_tokens: int) -> int:
        """Tokens the longest request can reach: prompt + forced output, or prompt + ``max_tokens``."""
        if self.forced:
            return max(len(self.prompts[p.id]) + len(self.forced.get(p.id, ())) for p in self.problems)
        return max(len(p) for p in self.prompts.values()) + max_tokens


def chat_prompt_ids(tokenizer: Any, prompt: str) -> list[int]:
    """The user message under the chat template, ready for the assistant's answer."""
    ids = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], add_generation_prompt=True,
                                        tokenize=True)
    return [int(i) for i in (ids["input_ids"] if hasattr(ids, "keys") else ids)]


def load_workload(model: str, max_tokens: int, *, replay: str | None = None, dataset: str = DEFAULT_DATASET,
                  data_file: str | None = None, limit: int | None = None, fields: FieldMap | None = None,
                  seed: int = 0, kind: str | None = None, split: str = "all",
                  status: Callable[[str], None] | None = None) -> Workload:
    """The problems (a replay file's traces, or a dataset's), then the model, then the token ids.

    The data is read before the model is resolved, so bad input fails before a slow download.
    """
    from memshare.models import resolve_model

    if replay:
        traces = load_traces(replay, limit=limit, kind=kind, split=split)
        return tokenize_traces(resolve_model(model, status=status), traces, max_tokens)
    problems = load_problems(dataset, data_file=data_file, limit=limit, fields=fields or FieldMap(), seed=seed,
                             kind=kind)
    model_path = resolve_model(model, status=status)
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    return Workload(model_path, problems, {p.id: chat_prompt_ids(tok, p.prompt) for p in problems})


def tokenize_traces(model_path: str, traces: list[Trace], max_tokens: int) -> Workload:
    """Prompts under the chat template and forced outputs, each cut at ``max_tokens`` and the context."""
    from transformers import AutoConfig, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_path)
    context = getattr(AutoConfig.from_pretrained(model_path), "max_position_embeddings", None) or 1 << 30
    vocab = tok.get_vocab()
    markers = THINK_OPEN in vocab and THINK_CLOSE in vocab
    prompts, forced = {}, {}
    cut_max = cut_ctx = 0
    for t in traces:
        prompt = chat_prompt_ids(tok, t.problem.prompt)
        opens_think = markers and tok.decode(prompt[-3:]).rstrip().endswith(THINK_OPEN)
        out = [int(i) for i in tok(_target_text(t, markers, prompt_opens_think=opens_think),
                                   add_special_tokens=False)["input_ids"]]
        room = context - len(prompt)
        if room < 1:
            raise UserError(f"trace {t.problem.id}: its prompt ({len(prompt)} tokens) fills the model's context")
        if len(out) > min(max_tokens, room):
            if room < max_tokens:
                cut_ctx += 1
            else:
                cut_max += 1
            out = out[:min(max_tokens, room)]
        if not out:
            raise UserError(f"trace {t.problem.id}: empty after tokenization")
        prompts[t.problem.id], forced[t.problem.id] = prompt, out
    n = len(traces)
    notes = []
    if cut_max:
        notes.append(f"replay: {cut_max} of {n} traces cut at --max-tokens {max_tokens}")
    if cut_ctx:
        notes.append(f"replay: {cut_ctx} of {n} traces cut at the model's context")
    if not markers:
        notes.append("replay: the tokenizer has no <think> markers: thinking and answer are joined by a blank line")
    return Workload(model_path, [t.problem for t in traces], prompts, forced, tuple(notes))


def _target_text(trace: Trace, markers: bool, *, prompt_opens_think: bool) -> str:
    if not markers:
        return "\n\n".join(x for x in (trace.reasoning, trace.content) if x)
    if not trace.reasoning:
        return trace.content
    # R1-style templates end the generation prompt with "<think>\n": the output starts inside it.
    opening = "" if prompt_opens_think else THINK_OPEN + "\n"
    return f"{opening}{trace.reasoning}\n{THINK_CLOSE}\n\n{trace.content}".rstrip()
