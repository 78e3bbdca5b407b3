"""Exact values of the premise study's small measures and of the loop detector."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memshare.analysis.loops import first_divergence, loop_period
from memshare.analysis.measures import (
    bag,
    bag_cosine,
    best_earlier,
    cosine_matrix,
    rankdata,
    repeated_blocks,
    shared_blocks,
    spearman,
)

NAN = float("nan")


# --- bags of words
def test_bag_cosine_exact():
    assert bag_cosine(bag([1, 2]), bag([1])) == pytest.approx(1 / math.sqrt(2))
    assert bag_cosine(bag([1, 1, 2]), bag([1, 2, 2])) == pytest.approx(4 / 5)  # (2*1 + 1*2) / (sqrt5 sqrt5)
    assert bag_cosine(bag([3, 4]), bag([5])) == 0.0
    assert bag_cosine(bag([]), bag([1])) == 0.0


def test_cosine_matrix_is_symmetric_with_unit_diagonal():
    m = cosine_matrix([bag([1, 2]), bag([1]), bag([7]), bag([])])
    assert m[0, 1] == m[1, 0] == pytest.approx(1 / math.sqrt(2))
    assert m[0, 2] == m[2, 3] == 0.0
    assert list(np.diag(m)) == [1.0, 1.0, 1.0, 0.0]  # an empty bag is like nothing, not itself


# --- ranks and Spearman
def test_rankdata_averages_ties():
    assert rankdata([10, 20, 20, 30]).tolist() == [1.0, 2.5, 2.5, 4.0]
    assert rankdata([3, 1, 2]).tolist() == [3.0, 1.0, 2.0]
    assert rankdata([5, 5, 5]).tolist() == [2.0, 2.0, 2.0]


def test_spearman_exact():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks x = 1,2,3,4 and y = 2,1,4,3: 1 - 6 * sum d^2 / (n (n^2 - 1)) = 1 - 6*4/60
    assert spearman([1, 2, 3, 4], [2, 1, 4, 3]) == pytest.approx(0.6)
    # ties: ranks x = 1, 2.5, 2.5, 4; y = 1..4: Pearson on ranks
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / math.sqrt(4.5 * 5))


def test_spearman_undefined_cases():
    assert spearman([1, 2], [3, 4]) is None
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    assert spearman([1, NAN, 2, 3, math.inf], [1, 5, 2, 3, 9]) == pytest.approx(1.0)  # non-finite pairs dropped
    with pytest.raises(ValueError):
        spearman([1, 2, 3], [1, 2])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 5)), min_size=3, max_size=40))
def test_spearman_matches_scipy(pairs):
    stats = pytest.importorskip("scipy.stats")
    x, y = zip(*pairs)
    ours = spearman(x, y)
    if ours is None:
        assert len(set(x)) == 1 or len(set(y)) == 1
    else:
        assert ours == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-9)


# --- share fractions
STEP_COS = np.array([[NAN, NAN, NAN, NAN],
                     [0.9, NAN, NAN, NAN],
                     [0.7, 0.95, NAN, NAN],
                     [NAN, 0.85, 0.99, NAN]])
DIST = np.array([[0.0, 0.5, 0.5, 0.5],
                 [0.4, 0.0, 0.5, 0.5],
                 [0.3, 0.8, 0.0, 0.5],
                 [0.1, 0.5, 0.7, 0.0]])


def test_shared_blocks_needs_both_gates_and_an_earlier_block():
    assert shared_blocks(STEP_COS, DIST, 0.8, 0.5).tolist() == [False, True, False, True]
    assert shared_blocks(STEP_COS, DIST, 0.7, 0.3).tolist() == [False, False, True, False]
    assert shared_blocks(STEP_COS, DIST, 0.8, 0.8).tolist() == [False, True, True, True]
    assert shared_blocks(STEP_COS, DIST, 0.0, 2.0, min_gap=2).tolist() == [False, False, True, True]
    # NaN (same step) never passes, however low the threshold; block 3 vs block 0 is NaN.
    assert shared_blocks(STEP_COS, DIST, 0.0, 0.2).tolist() == [False, False, False, False]


def test_best_earlier():
    best = best_earlier(STEP_COS)
    assert np.isnan(best[0]) and best[1:].tolist() == [0.9, 0.95, 0.99]
    assert best_earlier(STEP_COS, min_gap=2)[2:].tolist() == [0.7, 0.85]


# --- verbatim repetition and block alignment
def test_repeated_blocks_counts_any_offset_and_aligned():
    # prompt 3 tokens, blocks of 4: output starts at token 3, output blocks at token 4 (block 1).
    prompt = [90, 91, 92]
    out = [1, 2, 3, 4, 8,  # tokens 3..7; block 1 = [2, 3, 4, 8]: new
           1, 2, 3, 4,  # block 2: equals tokens 3..6 (not a block) -> any offset only
           1, 2, 3, 4,  # block 3: equals block 2 -> block-aligned (and any offset)
           9, 9, 9, 9,  # block 4: new
           3, 4, 8, 1]  # block 5: equals tokens 5..8 -> any offset only
    ids = prompt + out
    assert repeated_blocks(ids, 3, 4) == (5, 3, 1)
    assert repeated_blocks(ids[:5], 3, 4) == (0, 0, 0)


def test_repeated_blocks_needs_the_copy_to_end_before_the_block():
    # "1 1 1 1 1 ..." repeats at offset 1 but that copy overlaps the block itself.
    ids = [0] * 4 + [1] * 8
    assert repeated_blocks(ids, 4, 4) == (2, 1, 1)


# --- loops and divergence
def test_loop_period():
    assert loop_period([5, 6] * 60) == 2
    assert loop_period([1, 2, 3] + [4] * 100) == 1
    assert loop_period(list(range(40)) + [1, 2, 3] * 40) == 3
    sentence = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]  # "196(19) = " is a 10-token loop
    assert loop_period(list(range(50)) + sentence * 10) == 10
    assert loop_period(list(range(300))) is None
    assert loop_period([4] * 95) is None  # shorter than the window
    assert loop_period(list(range(100, 133)) * 4) is None  # period 33 > 32
    assert loop_period(list(range(9)) * 5, window=27, max_period=9) == 9
    assert loop_period(list(range(9)) * 5, window=27, max_period=8) is None
    with pytest.raises(ValueError):
        loop_period([1] * 10, window=8, max_period=8)


def test_first_divergence():
    assert first_divergence([1, 2, 3], [1, 2, 3]) is None
    assert first_divergence([1, 2, 3], [1, 5, 3]) == 1
    assert first_divergence([1, 2], [1, 2, 3]) == 2
    assert first_divergence([], [4]) == 0
