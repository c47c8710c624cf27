"""The risk rules as a table: every row is answers -> expected level."""

from __future__ import annotations

import pytest

from intake.calls.models import RiskLevel, Substance
from intake.calls.risk import RiskAnswers, assess_risk, needs_safety_action, overdose_risk

T = True

RULES = [
    # (answers, expected level, why)
    (RiskAnswers(), RiskLevel.NONE, "nothing reported"),
    (RiskAnswers(substance_use=T), RiskLevel.LOW, "substance use, no risk factor"),
    (RiskAnswers(withdrawal_symptoms=T), RiskLevel.LOW, "withdrawal symptoms without danger"),
    (RiskAnswers(overdose_risk=T), RiskLevel.MODERATE, "benzodiazepine with alcohol/opioids"),
    (RiskAnswers(suicidal_thoughts=T), RiskLevel.MODERATE, "thoughts only"),
    (RiskAnswers(suicidal_thoughts=T, access_to_means=T), RiskLevel.HIGH, "thoughts and means"),
    (RiskAnswers(suicide_plan=T), RiskLevel.HIGH, "a plan"),
    (RiskAnswers(suicidal_intent=T), RiskLevel.HIGH, "intent"),
    (RiskAnswers(recent_attempt=T), RiskLevel.HIGH, "a recent attempt"),
    (RiskAnswers(suicidal_intent=T, suicide_plan=T), RiskLevel.HIGH, "intent and plan, no means"),
    (RiskAnswers(suicidal_intent=T, suicide_plan=T, access_to_means=T), RiskLevel.IMMINENT, "intent, plan, means"),
    (RiskAnswers(recent_attempt=T, suicidal_intent=T), RiskLevel.IMMINENT, "attempt and intent"),
    (RiskAnswers(medical_danger=T), RiskLevel.IMMINENT, "seizures or overdose signs now"),
    (RiskAnswers(medical_danger=T, overdose_risk=T), RiskLevel.IMMINENT, "danger wins over co-use"),
    (RiskAnswers(suicidal_thoughts=False, suicidal_intent=None), RiskLevel.NONE, "no and not asked"),
    (RiskAnswers(access_to_means=T), RiskLevel.NONE, "means alone is not a risk factor"),
]


@pytest.mark.parametrize("answers,expected,why", RULES, ids=[row[2] for row in RULES])
def test_risk_rule_table(answers, expected, why):
    assert assess_risk(answers) is expected, why


@pytest.mark.parametrize("level,needed", [
    (RiskLevel.NONE, False), (RiskLevel.LOW, False), (RiskLevel.MODERATE, False),
    (RiskLevel.HIGH, True), (RiskLevel.IMMINENT, True),
])
def test_safety_action_needed_for_high_and_imminent(level, needed):
    assert needs_safety_action(level) is needed


@pytest.mark.parametrize("substances,flag", [
    ({Substance.CLONAZEPAM, Substance.ALCOHOL}, True),
    ({Substance.OTHER_BENZODIAZEPINE, Substance.OPIOIDS}, True),
    ({"clonazepam", "opioids"}, True),
    ({Substance.CLONAZEPAM}, False),
    ({Substance.ALCOHOL, Substance.OPIOIDS}, False),
    ({Substance.CLONAZEPAM, Substance.STIMULANTS, Substance.CANNABIS}, False),
    (set(), False),
])
def test_overdose_risk_flag(substances, flag):
    assert overdose_risk(substances) is flag
