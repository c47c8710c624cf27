"""What an operator says and does now, for each risk level: the protocol the call form shows beside
the live level. Staff-facing text, marked for translation.

Sources: the 988 Lifeline's Policy for Helping Callers at Imminent Risk of Suicide (active engagement,
least invasive intervention, lifesaving services for an attempt in progress without waiting for consent,
a supervisor available for consultation, confirming that emergency services reached the person) and
its Safety Policy guidance on collaborative safety planning (warning signs, coping steps, people and
places, professionals and crisis lines, making the means safer: Stanley & Brown's Safety Planning
Intervention); SAMHSA's Overdose Prevention and Response Toolkit (call 911, naloxone for opioids,
rescue breathing, the recovery position, stay with the person); the FDA's 2020 boxed warning on
benzodiazepines (never stop suddenly: a taper with the prescriber; seizures are an emergency).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from intake.calls.models import RiskLevel

LEVEL_LABELS = {RiskLevel.NONE: _l("None"), RiskLevel.LOW: _l("Low"), RiskLevel.MODERATE: _l("Moderate"),
                RiskLevel.HIGH: _l("High"), RiskLevel.IMMINENT: _l("Imminent")}

PROTOCOL = {
    RiskLevel.NONE: [
        _l("Listen, answer the question, and ask the screen questions if anything in the call suggests risk."),
    ],
    RiskLevel.LOW: [
        _l("Give information and referrals; check for withdrawal danger signs."),
        _l("Never stop a benzodiazepine suddenly: taper with the prescriber."),
        _l("Offer a follow-up call if the caller agrees."),
    ],
    RiskLevel.MODERATE: [
        _l("Ask every screen question not yet asked: intent, plan, means, a recent attempt."),
        _l("Make a safety plan together: warning signs, coping steps, people to call, 988."),
        _l("Overdose risk: no benzodiazepine with alcohol or opioids; naloxone for opioids."),
        _l("Offer a warm transfer or a follow-up call."),
    ],
    RiskLevel.HIGH: [
        _l("Stay on the line. Say: \"Thank you for telling me. I want to help you stay safe tonight.\""),
        _l("Ask about the means and help put distance between the caller and them."),
        _l("Offer a warm transfer to 988 or a crisis team; make a safety plan together."),
        _l("Withdrawal danger signs (seizures, hallucinations, confusion, chest pain): medical care now."),
        _l("Your supervisor sees this call now: consult them."),
    ],
    RiskLevel.IMMINENT: [
        _l("Stay on the line; do not hang up."),
        _l("Call 911 now (or have a colleague call) with the location: an attempt or overdose in progress "
           "needs no consent."),
        _l("Overdose: naloxone if there, check breathing, recovery position, stay with the person."),
        _l("Keep the caller talking; ask them to put the means away and unlock the door."),
        _l("Your supervisor sees this call now. Record the emergency disclosure before you finalize."),
    ],
}
