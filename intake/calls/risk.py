"""Risk screening rules as one table of data: answers in, a risk level out. Pure, no I/O.

The same table is served to the browser (``rule_table()``, as JSON in the call form) and read there
by ``intake/static/js/risk-rules.js``, so the level an operator sees while typing and the level the
server saves come from one source; ``tests/browser/test_risk_parity.py`` runs every row through both.

Where the rules come from (published practice, read before writing this table):

- Columbia Suicide Severity Rating Scale (C-SSRS), screener version (Posner et al., Columbia Lighthouse
  Project). Ask about suicidal thoughts; "if YES to 2, ask questions 3, 4, 5 and 6". Its triage: thoughts
  alone are the lowest band; thoughts with a method are a middle band; intent (question 4), intent with a
  plan (question 5) and suicidal behaviour in the past three months (question 6) are the high band that
  calls for an immediate response. Our questions map onto it: ``suicidal_thoughts`` = 2,
  ``access_to_means`` ~ 3 (method and means), ``suicidal_intent`` = 4, ``suicide_plan`` = 5,
  ``recent_attempt`` = 6 (past three months).
- 988 Suicide & Crisis Lifeline, "Policy for Helping Callers at Imminent Risk of Suicide" (SAMHSA-funded,
  2012; Draper et al., Suicide Life Threat Behav 45(3):261-270, 2015): imminent risk is the desire and
  intent to die together with the capability of acting on it (a plan and access to means, or a recent
  attempt); attempts in progress need lifesaving services without waiting for consent (911); centres
  keep supervisors available for consultation; active engagement first, active rescue where the person
  stays at imminent risk. Hence intent + plan + means and intent + a recent attempt are imminent.
- Benzodiazepine withdrawal (FDA boxed warning, 2020: abrupt discontinuation or rapid dose reduction can
  cause "acute withdrawal reactions, which can be life-threatening", including seizures; ASAM Joint
  Clinical Practice Guideline on Benzodiazepine Tapering, 2025): seizures, hallucinations, confusion or
  delirium are danger signs needing urgent medical assessment; and SAMHSA's Overdose Prevention and
  Response Toolkit (2023): unresponsiveness and slow or stopped breathing are signs of an overdose in
  progress (call 911 now). A benzodiazepine taken with alcohol or opioids depresses breathing (FDA
  boxed warning on concomitant opioid and benzodiazepine use, 2016): an overdose risk of its own.

Failing safe (the bypasses this table closes):

- Every danger sign on the form counts, wherever it was entered: the withdrawal-symptom boxes feed the
  level exactly as the screen's answers do ("Suicidal thoughts" ticked among the symptoms is suicidal
  thoughts reported).
- "Not asked" is never read as "no". A danger sign makes its screen questions required
  (``REQUIREMENTS``); a required question left unasked blocks finalizing unless a reason is recorded
  (caller hung up, a third party did not know ...), and while the follow-up questions after reported
  suicidal thoughts are unanswered the level is high, not moderate (C-SSRS asks 3-6 after a yes to 2
  because the answer may be yes).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from intake.calls.models import BENZODIAZEPINES, RiskLevel, Substance

# Levels that need at least one recorded safety action and go on the supervisors' urgent queue.
URGENT_LEVELS = frozenset({RiskLevel.HIGH, RiskLevel.IMMINENT})
LEVELS = (RiskLevel.NONE, RiskLevel.LOW, RiskLevel.MODERATE, RiskLevel.HIGH, RiskLevel.IMMINENT)
_ORDER = list(LEVELS)

YES, NO, UNANSWERED = "yes", "no", "unanswered"
SUICIDE_QUESTIONS = ("suicidal_thoughts", "suicidal_intent", "suicide_plan", "access_to_means", "recent_attempt")
RISK_QUESTIONS = (*SUICIDE_QUESTIONS, "medical_danger")
# The follow-up questions of the suicide screen (C-SSRS 3-6).
FOLLOW_UP_QUESTIONS = ("suicidal_intent", "suicide_plan", "access_to_means", "recent_attempt")

# Withdrawal and overdose signs the symptom boxes can report. Order is the form's.
WITHDRAWAL_SYMPTOMS = ("anxiety_panic", "insomnia", "tremor", "seizures", "hallucinations", "confusion",
                       "chest_pain", "slow_breathing", "unresponsive", "suicidal_thoughts", "other")
# Danger signs that need urgent medical assessment (benzodiazepine withdrawal: FDA 2020, ASAM 2025).
MEDICAL_DANGER_SIGNS = ("seizures", "hallucinations", "confusion", "chest_pain")
# Signs of an overdose in progress (SAMHSA Overdose Prevention and Response Toolkit): 911 now.
OVERDOSE_NOW_SIGNS = ("unresponsive", "slow_breathing")
DEPRESSANTS = (Substance.ALCOHOL, Substance.OPIOIDS)

# Why a required question was not asked (recorded on the call; codes, labels in the form).
UNASKED_REASONS = ("caller_hung_up", "third_party_did_not_know", "caller_declined", "emergency_first", "other")


def _answer(question: str, value: str) -> dict[str, str]:
    return {"answer": question, "is": value}


def _symptom(code: str) -> dict[str, str]:
    return {"symptom": code}


def _ref(name: str) -> dict[str, str]:
    return {"ref": name}


# Named conditions the rows share. A condition is one of:
#   {"answer": q, "is": "yes" | "no" | "unanswered"}   the screen's answer to question q
#   {"symptom": code}                                   a symptom box ticked
#   {"substance_in": [codes]}                           any of these substances ticked
#   {"any_symptom": true} / {"any_substance": true}
#   {"ref": name}                                       a named condition below
#   {"all": [conditions]} / {"any": [conditions]}
DEFINITIONS: dict[str, dict[str, Any]] = {
    # Suicidal thoughts, whether answered in the screen or ticked among the symptoms.
    "suicidal_thoughts_reported": {"any": [_answer("suicidal_thoughts", YES), _symptom("suicidal_thoughts")]},
    "overdose_co_use": {"all": [{"substance_in": sorted(s.value for s in BENZODIAZEPINES)},
                                {"substance_in": [s.value for s in DEPRESSANTS]}]},
    "medical_danger_sign": {"any": [_symptom(code) for code in (*MEDICAL_DANGER_SIGNS, *OVERDOSE_NOW_SIGNS)]},
    "follow_up_unanswered": {"any": [_answer(q, UNANSWERED) for q in FOLLOW_UP_QUESTIONS]},
}

# The table. The level is the highest level of any row that matches; no row: none.
RULES: list[dict[str, Any]] = [
    # Imminent: attempts or overdoses in progress, and desire + intent + capability (Lifeline policy).
    {"id": "medical_danger_now", "level": "imminent", "when": _answer("medical_danger", YES),
     "why": "Medical danger now: seizure, overdose signs or severe withdrawal (911)."},
    {"id": "unresponsive", "level": "imminent", "when": _symptom("unresponsive"),
     "why": "The person is unresponsive: an overdose or seizure in progress (911)."},
    {"id": "slow_breathing", "level": "imminent", "when": _symptom("slow_breathing"),
     "why": "Slow or shallow breathing: an overdose in progress (911)."},
    {"id": "intent_plan_means", "level": "imminent",
     "when": {"all": [_answer("suicidal_intent", YES), _answer("suicide_plan", YES), _answer("access_to_means", YES)]},
     "why": "Intent, a plan and access to means (Lifeline: imminent risk)."},
    {"id": "attempt_and_intent", "level": "imminent",
     "when": {"all": [_answer("recent_attempt", YES), _answer("suicidal_intent", YES)]},
     "why": "A recent attempt and intent to act again (Lifeline: imminent risk)."},
    # High: C-SSRS questions 4-6, thoughts with means, withdrawal danger signs, and unknowns after thoughts.
    {"id": "intent", "level": "high", "when": _answer("suicidal_intent", YES),
     "why": "Intent to act on suicidal thoughts (C-SSRS 4)."},
    {"id": "plan", "level": "high", "when": _answer("suicide_plan", YES),
     "why": "A suicide plan (C-SSRS 5)."},
    {"id": "recent_attempt", "level": "high", "when": _answer("recent_attempt", YES),
     "why": "A suicide attempt or preparation in the past three months (C-SSRS 6)."},
    {"id": "thoughts_and_means", "level": "high",
     "when": {"all": [_ref("suicidal_thoughts_reported"), _answer("access_to_means", YES)]},
     "why": "Suicidal thoughts and access to means (C-SSRS 3)."},
    {"id": "thoughts_follow_up_unanswered", "level": "high",
     "when": {"all": [_ref("suicidal_thoughts_reported"), _ref("follow_up_unanswered")]},
     "why": "Suicidal thoughts, and intent, plan, means or an attempt not yet asked: high until asked."},
    {"id": "seizures", "level": "high", "when": _symptom("seizures"),
     "why": "Seizures: a withdrawal danger sign (urgent medical care)."},
    {"id": "hallucinations", "level": "high", "when": _symptom("hallucinations"),
     "why": "Hallucinations: a withdrawal danger sign (delirium)."},
    {"id": "confusion", "level": "high", "when": _symptom("confusion"),
     "why": "Confusion: a withdrawal danger sign (delirium)."},
    {"id": "chest_pain", "level": "high", "when": _symptom("chest_pain"),
     "why": "Chest pain: urgent medical care."},
    # Moderate: thoughts with every follow-up answered no; co-use.
    {"id": "thoughts", "level": "moderate", "when": _ref("suicidal_thoughts_reported"),
     "why": "Suicidal thoughts (C-SSRS 2)."},
    {"id": "overdose_co_use", "level": "moderate", "when": _ref("overdose_co_use"),
     "why": "A benzodiazepine with alcohol or opioids: overdose risk."},
    # Low: substance use or withdrawal without a danger sign.
    {"id": "withdrawal", "level": "low", "when": {"any_symptom": True},
     "why": "Withdrawal symptoms."},
    {"id": "substance_use", "level": "low", "when": {"any_substance": True},
     "why": "Substance use."},
]

# A danger sign makes the matching screen questions required: asked, or a reason recorded.
REQUIREMENTS: list[dict[str, Any]] = [
    {"id": "suicide_screen", "when": _ref("suicidal_thoughts_reported"), "require": list(SUICIDE_QUESTIONS)},
    {"id": "medical_danger_check", "when": {"any": [_ref("medical_danger_sign"), _ref("overdose_co_use")]},
     "require": ["medical_danger"]},
]


def rule_table() -> dict[str, Any]:
    """Everything the browser needs to compute what the server computes (JSON-ready)."""
    return {"levels": [level.value for level in LEVELS], "questions": list(RISK_QUESTIONS),
            "definitions": DEFINITIONS, "rules": RULES, "requirements": REQUIREMENTS}


@dataclass(frozen=True)
class Facts:
    """What the form says: each question's answer ("yes", "no" or "unanswered"), the symptom boxes
    ticked and the substances ticked."""

    answers: Mapping[str, str] = field(default_factory=dict)
    symptoms: frozenset[str] = frozenset()
    substances: frozenset[str] = frozenset()

    @classmethod
    def build(cls, answers: Mapping[str, bool | str | None] | None = None, symptoms: Iterable[str] = (),
              substances: Iterable[Substance | str] = ()) -> Facts:
        """From stored values: True / False / None (not asked), or the form's "yes" / "no" / ""."""
        def coded(value: bool | str | None) -> str:
            if value is True or value == YES:
                return YES
            if value is False or value == NO:
                return NO
            return UNANSWERED

        given = answers or {}
        return cls({q: coded(given.get(q)) for q in RISK_QUESTIONS}, frozenset(s for s in symptoms if s),
                   frozenset(str(Substance(s)) for s in substances))

    def as_json(self) -> dict[str, Any]:
        return {"answers": dict(self.answers), "symptoms": sorted(self.symptoms), "substances": sorted(self.substances)}


@dataclass(frozen=True)
class Assessment:
    level: RiskLevel
    overdose_risk: bool
    matched: tuple[str, ...]  # ids of the rows that matched, table order
    required: tuple[str, ...]  # questions that must be asked (or a reason recorded)
    unanswered_required: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"level": self.level.value, "overdose_risk": self.overdose_risk, "matched": list(self.matched),
                "required": list(self.required), "unanswered_required": list(self.unanswered_required)}


def holds(condition: Mapping[str, Any], facts: Facts) -> bool:
    """Whether one condition of the table holds for ``facts`` (the grammar is above DEFINITIONS)."""
    if "all" in condition:
        return all(holds(c, facts) for c in condition["all"])
    if "any" in condition:
        return any(holds(c, facts) for c in condition["any"])
    if "ref" in condition:
        return holds(DEFINITIONS[condition["ref"]], facts)
    if "answer" in condition:
        return facts.answers.get(condition["answer"], UNANSWERED) == condition["is"]
    if "symptom" in condition:
        return condition["symptom"] in facts.symptoms
    if "substance_in" in condition:
        return bool(facts.substances & set(condition["substance_in"]))
    if "any_symptom" in condition:
        return bool(facts.symptoms)
    if "any_substance" in condition:
        return bool(facts.substances)
    raise ValueError(f"unknown condition {sorted(condition)}")


def evaluate(facts: Facts) -> Assessment:
    """The level (highest matching row), the overdose flag, and the questions the facts make required."""
    matched = tuple(row["id"] for row in RULES if holds(row["when"], facts))
    levels = [RiskLevel(row["level"]) for row in RULES if row["id"] in matched]
    level = max(levels, key=_ORDER.index) if levels else RiskLevel.NONE
    required = [q for q in RISK_QUESTIONS
                if any(q in req["require"] and holds(req["when"], facts) for req in REQUIREMENTS)]
    unanswered = tuple(q for q in required if facts.answers.get(q, UNANSWERED) == UNANSWERED)
    return Assessment(level, holds(_ref("overdose_co_use"), facts), matched, tuple(required), unanswered)


def overdose_risk(substances: Iterable[Substance | str]) -> bool:
    """A benzodiazepine together with alcohol or opioids (respiratory depression)."""
    return holds(_ref("overdose_co_use"), Facts.build(substances=substances))


def needs_safety_action(level: RiskLevel) -> bool:
    return level in URGENT_LEVELS


def at_least(level: RiskLevel, floor: RiskLevel) -> bool:
    return _ORDER.index(level) >= _ORDER.index(floor)
