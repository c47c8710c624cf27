"""The risk rules as a table (intake/calls/risk.py): every row is what the form says -> the level, and
every bypass the issue found is a row of its own. The same rows run through the browser's interpreter
in tests/browser/test_risk_parity.py."""

from __future__ import annotations

import itertools
import random

import pytest

from intake.calls.models import RiskLevel, Substance
from intake.calls.risk import (
    DEFINITIONS,
    REQUIREMENTS,
    RISK_QUESTIONS,
    RULES,
    WITHDRAWAL_SYMPTOMS,
    Facts,
    evaluate,
    holds,
    needs_safety_action,
    overdose_risk,
    rule_table,
)

Y, N = True, False
NO_TO_FOLLOW_UPS = {"suicidal_intent": N, "suicide_plan": N, "access_to_means": N, "recent_attempt": N}


def facts(answers=None, symptoms=(), substances=()) -> Facts:
    return Facts.build(answers or {}, symptoms, substances)


# (id, facts, expected level, expected unanswered required questions)
CASES = [
    ("nothing_reported", facts(), RiskLevel.NONE, ()),
    ("substance_use", facts(substances=["cannabis"]), RiskLevel.LOW, ()),
    ("withdrawal_without_danger", facts(symptoms=["insomnia", "tremor"]), RiskLevel.LOW, ()),
    ("overdose_co_use", facts({"medical_danger": N}, substances=["clonazepam", "alcohol"]), RiskLevel.MODERATE, ()),
    ("co_use_makes_the_medical_question_required", facts(substances=["other_benzodiazepine", "opioids"]),
     RiskLevel.MODERATE, ("medical_danger",)),
    ("thoughts_with_every_follow_up_no", facts({"suicidal_thoughts": Y, **NO_TO_FOLLOW_UPS}), RiskLevel.MODERATE, ()),
    ("thoughts_and_means", facts({"suicidal_thoughts": Y, **NO_TO_FOLLOW_UPS, "access_to_means": Y}),
     RiskLevel.HIGH, ()),
    ("plan", facts({"suicide_plan": Y}), RiskLevel.HIGH, ()),
    ("intent", facts({"suicidal_intent": Y}), RiskLevel.HIGH, ()),
    ("recent_attempt", facts({"recent_attempt": Y}), RiskLevel.HIGH, ()),
    ("intent_and_plan_without_means", facts({"suicidal_intent": Y, "suicide_plan": Y, "access_to_means": N}),
     RiskLevel.HIGH, ()),
    ("intent_plan_means", facts({"suicidal_intent": Y, "suicide_plan": Y, "access_to_means": Y}),
     RiskLevel.IMMINENT, ()),
    ("attempt_and_intent", facts({"recent_attempt": Y, "suicidal_intent": Y}), RiskLevel.IMMINENT, ()),
    ("medical_danger_now", facts({"medical_danger": Y}), RiskLevel.IMMINENT, ()),
    ("danger_wins_over_co_use", facts({"medical_danger": Y}, substances=["clonazepam", "opioids"]),
     RiskLevel.IMMINENT, ()),
    ("no_and_not_asked", facts({"suicidal_thoughts": N}), RiskLevel.NONE, ()),
    ("means_alone_is_not_a_risk_factor", facts({"access_to_means": Y}), RiskLevel.NONE, ()),
    # The bypasses seen in the issue, and their neighbours.
    ("bypass_clonazepam_and_suicidal_thoughts_symptom_left_unasked",
     facts(symptoms=["suicidal_thoughts"], substances=["clonazepam"]), RiskLevel.HIGH,
     ("suicidal_thoughts", "suicidal_intent", "suicide_plan", "access_to_means", "recent_attempt")),
    ("bypass_symptom_thoughts_then_answered_no_to_follow_ups",
     facts({"suicidal_thoughts": Y, **NO_TO_FOLLOW_UPS}, symptoms=["suicidal_thoughts"]), RiskLevel.MODERATE, ()),
    ("bypass_symptom_thoughts_cannot_be_cancelled_by_a_no",
     facts({"suicidal_thoughts": N, **NO_TO_FOLLOW_UPS}, symptoms=["suicidal_thoughts"]), RiskLevel.MODERATE, ()),
    ("bypass_thoughts_answered_yes_rest_not_asked", facts({"suicidal_thoughts": Y}), RiskLevel.HIGH,
     ("suicidal_intent", "suicide_plan", "access_to_means", "recent_attempt")),
    ("bypass_seizures_and_hallucinations_in_a_draft", facts(symptoms=["seizures", "hallucinations"]),
     RiskLevel.HIGH, ("medical_danger",)),
    ("bypass_seizures_with_medical_danger_answered_yes", facts({"medical_danger": Y}, symptoms=["seizures"]),
     RiskLevel.IMMINENT, ()),
    ("bypass_seizures_are_high_even_with_medical_danger_no", facts({"medical_danger": N}, symptoms=["seizures"]),
     RiskLevel.HIGH, ()),
    ("confusion_is_a_danger_sign", facts(symptoms=["confusion"]), RiskLevel.HIGH, ("medical_danger",)),
    ("chest_pain_is_a_danger_sign", facts(symptoms=["chest_pain"]), RiskLevel.HIGH, ("medical_danger",)),
    ("unresponsive_is_imminent", facts(symptoms=["unresponsive"]), RiskLevel.IMMINENT, ("medical_danger",)),
    ("slow_breathing_is_imminent", facts(symptoms=["slow_breathing"], substances=["clonazepam", "opioids"]),
     RiskLevel.IMMINENT, ("medical_danger",)),
    ("not_asked_never_counts_as_no_after_thoughts",
     facts({"suicidal_thoughts": Y, "suicidal_intent": N, "suicide_plan": N, "access_to_means": N}),
     RiskLevel.HIGH, ("recent_attempt",)),
]


@pytest.mark.parametrize("name,given,expected,unanswered", CASES, ids=[c[0] for c in CASES])
def test_risk_rule_table(name, given, expected, unanswered):
    result = evaluate(given)
    assert result.level is expected, (name, result)
    assert result.unanswered_required == unanswered, (name, result)


def test_every_rule_of_the_table_is_exercised_by_a_case():
    """A new row without a case fails here: the table and its tests move together."""
    matched = set(itertools.chain.from_iterable(evaluate(c[1]).matched for c in CASES))
    assert {row["id"] for row in RULES} <= matched


def test_the_level_is_the_highest_matching_row():
    rng = random.Random(16)
    order = ["none", "low", "moderate", "high", "imminent"]
    for _ in range(500):
        given = random_facts(rng)
        result = evaluate(given)
        levels = [row["level"] for row in RULES if holds(row["when"], given)]
        assert result.level.value == (max(levels, key=order.index) if levels else "none")


def test_a_danger_sign_makes_its_questions_required():
    assert evaluate(facts(symptoms=["suicidal_thoughts"])).required == (
        "suicidal_thoughts", "suicidal_intent", "suicide_plan", "access_to_means", "recent_attempt")
    assert evaluate(facts(symptoms=["hallucinations"])).required == ("medical_danger",)
    assert evaluate(facts(symptoms=["insomnia"])).required == ()


def test_the_table_is_plain_data_the_browser_can_read():
    import json

    table = json.loads(json.dumps(rule_table()))
    assert table["levels"] == ["none", "low", "moderate", "high", "imminent"]
    assert set(table["definitions"]) == set(DEFINITIONS) and len(table["requirements"]) == len(REQUIREMENTS)
    assert table["questions"] == list(RISK_QUESTIONS)


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


def random_facts(rng: random.Random) -> Facts:
    """Any combination the form can produce (for the property check and the browser parity test)."""
    answers = {q: rng.choice([True, False, None]) for q in RISK_QUESTIONS}
    symptoms = [s for s in WITHDRAWAL_SYMPTOMS if rng.random() < 0.15]
    substances = [s for s in Substance if rng.random() < 0.25]
    return Facts.build(answers, symptoms, substances)
