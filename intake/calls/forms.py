"""The intake form: every field listed explicitly (no mass assignment), shape checked here,
meaning (required fields, risk needs a safety action, follow-up needs consent) in the services.

Choices that come from the database (resources, assignees) are set by the view.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    Field,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from intake import clock
from intake.calls.models import AgeRange, Channel, Disposition, ReferralStatus, Relationship, Substance, UnaskedReason
from intake.calls.risk import RISK_QUESTIONS, WITHDRAWAL_SYMPTOMS
from intake.calls.services import (
    CONCERNS,
    NOTES_MAX,
    PHONE_DIGITS,
    STATE_RE,
    TEXT_MAX,
    normalize_phone,
    zip_problem,
)
from intake.forms import strip

LOCAL_FORMAT = "%Y-%m-%dT%H:%M"

CHANNEL_LABELS = {Channel.PHONE: _l("Phone"), Channel.TEXT: _l("Text message"), Channel.CHAT: _l("Chat"),
                  Channel.EMAIL: _l("E-mail")}
RELATIONSHIP_LABELS = {Relationship.SELF: _l("Self (the person of concern)"), Relationship.FAMILY: _l("Family member"),
                       Relationship.FRIEND: _l("Friend"), Relationship.PROFESSIONAL: _l("Professional"),
                       Relationship.OTHER: _l("Other")}
AGE_LABELS = {AgeRange.UNKNOWN: _l("Unknown"), AgeRange.UNDER_18: _l("Under 18"), AgeRange.AGE_18_24: _l("18–24"),
              AgeRange.AGE_25_34: _l("25–34"), AgeRange.AGE_35_44: _l("35–44"), AgeRange.AGE_45_54: _l("45–54"),
              AgeRange.AGE_55_64: _l("55–64"), AgeRange.AGE_65_PLUS: _l("65 or older")}
# Benzodiazepines first: the facility's focus.
SUBSTANCE_LABELS = {Substance.CLONAZEPAM: _l("Clonazepam (Klonopin)"),
                    Substance.OTHER_BENZODIAZEPINE: _l("Other benzodiazepine (Xanax, Valium, Ativan …)"),
                    Substance.ALCOHOL: _l("Alcohol"), Substance.OPIOIDS: _l("Opioids"),
                    Substance.STIMULANTS: _l("Stimulants"),
                    Substance.CANNABIS: _l("Cannabis"), Substance.OTHER: _l("Other")}
SYMPTOM_LABELS = {"anxiety_panic": _l("Anxiety or panic"), "insomnia": _l("Insomnia"), "tremor": _l("Tremor"),
                  "seizures": _l("Seizures"), "hallucinations": _l("Hallucinations"), "confusion": _l("Confusion"),
                  "chest_pain": _l("Chest pain"), "slow_breathing": _l("Slow or shallow breathing"),
                  "unresponsive": _l("Unresponsive (cannot be woken)"),
                  "suicidal_thoughts": _l("Suicidal thoughts"), "other": _l("Other")}
UNASKED_LABELS = {UnaskedReason.CALLER_HUNG_UP: _l("The caller hung up"),
                  UnaskedReason.THIRD_PARTY_DID_NOT_KNOW: _l("The caller (not the person) did not know"),
                  UnaskedReason.CALLER_DECLINED: _l("The caller would not answer"),
                  UnaskedReason.EMERGENCY_FIRST: _l("Emergency: help was sent first"),
                  UnaskedReason.OTHER: _l("Other")}
CONCERN_LABELS = {"taper_help": _l("Help with a taper"), "withdrawal": _l("Withdrawal"),
                  "overdose_worry": _l("Overdose worry"),
                  "treatment_options": _l("Treatment options"), "cost_insurance": _l("Cost or insurance"),
                  "family_support": _l("Support for family"), "mental_health": _l("Mental health"),
                  "relapse": _l("Relapse"),
                  "other": _l("Other")}
RISK_LABELS = {"suicidal_thoughts": _l("Suicidal thoughts?"), "suicidal_intent": _l("Intent to act on them?"),
               "suicide_plan": _l("A plan?"), "access_to_means": _l("Access to means?"),
               "recent_attempt": _l("A recent attempt?"),
               "medical_danger": _l("Medical danger now (seizures, severe withdrawal, overdose signs)?")}
DISPOSITION_LABELS = {Disposition.INFORMATION_GIVEN: _l("Information given"), Disposition.REFERRED: _l("Referred"),
                      Disposition.CRISIS_DEESCALATED: _l("Crisis de-escalated"),
                      Disposition.EMERGENCY_DISPATCHED: _l("Emergency services dispatched"),
                      Disposition.WARM_TRANSFER: _l("Warm transfer"),
                      Disposition.CALLBACK_PLANNED: _l("Callback planned"),
                      Disposition.CALLER_DISCONNECTED: _l("Caller disconnected"), Disposition.OTHER: _l("Other")}
REFERRAL_STATUS_LABELS = {ReferralStatus.GIVEN: _l("Given"), ReferralStatus.CONTACTED: _l("Contacted"),
                          ReferralStatus.ADMITTED: _l("Admitted"), ReferralStatus.DECLINED: _l("Declined")}
def as_choices(pairs: Any) -> list[SelectChoice]:
    """(value, label) pairs as WTForms choices (plain tuples are deprecated in WTForms 3.3)."""
    return [p if isinstance(p, SelectChoice) else SelectChoice(p[0], p[1]) for p in pairs]


def choice_values(choices: Any) -> set[str]:
    return {str(c.value if isinstance(c, SelectChoice) else c[0]) for c in choices or []}


BOOLEAN_FIELDS = ("safety_988", "safety_911", "safety_warm_transfer", "safety_plan", "safety_supervisor",
                  "identity_shared", "consent_callback", "consent_voicemail", "consent_text")
ANSWER_CHOICES = as_choices([("", _l("Not asked")), ("yes", _l("Yes")), ("no", _l("No"))])
CHOOSE = [("", _l("— choose —"))]


def facility_zone(name: str = clock.DEFAULT_ZONE) -> ZoneInfo:
    return clock.zone(name)


def to_utc(local: datetime | None, zone: ZoneInfo) -> datetime | None:
    """A wall-clock time typed at the facility, as an aware UTC datetime (``clock.local_to_utc``)."""
    return clock.local_to_utc(local, zone)


def to_local_input(value: datetime | None, zone: ZoneInfo) -> str:
    return clock.local_input(value, zone)


def plain_text(form: FlaskForm, field: Field) -> None:
    """Refuse NUL and other invisible control characters (tabs and line breaks are fine)."""
    if field.data and any((ord(ch) < 32 and ch not in "\t\r\n") or 127 <= ord(ch) < 160 for ch in field.data):
        raise ValidationError(_l("Remove the invisible control characters."))


def sensible_year(form: FlaskForm, field: Field) -> None:
    if field.data is not None and not 2000 <= field.data.year <= 2100:
        raise ValidationError(_l("Give a date between 2000 and 2100."))


def valid_zip(form: FlaskForm, field: Field) -> None:
    problem = zip_problem(field.data)
    if problem:
        raise ValidationError(problem)


def valid_state(form: FlaskForm, field: Field) -> None:
    if field.data and not STATE_RE.match(field.data):
        raise ValidationError(_l("A state is two letters, like CA."))


def valid_phone(form: FlaskForm, field: Field) -> None:
    digits = normalize_phone(field.data)
    if field.data and not (digits and PHONE_DIGITS.match(digits)):
        raise ValidationError(_l("A phone number has 7 to 15 digits."))


def choice_or_empty(form: FlaskForm, field: Field) -> None:
    """An answer from the list, or nothing (a draft may leave any choice open)."""
    values = field.data if isinstance(field.data, list) else [field.data]
    allowed = choice_values(field.choices)
    if any(v not in (None, "") and str(v) not in allowed for v in values):
        raise ValidationError(_l("Choose an answer from the list."))


def _select(label: str, choices: list[tuple[str, str]], **kw: Any) -> SelectField:
    return SelectField(label, choices=as_choices(choices), validate_choice=False, validators=[choice_or_empty], **kw)


def _radio(label: str) -> RadioField:
    return RadioField(label, choices=ANSWER_CHOICES, default="", validate_choice=False, validators=[choice_or_empty])


def upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


class CheckboxesField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()

    def __init__(self, label: Any = None, choices: Any = None, **kw: Any) -> None:
        super().__init__(label, choices=as_choices(choices or []), **kw)

    def pre_validate(self, form: Any) -> None:
        if any(v not in choice_values(self.choices) for v in (self.data or [])):
            raise ValidationError(_l("Choose answers from the list."))


def _text(label: str, max_length: int = TEXT_MAX, area: bool = False, **kw: Any) -> Field:
    kind = TextAreaField if area else StringField
    return kind(label, validators=[Optional(), Length(max=max_length, message=f"At most {max_length:,} characters."),
                                   plain_text], **kw)


def _when(label: str) -> DateTimeLocalField:
    return DateTimeLocalField(label, format=LOCAL_FORMAT, validators=[Optional(), sensible_year])


class CallForm(FlaskForm):
    """One data call."""

    channel = _select(_l("Channel"), [(c.value, CHANNEL_LABELS[c]) for c in Channel])
    ended_at = _when(_l("End time (optional)"))
    relationship_to_person = _select(_l("Caller is"), CHOOSE + [(r.value, RELATIONSHIP_LABELS[r])
                                                                        for r in Relationship])
    caller_name = _text(_l("Caller name (optional)"), 200, render_kw={"autocomplete": "off"})
    caller_phone = StringField(_l("Caller phone (optional)"), filters=[strip],
                               validators=[Optional(), Length(max=40), valid_phone],
                               render_kw={"autocomplete": "off", "inputmode": "tel"})
    zip = StringField(_l("ZIP code (optional)"), filters=[strip], validators=[Optional(), valid_zip],
                      render_kw={"inputmode": "numeric", "autocomplete": "off", "maxlength": 5})
    state = StringField(_l("State (optional)"), filters=[upper], validators=[Optional(), valid_state],
                        render_kw={"autocomplete": "off", "maxlength": 2})
    age_range = _select(_l("Age range (optional)"), CHOOSE + [(a.value, AGE_LABELS[a]) for a in AgeRange])

    substances = CheckboxesField(_l("Substances (optional)"),
                                 choices=[(s.value, SUBSTANCE_LABELS[s]) for s in Substance])
    withdrawal_symptoms = CheckboxesField(_l("Withdrawal symptoms (optional)"),
                                          choices=[(c, SYMPTOM_LABELS[c]) for c in WITHDRAWAL_SYMPTOMS])
    concerns = CheckboxesField(_l("Concerns (optional)"), choices=[(c, CONCERN_LABELS[c]) for c in CONCERNS])

    suicidal_thoughts = _radio(RISK_LABELS["suicidal_thoughts"])
    suicidal_intent = _radio(RISK_LABELS["suicidal_intent"])
    suicide_plan = _radio(RISK_LABELS["suicide_plan"])
    access_to_means = _radio(RISK_LABELS["access_to_means"])
    recent_attempt = _radio(RISK_LABELS["recent_attempt"])
    medical_danger = _radio(RISK_LABELS["medical_danger"])
    unasked_reason = _select(_l("Why required questions were not asked"),
                             CHOOSE + [(r.value, UNASKED_LABELS[r]) for r in UnaskedReason])

    safety_988 = BooleanField(_l("988 Suicide & Crisis Lifeline"))
    safety_911 = BooleanField(_l("911 called"))
    safety_warm_transfer = BooleanField(_l("Warm transfer"))
    safety_plan = BooleanField(_l("Safety plan made"))
    safety_supervisor = BooleanField(_l("Supervisor consulted"))
    identity_shared = BooleanField(_l("The caller's name, number or location was shared outside the helpline"))

    # 42 CFR 2.51(c): to whom (and affiliation), by whom, when, the nature of the emergency.
    disclosure_to = _text(_l("Medical personnel who received it (name)"))
    disclosure_affiliation = _text(_l("Their affiliation (agency or health care facility)"))
    disclosure_by = _select(_l("Disclosure made by"), [])
    disclosure_at = _when(_l("Date and time of the disclosure"))
    disclosure_reason = _text(_l("Nature of the emergency"), area=True)
    disclosure_information = _text(_l("What was shared"), area=True)

    referral_add = _select(_l("Add a referral (optional)"), [])
    referral_add_status = _select(_l("Status of the new referral"),
                                  [(s.value, REFERRAL_STATUS_LABELS[s]) for s in ReferralStatus])

    insurance_help = BooleanField(_l("Insurance help promised"))
    insurance_note = _text(_l("Insurance help note (optional)"))
    transport_help = BooleanField(_l("Transport help promised"))
    transport_note = _text(_l("Transport help note (optional)"))

    consent_callback = BooleanField(_l("Callback OK"))
    consent_voicemail = BooleanField(_l("Voicemail OK"))
    consent_text = BooleanField(_l("Text message OK"))
    safe_times = _text(_l("Safe times to contact (optional)"))
    safe_wording = _text(_l("Safe wording (optional): what to say if someone else answers"), area=True)

    followup_due_at = _when(_l("Follow-up due (optional)"))
    followup_assignee = _select(_l("Follow-up assigned to (optional)"), [])

    disposition = _select(_l("Disposition"), CHOOSE + [(d.value, DISPOSITION_LABELS[d]) for d in Disposition])
    notes = _text(_l("Notes (optional)"), NOTES_MAX, area=True, render_kw={"rows": 6})



def _answer(value: str | None) -> bool | None:
    return {"yes": True, "no": False}.get(value or "")


def parse_referrals(form_data: Any, allowed_ids: set[int]) -> tuple[list[tuple[int, str]], bool]:
    """The referral rows posted as parallel lists ``referral_resource_id`` / ``referral_status``;
    and whether any row was malformed (it is then left out)."""
    ids, statuses = form_data.getlist("referral_resource_id"), form_data.getlist("referral_status")
    rows: list[tuple[int, str]] = []
    bad = len(ids) != len(statuses) or len(ids) > 50
    for raw_id, status in zip(ids[:50], statuses[:50], strict=False):
        if not raw_id.isascii() or not raw_id.isdigit() or len(raw_id) > 9 or int(raw_id) not in allowed_ids \
                or status not in ReferralStatus.__members__.values():
            bad = True
            continue
        rows.append((int(raw_id), status))
    return rows, bad


def form_data(form: CallForm, zone: ZoneInfo, referrals: list[tuple[int, str]],
              assignees: dict[str, int], skip: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The service's ``data`` dict from a validated form; fields named in ``skip`` (those with
    errors, on a draft) are left out so a half-typed value never overwrites a good one."""
    f = form
    data: dict[str, Any] = {}

    def put(name: str, value: Any) -> None:
        if name not in skip:
            data[name] = value

    put("channel", f.channel.data or None)
    put("ended_at", to_utc(f.ended_at.data, zone))
    put("relationship_to_person", f.relationship_to_person.data or None)
    put("caller_name", f.caller_name.data or None)
    put("caller_phone", f.caller_phone.data or None)
    put("zip", f.zip.data or None)
    put("state", f.state.data or None)
    put("age_range", f.age_range.data or None)
    put("substances", list(f.substances.data or []))
    put("withdrawal_symptoms", [c for c in WITHDRAWAL_SYMPTOMS if c in (f.withdrawal_symptoms.data or [])])
    put("concerns", [c for c in CONCERNS if c in (f.concerns.data or [])])
    for name in RISK_QUESTIONS:
        put(name, _answer(getattr(f, name).data))
    put("unasked_reason", f.unasked_reason.data or None)
    for name in BOOLEAN_FIELDS:
        put(name, bool(getattr(f, name).data))
    put("safe_times", f.safe_times.data or None)
    put("safe_wording", f.safe_wording.data or None)
    put("disposition", f.disposition.data or None)
    put("notes", f.notes.data or None)
    rows = list(referrals)
    # A refused resource or status is reported by the form (a draft skips it); never use it.
    if f.referral_add.data and "referral_add" not in skip and not (f.referral_add.errors or
                                                                   f.referral_add_status.errors):
        new_id = int(f.referral_add.data)
        if new_id not in {r for r, _ in rows}:
            rows.append((new_id, f.referral_add_status.data or "given"))
    data["referrals"] = rows
    tasks = {}
    if f.insurance_help.data:
        tasks["insurance"] = f.insurance_note.data or None
    if f.transport_help.data:
        tasks["transport"] = f.transport_note.data or None
    if not skip & {"insurance_note", "transport_note"}:
        data["tasks"] = tasks
    if any((f.disclosure_to.data, f.disclosure_affiliation.data, f.disclosure_information.data,
            f.disclosure_reason.data)):
        data["disclosure"] = {"disclosed_to": f.disclosure_to.data, "affiliation": f.disclosure_affiliation.data,
                              "disclosed_by": assignees.get(f.disclosure_by.data or ""),
                              "information": f.disclosure_information.data, "reason": f.disclosure_reason.data,
                              "disclosed_at": to_utc(f.disclosure_at.data, zone)}
    if f.followup_due_at.data or f.followup_assignee.data:
        data["followup"] = {"due_at": to_utc(f.followup_due_at.data, zone),
                            "assignee": assignees.get(f.followup_assignee.data or "")}
    return data


def fill_from_call(form: CallForm, call: Any, zone: ZoneInfo) -> None:
    """Show a saved call in the form (GET)."""
    def answer(v: bool | None) -> str:
        return "" if v is None else ("yes" if v else "no")

    form.channel.data = call.channel.value if call.channel else ""
    form.ended_at.data = call.ended_at.astimezone(zone).replace(tzinfo=None) if call.ended_at else None
    form.relationship_to_person.data = call.relationship_to_person.value if call.relationship_to_person else ""
    form.caller_name.data = call.caller_name or ""
    form.caller_phone.data = call.caller_phone or ""
    form.zip.data = call.zip or ""
    form.state.data = call.state or ""
    form.age_range.data = call.age_range.value if call.age_range else ""
    form.substances.data = [s.substance.value for s in call.substances]
    form.withdrawal_symptoms.data = [c for c in call.withdrawal_symptoms.split(",") if c]
    form.concerns.data = [c for c in call.concerns.split(",") if c]
    for name in RISK_QUESTIONS:
        getattr(form, name).data = answer(getattr(call, name))
    form.unasked_reason.data = call.unasked_reason.value if call.unasked_reason else ""
    for name in BOOLEAN_FIELDS:
        getattr(form, name).data = bool(getattr(call, name))
    form.safe_times.data = call.safe_times or ""
    form.safe_wording.data = call.safe_wording or ""
    form.disposition.data = call.disposition.value if call.disposition else ""
    form.notes.data = call.notes or ""
    tasks = {t.kind.value: t for t in call.tasks if t.status.value == "open"}
    form.insurance_help.data = "insurance" in tasks
    form.insurance_note.data = (tasks["insurance"].note or "") if "insurance" in tasks else ""
    form.transport_help.data = "transport" in tasks
    form.transport_note.data = (tasks["transport"].note or "") if "transport" in tasks else ""


class StartCallForm(FlaskForm):
    """Start a data call on a channel."""

    channel = SelectField(_l("Channel"), choices=as_choices((c.value, CHANNEL_LABELS[c]) for c in Channel),
                          validators=[DataRequired()])


class NonDataCallForm(FlaskForm):
    """The one-press buttons: the pressed button's value is the call type."""

    call_type = StringField(validators=[DataRequired(), Length(max=20)])
    channel = SelectField(_l("Channel"), choices=as_choices((c.value, CHANNEL_LABELS[c]) for c in Channel),
                          validators=[DataRequired()])
