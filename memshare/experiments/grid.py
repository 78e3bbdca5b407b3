"""The ablation grid of ``memshare ablate``: step/block threshold pairs crossed with Stage-1
encoders, Stage-2 metrics and distances (the settings arXiv 2507.21433 studies)."""

from __future__ import annotations

from itertools import product
from typing import Any

from memshare.bench.config import RUN_ORDER
from memshare.core.config import BASELINES
from memshare.errors import UserError

DEFAULT_PAIRS = ((0.7, 0.7), (0.8, 0.8), (0.9, 0.8), (0.9, 0.9))
ABLATE_POLICIES = tuple(p for p in RUN_ORDER if p not in BASELINES)  # ("dense", "memshare", "random")


def format_pairs(pairs: tuple[tuple[float, float], ...]) -> str:
    return ",".join(f"{s:g}/{b:g}" for s, b in pairs)


def parse_pairs(text: str | None) -> tuple[tuple[float, float], ...]:
    """``"0.7/0.7,0.8/0.8"`` -> ((0.7, 0.7), (0.8, 0.8)); step in [0, 1], block in [0, 2]."""
    if text is None:
        return DEFAULT_PAIRS
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UserError("--pairs needs at least one STEP/BLOCK pair, e.g. 0.8/0.8")
    pairs = []
    for item in items:
        try:
            step, block = map(float, item.split("/"))
        except ValueError:
            raise UserError(f"--pairs: {item!r} is not STEP/BLOCK, e.g. 0.8/0.8") from None
        check_pair(step, block)
        pairs.append((step, block))
    return tuple(dict.fromkeys(pairs))


def check_pair(step: float, block: float) -> None:
    if not 0.0 <= step <= 1.0:
        raise UserError(f"--pairs: step threshold {step:g} is outside [0, 1]")
    if not 0.0 <= block <= 2.0:
        raise UserError(f"--pairs: block threshold {block:g} is outside [0, 2]")


def parse_choices(text: str, flag: str, noun: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    """A comma list of names from ``allowed``, in the given order, without repeats."""
    items = tuple(dict.fromkeys(x.strip() for x in text.split(",") if x.strip()))
    bad = [x for x in items if x not in allowed]
    if bad or not items:
        raise UserError(f"unknown {noun} {bad[0] if bad else '(none)'!r} in {flag}: use a comma list of "
                        f"{', '.join(allowed)}")
    return items


def grid_points(pairs: tuple[tuple[float, float], ...], encoders: tuple[str, ...], metrics: tuple[str, ...],
                distances: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every combination; the label names the pair and only the settings that vary."""
    varied = [len(encoders) > 1, len(metrics) > 1, len(distances) > 1]
    points = []
    for (step, block), encoder, metric, distance in product(pairs, encoders, metrics, distances):
        extra = [v for v, on in zip((encoder, metric, distance), varied) if on]
        points.append({"label": " ".join([f"{step:g}/{block:g}", *extra]), "step_threshold": step,
                       "block_threshold": block, "encoder": encoder, "metric": metric, "distance": distance})
    return points


def pareto_front(points: list[dict[str, Any]], x: str = "affected_ratio", y: str = "accuracy") -> list[dict[str, Any]]:
    """Points no other point beats on both ``x`` and ``y`` (both maximized), sorted by ``x``.

    A point without ``y`` is left out; a missing ``x`` counts as 0 (dense shares nothing).
    Equal points are all kept.
    """
    pts = [p for p in points if p.get(y) is not None]

    def xy(p: dict[str, Any]) -> tuple[float, float]:
        return (p.get(x) or 0.0, p[y])

    def dominated(p: dict[str, Any]) -> bool:
        px, py = xy(p)
        return any(qx >= px and qy >= py and (qx > px or qy > py) for qx, qy in map(xy, pts))

    return sorted((p for p in pts if not dominated(p)), key=lambda p: (xy(p)[0], -xy(p)[1]))
