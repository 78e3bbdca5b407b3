"""Cutting a request's generated tokens into reasoning steps, incrementally, on token ids.

MemShare (arXiv 2507.21433) compares a new KV block's *reasoning step* with earlier steps.
This module decides where steps begin, working on token ids so that it can run inside the
engine after every step with cost proportional to the new tokens.

Rules (all on the decoded text of single tokens, see ``StepVocab``):

* Only output tokens form steps; step 0 starts at the first output token.
* **Blank line**: with ``split_on_blank_lines``, a step starts at the first token with
  visible (non-whitespace) text that follows a blank line (two newlines with only
  whitespace between them). Whitespace tokens after the blank line stay in the old step.
  A token whose own text holds a blank line between visible characters starts a step.
* **Cue word**: a step starts at a token whose text, leading whitespace stripped, begins the
  text of a cue word (``config.cue_words``, case sensitive), when the cue follows a sentence
  end (the last visible character before it, ignoring closing ``)]}"'*`` and spaces, is
  ``.``, ``!`` or ``?``) or a newline. A one-word cue must end at a word boundary (``Wait,`` yes,
  ``Waiting`` no); a multi-word cue is matched as a text prefix, so ``Let me re`` matches
  ``Let me reconsider``. A cue may span tokens: the decision waits (at most a few tokens)
  until enough text has arrived, so tokens after an undecided cue are not committed yet.
* A step never starts before the current step has a visible token.

Block -> step (``majority rule``): a full block belongs to the step that holds most of its
tokens; on a tie, to the later of the tied steps. Only blocks made entirely of output tokens
are reported; blocks holding any prompt token are never shared.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from memshare.core.config import DEFAULT_CUE_WORDS

_CLOSERS = ")]}\"'*\u2019\u201d"
_SENTENCE_END = ".!?"
_INNER_BLANK = re.compile(r"\n[^\S\n]*\n")

# Per-token flags (bits of StepVocab.flags).
_VISIBLE = 1
_INNER = 2  # a blank line between visible characters of the token
_ENDS_SENTENCE = 4
_CLOSER_ONLY = 8  # visible text made only of closing characters: keeps the previous state


@dataclass(frozen=True, slots=True, eq=False)
class StepVocab:
    """What the step splitter needs to know about every token id, computed once.

    Attributes:
        texts: decoded text of each token id (index = id).
        flags: one byte per token: a bit set (visible, inner blank line, ends sentence,
            closer only). Bytes, not arrays: the splitter reads them one at a time.
        lead_nl: newlines in the token's leading whitespace, capped at 2 (all of them for a
            whitespace-only token).
        trail_nl: newlines in the token's trailing whitespace, capped at 2 (0 for
            whitespace-only).
    Ids outside the vocabulary are treated as visible text that ends no sentence.
    """

    texts: tuple[str, ...]
    flags: bytes
    lead_nl: bytes
    trail_nl: bytes
    # 1 for a token that never changes the splitter's state when it follows a visible token
    # with no pending newline or sentence end: visible, no newline, no sentence end, no closer.
    plain: bytes = field(init=False)

    def __post_init__(self) -> None:
        n = len(self.texts)
        for name in ("flags", "lead_nl", "trail_nl"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"StepVocab.{name} must have one byte per token ({n})")
        plain = bytes(f == _VISIBLE and not a and not b for f, a, b in zip(self.flags, self.lead_nl, self.trail_nl))
        object.__setattr__(self, "plain", plain)

    def __len__(self) -> int:
        return len(self.texts)

    @classmethod
    def from_token_texts(cls, texts: Sequence[str]) -> StepVocab:
        """Build from the decoded text of each token id (``texts[i]`` is token ``i``)."""
        n = len(texts)
        flags, lead, trail = bytearray(n), bytearray(n), bytearray(n)
        for i, text in enumerate(texts):
            core = text.strip()
            if not core:
                lead[i] = min(text.count("\n"), 2)
                continue
            f = _VISIBLE
            start = len(text) - len(text.lstrip())
            end = len(text.rstrip())
            lead[i] = min(text[:start].count("\n"), 2)
            trail[i] = min(text[end:].count("\n"), 2)
            if _INNER_BLANK.search(core):
                f |= _INNER
            bare = core.rstrip(_CLOSERS + " \t\r\n")
            if not bare:
                f |= _CLOSER_ONLY
            elif bare[-1] in _SENTENCE_END:
                f |= _ENDS_SENTENCE
            flags[i] = f
        return cls(tuple(texts), bytes(flags), bytes(lead), bytes(trail))

    @classmethod
    def from_tokenizer(cls, tokenizer, vocab_size: int | None = None) -> StepVocab:
        """Build from a Hugging Face tokenizer by decoding every token id on its own.

        Byte-level markers (``Ġ``, ``Ċ``) and SentencePiece ``▁`` come out as real spaces
        and newlines because each id is decoded, not read from the vocabulary file.
        ``vocab_size`` defaults to ``len(tokenizer)`` (added tokens included).
        """
        n = len(tokenizer) if vocab_size is None else vocab_size
        texts = tokenizer.batch_decode([[i] for i in range(n)], skip_special_tokens=False,
                                       clean_up_tokenization_spaces=False)
        return cls.from_token_texts(texts)


@dataclass(frozen=True, slots=True, eq=False)
class StepEnd:
    """Step ``step`` is complete; ``counts`` (token id -> count) will not change again."""

    step: int
    counts: dict[int, int]


class BlockDone(NamedTuple):
    """All tokens of output-only block ``block_index`` are committed to steps.

    ``step`` is the block's step (majority rule) and ``step_counts`` that step's bag of
    words over its tokens up to and including the block's last token (the Stage-1 query).
    ``token_counts`` is the block's own bag of words. ``added``: when the previous block
    belongs to the same step, what the step's bag gained since that block's ``step_counts``
    (the step's tokens in this block), so a search can update the previous query; else None.
    """

    block_index: int
    step: int
    token_ids: tuple[int, ...]
    step_counts: dict[int, int]
    token_counts: dict[int, int]
    added: dict[int, int] | None = None


class CueMatcher:
    """Matches cue words at the start of a token run (see the module docstring)."""

    def __init__(self, cue_words: Sequence[str]) -> None:
        cues = {c.strip() for c in cue_words if c.strip()}
        self.cues = tuple(sorted(cues))
        self._first: dict[int, bool | None] = {}  # token id -> verdict from that token alone

    def match(self, texts: Sequence[str], token_ids: Sequence[int], start: int) -> bool | None:
        """True/False: a cue does / does not start at ``token_ids[start]``; None: need more tokens."""
        tok = token_ids[start]
        if tok in self._first:
            first = self._first[tok]
        else:
            first = self._first[tok] = self._verdict(_text(texts, tok).lstrip())
        if first is not None:
            return first  # most tokens: decided by their own text, looked up once per token id
        text = _text(texts, tok).lstrip()
        j = start
        while True:
            j += 1
            if j >= len(token_ids):
                return None
            text += _text(texts, token_ids[j])
            verdict = self._verdict(text)
            if verdict is not None:
                return verdict

    def _verdict(self, text: str) -> bool | None:
        """Does a cue start ``text``: True, False, or None while ``text`` is too short to tell."""
        undecided = False
        for cue in self.cues:
            if text.startswith(cue):
                if " " in cue or (len(text) > len(cue) and not text[len(cue)].isalnum()):
                    return True
                undecided |= len(text) == len(cue)
            elif cue.startswith(text):
                undecided = True
        return None if undecided else False


def token_counts(tokens: Sequence[int]) -> dict[int, int]:
    """Token id -> count of a short run (plain Python: faster than numpy at block sizes)."""
    seen: dict[int, int] = {}
    for t in tokens:
        seen[t] = seen.get(t, 0) + 1
    return seen


def _text(texts: Sequence[str], token_id: int) -> str:
    return texts[token_id] if 0 <= token_id < len(texts) else ""


class StepTracker:
    """Per-request incremental step splitter and block -> step mapper.

    ``feed`` takes the request's whole token list (prompt + output) each time and returns,
    in order, ``StepEnd`` and ``BlockDone`` events for the tokens committed since the last
    call. The result does not depend on how the token list was chunked across calls.
    """

    def __init__(self, vocab: StepVocab, prompt_len: int, block_size: int, *,
                 cue_words: Sequence[str] = DEFAULT_CUE_WORDS, split_on_blank_lines: bool = True) -> None:
        if prompt_len < 0 or block_size <= 0:
            raise ValueError("prompt_len must be >= 0 and block_size > 0")
        self.vocab = vocab
        self.prompt_len = prompt_len
        self.block_size = block_size
        self.split_on_blank_lines = split_on_blank_lines
        self.cues = CueMatcher(cue_words)
        self.num_committed = 0  # output tokens assigned to steps
        self.step_starts: list[int] = []  # output offset where each step begins
        # NOTE: only the steps a future block can still belong to are kept (current + recent).
        self._counts: dict[int, dict[int, int]] = {}
        self._pending_nl = 0
        self._prev_ends_sentence = False
        self._cur_visible = False
        self._last_done = (-1, -1)  # (block index, step) of the last BlockDone

    @property
    def num_steps(self) -> int:
        return len(self.step_starts)

    @property
    def first_output_block(self) -> int:
        """Index of the first block made only of output tokens."""
        return -(-self.prompt_len // self.block_size)

    def step_of(self, output_offset: int) -> int:
        """Step of a committed output token (by its offset in the output)."""
        if not 0 <= output_offset < self.num_committed:
            raise IndexError(f"output token {output_offset} is not committed")
        return bisect_right(self.step_starts, output_offset) - 1

    def feed(self, token_ids: Sequence[int]) -> list[StepEnd | BlockDone]:
        p = self.prompt_len
        end = len(token_ids)
        if end < p + self.num_committed:
            raise ValueError("token list shrank: a request's tokens must only grow")
        v, events = self.vocab, []
        flags_of, lead_of, trail_of = v.flags, v.lead_nl, v.trail_nl
        n_vocab, bs, split_blank = len(flags_of), self.block_size, self.split_on_blank_lines
        i = p + self.num_committed
        if i < end and not self.step_starts:
            self._start_step()
        # NOTE: the splitter state lives in locals in the loop (once per token) and is written
        # back whenever a method reads it and at the end.
        pending_nl, prev_end, visible = self._pending_nl, self._prev_ends_sentence, self._cur_visible
        plain_of = v.plain
        quiet = visible and not pending_nl and not prev_end  # then a plain token changes nothing
        cur = self._counts.get(len(self.step_starts) - 1)
        waiting = False  # a cue may start at token i: wait for the tokens that decide it
        while i < end and not waiting:
            start, stop = i, min(end, (i // bs + 1) * bs)  # up to the end of token i's block
            # One slice per block, not one index per token (vLLM's token list is a ConstantList,
            # whose indexing is a Python call).
            for i, tok in enumerate(token_ids[start:stop], start):  # i carries on after the loop
                known = 0 <= tok < n_vocab
                if not quiet or (known and not plain_of[tok]):  # else (most tokens): only counted
                    flags = flags_of[tok] if known else _VISIBLE
                    if not flags & _VISIBLE:
                        pending_nl += lead_of[tok]
                        quiet = quiet and not pending_nl
                    else:
                        if visible:
                            nl_before = pending_nl + (lead_of[tok] if known else 0)
                            new_step = split_blank and (nl_before >= 2 or bool(flags & _INNER))
                            if not new_step and (nl_before >= 1 or prev_end):
                                matched = self.cues.match(v.texts, token_ids, i)
                                if matched is None:
                                    waiting = True
                                    break
                                new_step = matched
                            if new_step:
                                self.num_committed = i - p
                                events.append(StepEnd(len(self.step_starts) - 1, cur))
                                self._start_step()
                                cur = self._counts[len(self.step_starts) - 1]
                        visible = True
                        pending_nl = trail_of[tok] if known else 0
                        if not flags & _CLOSER_ONLY:
                            prev_end = bool(flags & _ENDS_SENTENCE)
                        quiet = not pending_nl and not prev_end
                cur[tok] = cur.get(tok, 0) + 1
            else:
                i = stop
                if i % bs == 0 and i - bs >= p:
                    self.num_committed = i - p
                    events.append(self._block_done(i // bs - 1, token_ids))
        self.num_committed = i - p
        self._pending_nl, self._prev_ends_sentence, self._cur_visible = pending_nl, prev_end, visible
        return events

    def _start_step(self) -> None:
        self.step_starts.append(self.num_committed)
        self._counts[self.num_steps - 1] = {}
        self._cur_visible = False

    def _block_done(self, block_index: int, token_ids: Sequence[int]) -> BlockDone:
        bs, starts = self.block_size, self.step_starts
        num = len(starts)
        lo = block_index * bs - self.prompt_len  # output offsets [lo, hi)
        hi = lo + bs
        s = bisect_right(starts, hi - 1) - 1  # the step of the block's last token
        step, best = s, 0
        while True:  # later step first: wins ties
            n = min(hi, starts[s + 1] if s + 1 < num else hi) - max(lo, starts[s])
            if n > best:
                step, best = s, n
            if starts[s] <= lo:
                break  # the step of the block's first token
            s -= 1
        counts = self._counts[step]
        snapshot = dict(counts) if step == num - 1 else counts
        if len(self._counts) > 1:  # no later block can belong to a step before the current one
            for old in [k for k in self._counts if k < num - 1]:
                del self._counts[old]
        start = block_index * bs
        tokens = tuple(token_ids[start:start + bs])
        own = token_counts(tokens)
        added = None
        if self._last_done == (block_index - 1, step):  # then the step began before this block
            end = starts[step + 1] if step + 1 < num else hi
            added = own if end >= hi else token_counts(tokens[:end - lo])
        self._last_done = (block_index, step)
        return BlockDone(block_index, step, tokens, snapshot, own, added)
