"""Step splitting and block -> step mapping (memshare.core.steps)."""

from __future__ import annotations

import re
from collections import Counter

import pytest
from core_helpers import TEXTS, TOK, VOCAB, ids
from hypothesis import given, settings
from hypothesis import strategies as st

from memshare.core.config import DEFAULT_CUE_WORDS
from memshare.core.steps import BlockDone, StepEnd, StepTracker, StepVocab

CLOSERS = ")]}\"'*\u2019\u201d"


def run(out_pieces, *, prompt=(), bs=4, **kw) -> StepTracker:
    tracker = StepTracker(VOCAB, len(prompt), bs, **kw)
    tracker.feed(list(prompt) + ids(*out_pieces))
    return tracker


def norm(events):
    return [(type(e).__name__, e.step, getattr(e, "block_index", None), getattr(e, "token_ids", None),
             dict(e.counts if isinstance(e, StepEnd) else e.step_counts)) for e in events]


# --- vocabulary ---------------------------------------------------------------------------

def test_vocab_flags():
    v = StepVocab.from_token_texts(["\n\n", " a", ".\n", " \n", "b.)", ")", "x\n\ny"])
    assert [f & 1 for f in v.flags] == [0, 1, 1, 0, 1, 1, 1]
    assert v.lead_nl[0] == 2 and v.lead_nl[3] == 1 and v.trail_nl[2] == 1
    assert v.flags[4] & 4 and not v.flags[1] & 4  # "b.)" ends a sentence
    assert v.flags[5] & 8  # ")" only closes
    assert v.flags[6] & 2  # blank line inside the token


def test_vocab_from_tokenizer_byte_level():
    tokenizers = pytest.importorskip("tokenizers")
    transformers = pytest.importorskip("transformers")
    from tokenizers import decoders, models, pre_tokenizers, trainers

    tok = tokenizers.Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    text = "First, x is 2. Wait, that is wrong.\n\nSo the answer is 3.\n\nLet me check. Hmm, fine."
    tok.train_from_iterator([text] * 10, trainers.BpeTrainer(
        vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<s>"]))
    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=tok)
    vocab = StepVocab.from_tokenizer(hf)
    assert len(vocab) == len(hf)
    assert all(not t.startswith("Ġ") for t in vocab.texts)  # decoded, not raw byte-level pieces
    tracker = StepTracker(vocab, 0, 8)
    tracker.feed(hf.encode(text))
    starts = tracker.step_starts
    out = hf.encode(text)
    step_texts = [hf.decode(out[a:b]) for a, b in zip(starts, starts[1:] + [len(out)])]
    assert [s.strip()[:4] for s in step_texts] == ["Firs", "Wait", "So t", "Let ", "Hmm,"]


# --- step rules ---------------------------------------------------------------------------

def test_blank_line_starts_step_at_next_visible_token():
    t = run([" x", ".", "\n\n", " ", " y", ".", "\n", "\n", " z"])
    assert t.step_starts == [0, 4, 8]  # " " stays with the old step; "\n" + "\n" is a blank line


def test_blank_line_inside_token():
    assert run([" x", "a\n\nb", " y"]).step_starts == [0, 1]
    assert run([" x", ".\n\n", " y"]).step_starts == [0, 2]
    assert run([" x", "\n\nSo", " y"]).step_starts == [0, 1]


def test_no_split_on_blank_lines_when_disabled():
    assert run([" x", "\n\n", " y"], split_on_blank_lines=False).step_starts == [0]


@pytest.mark.parametrize("pieces, starts", [
    ([" x", ".", " Wait", ",", " y"], [0, 2]),  # after a sentence end
    ([" x", ".", ")", " Wait", ",", " y"], [0, 3]),  # closers are ignored
    ([" x", "\n", "Wait", " y"], [0, 2]),  # after a newline
    ([" x", " Wait", ",", " y"], [0]),  # mid-sentence: no
    ([" x", ".", " So", "me", " y"], [0]),  # "Some" is not the cue "So"
    ([" x", ".", " So", ",", " y"], [0, 2]),
    ([" x", "?", "Let", " me", " re", "think"], [0, 2]),  # multi-token, prefix cue "Let me re"
    ([" x", ".", "Let", " me", " think"], [0]),
    ([" x", ".", "Hmm", " y"], [0, 2]),
])
def test_cue_words(pieces, starts):
    assert run(pieces).step_starts == starts


def test_custom_cues_and_case():
    assert run([" x", ".", " So", ","], cue_words=("But",)).step_starts == [0]
    assert run([" x", ".", " But", " y"], cue_words=("But",)).step_starts == [0, 2]
    assert run([" x", ".", " y", ","], cue_words=()).step_starts == [0]


def test_undecided_cue_waits_for_more_tokens():
    tracker = StepTracker(VOCAB, 0, 4)
    tracker.feed(ids(" x", ".", " Wait"))
    assert tracker.num_committed == 2  # "Wait" vs "Waiting" is not known yet
    tracker.feed(ids(" x", ".", " Wait", ","))
    assert tracker.num_committed == 4 and tracker.step_starts == [0, 2]


def test_whitespace_only_start_never_makes_empty_step():
    assert run(["\n\n", " x", ".", "\n\n", "Wait", ","]).step_starts == [0, 4]


def test_prompt_is_not_a_step_and_prompt_blocks_are_not_reported():
    prompt = ids(" x", ".", " y", ".", " x", ".")  # 6 prompt tokens, bs 4: blocks 0, 1 hold prompt
    tracker = StepTracker(VOCAB, len(prompt), 4)
    events = tracker.feed(prompt + ids(" Wait", ",", " x", " y", " x", " y", " x", "."))
    blocks = [e.block_index for e in events if isinstance(e, BlockDone)]
    assert tracker.step_starts == [0]  # the prompt's sentence end does not split the output
    assert blocks == [2] and tracker.first_output_block == 2


def test_majority_rule_and_tie_goes_to_later_step():
    # bs 4: block 0 = [x . \n\n y] -> step 0 (3 tokens) ; block 1 = [. \n\n z .]: 2 vs 2 -> step 2
    tracker = StepTracker(VOCAB, 0, 4)
    ev = tracker.feed(ids(" x", ".", "\n\n", " y", ".", "\n\n", " y", "."))
    blocks = {e.block_index: e for e in ev if isinstance(e, BlockDone)}
    assert tracker.step_starts == [0, 3, 6]
    assert blocks[0].step == 0 and blocks[1].step == 2
    assert blocks[1].step_counts == {TOK[" y"]: 1, TOK["."]: 1}


def test_query_snapshot_stops_at_block_end():
    tracker = StepTracker(VOCAB, 0, 2)
    ev = tracker.feed(ids(" x", " y", " x", "."))
    snaps = [e.step_counts for e in ev if isinstance(e, BlockDone)]
    assert snaps == [{TOK[" x"]: 1, TOK[" y"]: 1}, {TOK[" x"]: 2, TOK[" y"]: 1, TOK["."]: 1}]


def test_token_ids_outside_vocab_are_visible_text():
    assert run([" x", "\n\n"], bs=8).step_starts == [0]
    tracker = StepTracker(VOCAB, 0, 4)
    tracker.feed(ids(" x", "\n\n") + [10_000, 10_001])
    assert tracker.step_starts == [0, 2]


def test_shrinking_token_list_is_an_error():
    tracker = StepTracker(VOCAB, 2, 4)
    tracker.feed([1, 2, 3, 4])
    with pytest.raises(ValueError, match="shrank"):
        tracker.feed([1, 2])


# --- properties ---------------------------------------------------------------------------

def reference_steps(texts, out, cues=DEFAULT_CUE_WORDS, split_blank=True):
    """Non-incremental re-statement of the rules on whole strings: (step starts, committed)."""
    cues = [c.strip() for c in cues if c.strip()]
    starts, visible = [], False
    for i, tok in enumerate(out):
        text = texts[tok]
        starts = starts or [0]
        if not text.strip():
            continue
        if visible:
            before = "".join(texts[t] for t in out[:i])
            nl = before[len(before.rstrip()):].count("\n") + text[: len(text) - len(text.lstrip())].count("\n")
            new = split_blank and (nl >= 2 or re.search(r"\n[^\S\n]*\n", text.strip()) is not None)
            if not new and (nl >= 1 or before.rstrip(CLOSERS + " \t\r\n")[-1:] in (".", "!", "?")):
                rest = text.lstrip() + "".join(texts[t] for t in out[i + 1:])
                hit = any(rest.startswith(c) and (" " in c or (len(rest) > len(c) and not rest[len(c)].isalnum()))
                          for c in cues)
                if not hit and any(rest == c or c.startswith(rest) for c in cues):
                    return starts, i  # undecided until more tokens arrive
                new = hit
            if new:
                starts.append(i)
        visible = True
    return starts, len(out)


token_lists = st.lists(st.integers(0, len(TEXTS) - 1), max_size=80)


@settings(max_examples=150, deadline=None)
@given(prompt_len=st.integers(0, 9), out=token_lists, bs=st.sampled_from([1, 2, 4, 8]),
       cuts=st.lists(st.integers(0, 90), max_size=6))
def test_incremental_equals_one_shot(prompt_len, out, bs, cuts):
    prompt = [TOK[" x"]] * prompt_len
    tokens = prompt + out
    one = StepTracker(VOCAB, prompt_len, bs)
    ev_one = one.feed(tokens)
    inc = StepTracker(VOCAB, prompt_len, bs)
    ev_inc = []
    for cut in sorted(c for c in cuts if c <= len(tokens)) + [len(tokens)]:
        ev_inc += inc.feed(tokens[:cut] if cut >= prompt_len + inc.num_committed else tokens[:prompt_len + inc.num_committed])
    assert norm(ev_inc) == norm(ev_one)
    assert inc.step_starts == one.step_starts and inc.num_committed == one.num_committed


@settings(max_examples=150, deadline=None)
@given(out=token_lists)
def test_matches_reference_rules(out):
    tracker = StepTracker(VOCAB, 0, 4)
    tracker.feed(out)
    starts, committed = reference_steps(TEXTS, out)
    assert tracker.num_committed == committed
    assert tracker.step_starts == starts


@settings(max_examples=100, deadline=None)
@given(prompt_len=st.integers(0, 9), out=token_lists, bs=st.sampled_from([2, 4, 8]))
def test_blocks_follow_majority_rule(prompt_len, out, bs):
    tracker = StepTracker(VOCAB, prompt_len, bs)
    events = tracker.feed([TOK[" x"]] * prompt_len + out)
    done = [e for e in events if isinstance(e, BlockDone)]
    expected = [b for b in range(tracker.first_output_block, (prompt_len + tracker.num_committed) // bs)]
    assert [e.block_index for e in done] == expected
    for e in done:
        lo = e.block_index * bs - prompt_len
        owners = [tracker.step_of(o) for o in range(lo, lo + bs)]
        best = max(owners.count(s) for s in set(owners))
        assert e.step == max(s for s in set(owners) if owners.count(s) == best)
        step_lo = tracker.step_starts[e.step]
        expected_counts: dict[int, int] = {}
        for o in range(step_lo, lo + bs):
            if tracker.step_of(o) == e.step:
                expected_counts[out[o]] = expected_counts.get(out[o], 0) + 1
        assert e.step_counts == expected_counts
        assert e.token_counts == dict(Counter(out[lo:lo + bs]))
    ends = [e.step for e in events if isinstance(e, StepEnd)]
    assert ends == list(range(max(0, tracker.num_steps - 1)))


@settings(max_examples=100, deadline=None)
@given(prompt_len=st.integers(0, 9), out=token_lists, bs=st.sampled_from([2, 4, 8]), cut=st.integers(0, 60))
def test_added_is_what_the_step_bag_gained_since_the_previous_block(prompt_len, out, bs, cut):
    tracker = StepTracker(VOCAB, prompt_len, bs)
    tokens = [TOK[" x"]] * prompt_len + out
    events = tracker.feed(tokens[:prompt_len + cut]) + tracker.feed(tokens)  # also across feeds
    done = [e for e in events if isinstance(e, BlockDone)]
    for prev, e in zip([None, *done], done):
        if prev is None or prev.step != e.step:
            assert e.added is None
        else:
            gained = Counter(e.step_counts)
            gained.subtract(prev.step_counts)
            assert e.added == {t: c for t, c in gained.items() if c}
