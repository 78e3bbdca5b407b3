"""A toy vocabulary and trace builders shared by the core tests."""

from __future__ import annotations

import random

from memshare.core.steps import StepVocab

WORDS = ["the", "x", "y", "z", "=", "2", "3", "plus", "so", "we", "get", "answer", "is", "check", "value",
         "of", "sum", "root", "square", "then", "next"]
SPECIAL = ["\n\n", "\n", ".", ",", " Wait", "Wait", " So", "me", "Let", " me", " re", "think", " think", " But",
           ")", " ", "?", "\n\nSo", ".\n\n", "a\n\nb", "Hmm"]
TEXTS = SPECIAL + [" " + w for w in WORDS]
TOK = {t: i for i, t in enumerate(TEXTS)}
WORD_IDS = list(range(len(SPECIAL), len(TEXTS)))
VOCAB = StepVocab.from_token_texts(TEXTS)


def ids(*pieces: str) -> list[int]:
    """Token ids of a list of token texts (each must be in TEXTS)."""
    return [TOK[p] for p in pieces]


def sentence(rng: random.Random, n: int) -> list[int]:
    return [rng.choice(WORD_IDS) for _ in range(n)] + [TOK["."]]


def reasoning_trace(rng: random.Random, num_steps: int, repeat_prob: float = 0.3) -> list[int]:
    """Steps separated by blank lines; some steps repeat an earlier one verbatim."""
    steps: list[list[int]] = []
    out: list[int] = []
    for _ in range(num_steps):
        if steps and rng.random() < repeat_prob:
            step = list(rng.choice(steps))
        else:
            step = [t for _ in range(rng.randint(1, 4)) for t in sentence(rng, rng.randint(3, 12))]
        steps.append(step)
        out += step + [TOK["\n\n"]]
    return out
