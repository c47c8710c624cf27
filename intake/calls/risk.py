"""Risk screening rules: answers in, a risk level out. Pure functions, tested as a table.

The rules follow the usual shape of suicide-risk triage on crisis lines (thoughts, then intent,
plan, means and a recent attempt raise the level), with the danger this helpline sees most
added: benzodiazepine withdrawal and overdose. Co-use of a benzodiazepine with alcohol or opioids
is an overdose risk on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from intake.calls.models import BENZODIAZEPINES, RiskLevel, Substance

# Levels that need at least one recorded safety action and go on the supervisors' urgent queue.
URGENT_LEVELS = frozenset({RiskLevel.HIGH, RiskLevel.IMMINENT})
_ORDER = [RiskLevel.NONE, RiskLevel.LOW, RiskLevel.MODERATE, RiskLevel.HIGH, RiskLevel.IMMINENT]


def overdose_risk(substances: Iterable[Substance | str]) -> bool:
    """A benzodiazepine together with alcohol or opioids (respiratory depression)."""
    found = {Substance(s) for s in substances}
    return bool(found & BENZODIAZEPINES) and bool(found & {Substance.ALCOHOL, Substance.OPIOIDS})


@dataclass(frozen=True)
class RiskAnswers:
    """The screen's answers; None means the question was not asked (treated as no)."""

    suicidal_thoughts: bool | None = None
    suicidal_intent: bool | None = None
    suicide_plan: bool | None = None
    access_to_means: bool | None = None
    recent_attempt: bool | None = None
    medical_danger: bool | None = None
    overdose_risk: bool = False
    withdrawal_symptoms: bool = False
    substance_use: bool = False


def assess_risk(a: RiskAnswers) -> RiskLevel:
    """The risk level the answers call for (the highest rule that matches)."""
    thoughts, intent, plan, means = (bool(a.suicidal_thoughts), bool(a.suicidal_intent),
                                     bool(a.suicide_plan), bool(a.access_to_means))
    attempt, danger = bool(a.recent_attempt), bool(a.medical_danger)
    if danger or (intent and plan and means) or (attempt and intent):
        return RiskLevel.IMMINENT
    if intent or plan or attempt or (thoughts and means):
        return RiskLevel.HIGH
    if thoughts or a.overdose_risk:
        return RiskLevel.MODERATE
    if a.withdrawal_symptoms or a.substance_use:
        return RiskLevel.LOW
    return RiskLevel.NONE


def needs_safety_action(level: RiskLevel) -> bool:
    return level in URGENT_LEVELS


def at_least(level: RiskLevel, floor: RiskLevel) -> bool:
    return _ORDER.index(level) >= _ORDER.index(floor)
