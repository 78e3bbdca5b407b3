"""Policies (memshare.core.policies) driven the way the engine drives them (memshare.core.policy)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from core_helpers import TEXTS, TOK, VOCAB, reasoning_trace

from memshare.core.config import POLICIES, MemShareConfig
from memshare.core.policies import POLICY_REGISTRY, DensePolicy, MemSharePolicy, RandomPolicy, make_policy
from memshare.core.policy import BlockRef, Proposal

BS = 8


def new_policy(policy: str, **kw):
    cfg = MemShareConfig(**{"policy": policy, "block_size": BS, "random_rate": 0.5, "step_threshold": 0.5, **kw})
    return make_policy(cfg, vocab=VOCAB)


def simulate(policy, traces: dict[str, tuple[list[int], list[int]]], *, share_all=True):
    """Decode all requests round-robin one token per engine step (KV of the newest token is
    written one step later, as in vLLM); share every proposal whose decision accepts."""
    lens = {r: len(p) for r, (p, _) in traces.items()}
    for r, (prompt, _) in traces.items():
        policy.add_request(r, prompt)
    proposals = []
    while any(lens[r] <= len(p) + len(o) for r, (p, o) in traces.items()):
        for r, (prompt, out) in traces.items():
            tokens = (prompt + out)[: lens[r]]
            if lens[r] > len(prompt) + len(out):
                continue
            for prop in policy.on_tokens(r, tokens, (lens[r] - 1) // BS):
                proposals.append(prop)
                if prop.needs_distance:
                    # Stand-in for Stage 2: distance 0 for the first candidate.
                    target = policy.decide(prop, [0.0] + [1.0] * (len(prop.candidates) - 1))
                else:
                    target = prop.candidates[0]
                if target is not None and share_all:
                    policy.on_shared(prop.query, target)
            lens[r] += 1
    return proposals


def traces_for(seed: int, n: int = 2, steps: int = 10):
    rng = random.Random(seed)
    return {f"r{i}": ([rng.randrange(len(TEXTS)) for _ in range(rng.randint(0, 20))], reasoning_trace(rng, steps))
            for i in range(n)}


def test_registry_matches_config_policies():
    assert set(POLICY_REGISTRY) == set(POLICIES)
    assert isinstance(new_policy("dense"), DensePolicy)
    assert isinstance(new_policy("random"), RandomPolicy)
    assert isinstance(new_policy("memshare"), MemSharePolicy)


# --- contract, for every policy -------------------------------------------------------------

@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("delay", [0, 2])
@pytest.mark.parametrize("policy", POLICIES)
def test_contract(policy, delay, cross):
    pol = new_policy(policy, share_delay_blocks=delay, cross_request=cross, min_gap_blocks=2)
    traces = traces_for(3, n=3)
    props = simulate(pol, traces)
    seen = set()
    for p in props:
        prompt, out = traces[p.query.req_id]
        assert p.query not in seen and p.candidates
        seen.add(p.query)
        assert p.query.block_index * BS >= len(prompt)  # never a prompt block
        assert len(p.candidates) <= pol.config.max_candidates and len(set(p.candidates)) == len(p.candidates)
        for c in p.candidates:
            assert c != p.query and c.block_index * BS >= len(traces[c.req_id][0])
            if c.req_id == p.query.req_id:
                assert c.block_index <= p.query.block_index - 2
            else:
                assert cross
    # The last call reports (len - 1) // BS full blocks: the newest token's KV is not written yet.
    eligible = sum(max(0, (len(p) + len(o) - 1) // BS - delay - -(-len(p) // BS)) for p, o in traces.values())
    assert pol.stats.full_blocks == eligible
    assert pol.stats.shared_blocks == len(props)
    for r in traces:
        pol.remove_request(r)
    assert pol.num_requests == 0 and not pol._in_flight
    if policy == "memshare":
        assert not pol._trackers and not pol.stage1._reqs
        if cross:
            assert len(pol.stage1._shared.index) == 0 and (pol.stage1._shared.owner.view < 0).all()


@pytest.mark.parametrize("policy", POLICIES)
def test_request_errors(policy):
    pol = new_policy(policy)
    with pytest.raises(ValueError, match="unknown request"):
        pol.on_tokens("x", [1, 2], 0)
    pol.add_request("x", [1, 2])
    with pytest.raises(ValueError, match="added twice"):
        pol.add_request("x", [1])
    pol.remove_request("x")
    pol.remove_request("x")  # idempotent
    pol.add_request("x", [1])  # a preempted request comes back


def test_share_delay():
    pol = new_policy("dense", share_delay_blocks=2)
    pol.add_request("r", [])
    pol.on_tokens("r", list(range(5 * BS)), 3)
    assert pol.stats.full_blocks == 1  # blocks 0 only: 1 and 2 are protected
    pol.on_tokens("r", list(range(5 * BS)), 5)
    assert pol.stats.full_blocks == 3


def test_wrong_policy_class_and_unknown_policy():
    with pytest.raises(ValueError, match="needs config.policy"):
        DensePolicy(MemShareConfig(policy="random"))
    with pytest.raises(ValueError, match="needs vocab"):
        make_policy(MemShareConfig(policy="memshare"))
    with pytest.raises(ValueError, match="embedding matrix"):
        make_policy(MemShareConfig(policy="memshare", encoder="embedding"), vocab=VOCAB)


# --- dense and random -----------------------------------------------------------------------

def test_dense_never_proposes():
    pol = new_policy("dense")
    assert simulate(pol, traces_for(4)) == [] and pol.stats.full_blocks > 0 and pol.stats.affected_ratio == 0


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("rate", [0.1, 0.3, 0.7])
def test_random_rate_is_met(rate, cross):
    pol = new_policy("random", random_rate=rate, cross_request=cross, seed=7)
    for r in range(40):
        pol.add_request(f"r{r}", [0] * 5)
    for r in range(40):
        for n in range(1, 41):  # 40 blocks per request, one block per call
            for p in pol.on_tokens(f"r{r}", [0] * (n * BS + 1), n):
                pol.on_shared(p.query, p.candidates[0])
    ratio = pol.stats.shared_blocks / pol.stats.full_blocks
    assert abs(ratio - rate) < 0.03, ratio
    assert pol.stats.affected_ratio == ratio


def test_random_is_seeded_and_targets_follow_rules():
    def run(seed):
        pol = new_policy("random", seed=seed, random_rate=0.4, cross_request=True)
        return [(p.query, p.candidates) for p in simulate(pol, traces_for(5, n=3))]

    a = run(1)
    assert a == run(1) and a != run(2)
    assert all(len(c) == 1 and not isinstance(c[0], int) for _, c in a)
    assert any(c[0].req_id != q.req_id for q, c in a)  # cross-request targets happen


def test_random_needs_no_distance():
    pol = new_policy("random", random_rate=1.0)
    props = simulate(pol, traces_for(6, n=1))
    assert props and all(not p.needs_distance and len(p.candidates) == 1 for p in props)


# --- memshare ---------------------------------------------------------------------------------

def repeated_trace():
    rng = random.Random(11)
    step_a = [rng.randrange(25, len(TEXTS)) for _ in range(2 * BS - 1)] + [TOK["\n\n"]]
    filler = [rng.randrange(25, len(TEXTS)) for _ in range(2 * BS - 1)] + [TOK["\n\n"]]
    # blocks 0,1 | 2,3 | 4,5: step 3 repeats step 1 verbatim; one more token so block 5's KV completes
    return step_a + filler + step_a + [TOK[" x"]]


def test_memshare_proposes_the_verbatim_repeated_block():
    pol = new_policy("memshare", step_threshold=0.8)
    props = simulate(pol, {"r": ([], repeated_trace())})
    by_query = {p.query.block_index: p for p in props}
    assert set(by_query) == {4, 5}
    assert by_query[4].candidates[0] == BlockRef("r", 0) and by_query[5].candidates[0] == BlockRef("r", 1)
    assert all(p.needs_distance for p in props)
    s = pol.stats
    assert (s.full_blocks, s.stage1_queries, s.matches, s.shared_blocks) == (6, 6, 2, 2)
    assert s.stage1_candidates == sum(len(p.candidates) for p in props) and s.stage1_s > 0


def test_memshare_with_embedding_encoder():
    emb = np.random.default_rng(0).normal(size=(len(TEXTS), 16)).astype(np.float32)
    cfg = MemShareConfig(policy="memshare", block_size=BS, encoder="embedding", step_threshold=0.9)
    pol = make_policy(cfg, vocab=VOCAB, embedding=torch.from_numpy(emb))
    props = {p.query.block_index: p for p in simulate(pol, {"r": ([], repeated_trace())})}
    # Block 5 closes the repeated step: its whole step equals step 1, whose blocks rank first.
    assert set(props) <= {4, 5} and props[5].candidates[0] == BlockRef("r", 1)


def test_memshare_cross_request_finds_other_request():
    pol = new_policy("memshare", cross_request=True, step_threshold=0.9)
    trace = repeated_trace()[: 4 * BS] + [TOK[" x"]]  # no repetition inside one request
    props = simulate(pol, {"a": ([], trace), "b": ([], trace)})
    assert any(c.req_id != p.query.req_id for p in props for c in p.candidates)
    no_cross = new_policy("memshare", cross_request=False, share_siblings=False, step_threshold=0.9)
    assert simulate(no_cross, {"a": ([], trace), "b": ([], trace)}) == []


def test_siblings_of_one_prompt_offer_their_same_position_block_as_soon_as_it_is_written():
    trace = repeated_trace()[: 4 * BS] + [TOK[" x"]]  # no repetition inside one request
    prompt = [TOK[" x"]] * BS
    pol = new_policy("memshare", step_threshold=0.9)  # share_siblings is on by default
    props = simulate(pol, {"a": (prompt, trace), "b": (prompt, trace), "c": (prompt, trace)}, share_all=False)
    by_query = {(p.query.req_id, p.query.block_index): p.candidates for p in props}
    # Every output block of b and c; the first sibling (a) has nobody earlier to point at.
    assert not any(r == "a" for r, _ in by_query)
    for b in range(1, 5):
        assert by_query[("b", b)][0] == BlockRef("a", b)
        assert by_query[("c", b)][:2] == (BlockRef("a", b), BlockRef("b", b))
    # Another prompt is no sibling.
    other = new_policy("memshare", step_threshold=0.9)
    assert simulate(other, {"a": (prompt, trace), "b": (prompt[:-1], trace)}) == []


def test_a_removed_sibling_is_no_longer_offered():
    trace = repeated_trace()[: 2 * BS] + [TOK[" x"]]
    pol = new_policy("memshare", step_threshold=0.9)
    for r in ("a", "b"):
        pol.add_request(r, [])
    pol.on_tokens("a", trace, 2)
    pol.remove_request("a")
    assert pol.on_tokens("b", trace, 2) == []


def test_same_step_lets_a_long_step_share_before_it_ends():
    # One step that repeats itself and never ends (no blank line, no cue).
    loop = [TOK[" x"], TOK[" ="]] * (4 * BS)
    plain = simulate(new_policy("memshare", step_threshold=0.9), {"r": ([], loop)})
    assert plain == []
    props = simulate(new_policy("memshare", step_threshold=0.9, same_step=True), {"r": ([], loop)})
    assert props and all(c.req_id == "r" and c.block_index < p.query.block_index
                         for p in props for c in p.candidates)


def test_in_flight_query_is_not_a_candidate_in_the_same_call():
    pol = new_policy("memshare", step_threshold=0.8)
    trace = repeated_trace()[:-1] + repeated_trace()[2 * BS:]  # blocks 6, 7 repeat 4, 5 (and 0, 1)
    pol.add_request("r", [])
    props = pol.on_tokens("r", trace, len(trace) // BS)  # all blocks become eligible at once
    queried = {p.query.block_index for p in props}
    for p in props:
        assert not queried & {c.block_index for c in p.candidates}


def test_decide_picks_closest_under_threshold():
    pol = new_policy("memshare", block_threshold=0.5)
    cands = (BlockRef("r", 0), BlockRef("r", 1), BlockRef("r", 2))
    prop = Proposal(BlockRef("r", 5), cands, True)
    assert pol.decide(prop, [0.4, 0.2, 0.3]) == cands[1]
    assert pol.decide(prop, torch.tensor([0.6, 0.5, 0.7])) == cands[1]  # at the threshold counts
    assert pol.decide(prop, [0.6, 0.51, 0.9]) is None
    assert pol.stats.matches == 2
    with pytest.raises(ValueError, match="distances"):
        pol.decide(prop, [0.1])
