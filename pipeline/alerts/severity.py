"""Alert severity: a small, documented rule over score, designated-name matches, sources and regime.

Rule (shown in every alert):

1. Start from the score: ``high`` when the calibrated score is at least 0.90, ``medium`` when it is at
   least the model's threshold, else ``low``.
2. One level up when the text names a UN-designated person, entity or vessel (consolidated list match).
3. One level up when three or more independent sources report the story.
4. One level down when no active UN regime could be identified in the text.
5. The result is clamped between ``low`` and ``critical``.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LEVELS", "RULE", "SeverityInput", "explain_severity", "rank", "severity"]

LEVELS = ("low", "medium", "high", "critical")
HIGH_SCORE = 0.90
MANY_SOURCES = 3
# The rule in one line, as every alert shows it.
RULE = (
    f"score ≥ {HIGH_SCORE:.2f} → high, ≥ the model's threshold → medium, else low; "
    "+1 when a UN-designated person, entity or vessel is named; "
    f"+1 with {MANY_SOURCES} or more independent sources; "
    "−1 when no active UN regime is identified; kept between low and critical"
)


@dataclass(frozen=True, slots=True)
class SeverityInput:
    score: float
    threshold: float
    designated_matches: int = 0
    sources: int = 1
    regimes: tuple[str, ...] = ()


def rank(level: str) -> int:
    return LEVELS.index(level)


def _steps(x: SeverityInput) -> list[tuple[int, str]]:
    base = 2 if x.score >= HIGH_SCORE else 1 if x.score >= x.threshold else 0
    steps = [(base, f"score {x.score:.2f} → {LEVELS[base]}")]
    if x.designated_matches:
        steps.append((1, f"names {x.designated_matches} UN-designated party/vessel (+1)"))
    if x.sources >= MANY_SOURCES:
        steps.append((1, f"{x.sources} independent sources (+1)"))
    if not x.regimes:
        steps.append((-1, "no active UN regime identified (−1)"))
    return steps


def severity(x: SeverityInput) -> str:
    total = sum(delta for delta, _ in _steps(x))
    return LEVELS[max(0, min(len(LEVELS) - 1, total))]


def explain_severity(x: SeverityInput) -> str:
    return "; ".join(text for _, text in _steps(x)) + f" ⇒ {severity(x)}"
