"""Every method at every budget on one prompt: a batched teacher-forced replay and a batched
free-running run, each with a dense row beside the methods.

``measure_prompt`` returns one sample row per (method, budget), as the run folders keep them
(one JSON line each): the teacher-forced comparison with the dense row, the free-running
output (graded), the KV held, and the time the method spent choosing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from memshare.analysis.compare.matching import budget_tokens, dense_kv, memshare_setting, random_setting
from memshare.analysis.compare.replay import Dense, Evicting, Replay, Sharing, decode_batch
from memshare.analysis.eviction import EvictionSettings, make_method
from memshare.analysis.eviction.attention import Evictor
from memshare.analysis.fidelity import Agreement
from memshare.analysis.sharer import CacheSharer
from memshare.analysis.traces import LoadedModel, Trace
from memshare.core.config import MemShareConfig
from memshare.core.policies import make_policy

Key = tuple[str, float]  # (method, budget fraction)


@dataclass(frozen=True, slots=True)
class Context:
    """What every prompt's measurement needs besides the methods."""

    lm: LoadedModel
    sharing: MemShareConfig  # base setting of the sharing methods (block size, distance, seed)
    eviction: EvictionSettings
    vocab: Any
    rope: Any
    max_tokens: int
    grade: Callable[[list[int], str], dict[str, Any]]  # (output ids, problem id) -> response, extracted, correct


def measure_prompt(ctx: Context, trace: Trace, keys: Sequence[Key],
                   memshare_rows: dict[float, dict[str, Any]] | None = None) -> dict[Key, dict[str, Any]]:
    """The sample rows of ``keys`` on ``trace``.

    Args:
        memshare_rows: MemShare's saved rows by budget, for ``random-share`` keys whose
            ``memshare`` key is not measured now.
    """
    settings: dict[Key, MemShareConfig] = {}
    memo: dict = {}
    extra: dict[Key, dict[str, Any]] = {k: {} for k in keys}
    for key in sorted(keys, key=lambda k: k[0] != "memshare"):  # memshare first: random-share reads it
        method, fraction = key
        if method == "memshare":
            setting, matched, tried = memshare_setting(ctx.lm, trace, ctx.sharing, budget_tokens(fraction, trace),
                                                       ctx.vocab, ctx.rope, memo)
            chosen = tried[-1]
            settings[key] = setting
            extra[key] = {"step_threshold": setting.step_threshold, "block_threshold": setting.block_threshold,
                          "matched": matched, "ladder": tried, "ladder_peak": chosen["peak_kept"],
                          "ladder_shared_blocks": chosen["shared_blocks"], "ladder_full_blocks": chosen["full_blocks"]}
        elif method == "random-share":
            ms = extra.get(("memshare", fraction)) or (memshare_rows or {}).get(fraction)
            if not ms:
                raise ValueError("random-share needs memshare's row for the same prompt and budget")
            settings[key] = random_setting(ctx.sharing, trace, ms["ladder_shared_blocks"], ms["ladder_full_blocks"])
            extra[key] = {"random_rate": settings[key].random_rate, "seed": settings[key].seed}

    def make_runs() -> list[Dense]:
        runs: list[Dense] = [Dense()]
        for method, fraction in keys:
            if (method, fraction) in settings:
                policy = make_policy(settings[(method, fraction)], vocab=ctx.vocab)
                runs.append(Sharing(CacheSharer(policy, method, trace.prompt_ids, ctx.rope)))
            else:
                evictor = Evictor(make_method(method, budget_tokens(fraction, trace), len(trace.prompt_ids), ctx.eviction))
                runs.append(Evicting(evictor))
        return runs

    tf_runs, free_runs = make_runs(), make_runs()
    agreements = [None] + [Agreement() for _ in keys]
    forced = decode_batch(ctx.lm, trace.prompt_ids, 0, tf_runs, forced=trace.output_ids, reference=0,
                          agreements=agreements)
    free = decode_batch(ctx.lm, trace.prompt_ids, ctx.max_tokens, free_runs)
    dense_reproduced = free[0].output_ids == list(trace.output_ids)
    out = {}
    for i, key in enumerate(keys, start=1):
        row = {"problem_id": trace.problem_id, "sample_index": 0, "method": key[0], "kv_budget": key[1],
               "prompt_tokens": len(trace.prompt_ids), "dense_kv": dense_kv(trace),
               "budget_tokens": budget_tokens(key[1], trace), "dense_reproduced": dense_reproduced,
               **_teacher_forced(forced[i], agreements[i]), **_free(ctx, free[i], trace.problem_id), **extra[key]}
        if isinstance(tf_runs[i], Sharing):
            tf_sharer, free_sharer = tf_runs[i].sharer, free_runs[i].sharer
            row.update(shared_blocks=len(tf_sharer.events), full_blocks=tf_sharer.policy.stats.full_blocks,
                       shared_blocks_free=len(free_sharer.events))
            tf_sharer.close()
            free_sharer.close()
        out[key] = row
    return out


def _teacher_forced(rep: Replay, a: Agreement) -> dict[str, Any]:
    return {"tf_tokens": a.tokens, "tf_agree": a.agree, "tf_kl_sum": a.kl_sum, "tf_tokens_after": a.tokens_after,
            "tf_agree_after": a.agree_after, "tf_kl_sum_after": a.kl_sum_after, "peak_kept": rep.peak_kept,
            "mean_fraction": rep.mean_fraction, "tf_overhead_s": rep.overhead_s}


def _free(ctx: Context, rep: Replay, problem_id: str) -> dict[str, Any]:
    return {"output_token_ids": rep.output_ids, "output_tokens": len(rep.output_ids), "finished": rep.finished,
            "finish_reason": "stop" if rep.finished else "length", "peak_kept_free": rep.peak_kept,
            "overhead_s": rep.overhead_s, "decoded_tokens": len(rep.output_ids), **ctx.grade(rep.output_ids, problem_id)}
