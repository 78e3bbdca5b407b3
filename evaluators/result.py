"""The verdict returned by ``grade_detailed``."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GradeResult:
    """One graded answer.

    Attributes:
        correct: the verdict.
        extracted: the answer found in the response (``None`` when none was).
        reason: why: ``match: <method>`` (``string``, ``time``, ``text``,
            ``math-verify``, ``integer``, ``integer (evaluated)``,
            ``choice``, ``option text, ...``),
            ``mismatch`` (with what could not be parsed, if anything),
            ``no answer found``, ``not an integer: ...``,
            ``timeout after 5.0s``, ``invalid gold: ...`` or ``error: ...``.
    """

    correct: bool
    extracted: str | None
    reason: str

    def to_dict(self) -> dict:
        """Plain-dict form, for JSONL rows.

        Returns:
            ``{"correct": ..., "extracted": ..., "reason": ...}``.
        """
        return asdict(self)
