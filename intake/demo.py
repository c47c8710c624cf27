"""``flask demo seed``: fill a development database with invented, realistic-looking data.

Nothing here describes a real person or program: resource names end in "(demo)", callers are
anonymous or carry a first name from a short list marked "(demo)", and every phone number is in
the 555-01xx range reserved for fiction. Rows are built as plain dicts and written with one
multi-row INSERT per table, 1,000 calls per transaction (10,000 calls take seconds, where ORM
objects took many times longer); encrypted values are sealed exactly as the ORM hooks seal them.
The audit trail gets one ``demo.seeded`` event with the counts, not one per row.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import Counter
from datetime import date, datetime, timedelta
from typing import Any

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import Column, Table, func, insert, inspect, select, text, update
from sqlalchemy.schema import ColumnDefault

from intake.archive.services import add_patient
from intake.audit.services import record
from intake.calls.models import (
    AgeRange,
    AttemptOutcome,
    Call,
    CallStatus,
    CallSubstance,
    CallTask,
    CallType,
    Channel,
    Disposition,
    FollowUp,
    FollowUpAttempt,
    FollowUpStatus,
    Referral,
    ReferralStatus,
    Relationship,
    RiskLevel,
    Substance,
    TaskKind,
    TaskStatus,
)
from intake.calls.phones import PHONE_INDEX_PURPOSE, normalise_phone
from intake.calls.risk import Facts, evaluate, needs_safety_action, overdose_risk
from intake.calls.services import CONCERNS
from intake.db_types import utcnow
from intake.extensions import Model, db
from intake.permissions import Permission, can, roles_with
from intake.records import consents, deadlines, professionals, submission
from intake.records import services as records
from intake.records.models import (
    OPEN_STATUSES,
    Delivery,
    NoRecordsReason,
    ProfessionalRole,
    RecordsRequest,
    RequesterRelationship,
    RequestEvent,
    RequestStatus,
    RequestType,
    Scope,
)
from intake.records.services import MoveInput
from intake.records.workflow import REVIEWABLE_REASONS, DenialReason, PartialReason, ReviewOutcome, VerificationMethod
from intake.resources.models import PAYERS, Resource, ResourceKind
from intake.security.crypto import aad_for, encrypted_columns, keyring, new_uid
from intake.users.models import LicenceType, Role, User
from intake.users.services import create_user, find_by_email, staff_accounts

# Symptoms without a danger sign (a danger sign would raise the level past the one drawn).
MILD_SYMPTOMS = ("anxiety_panic", "insomnia", "tremor")

demo_cli = AppGroup("demo", help="Invented demonstration data for development databases.")

BATCH = 1000
DAYS = 90
MAX_CALLS = 100_000

DEMO_FIRST_NAMES = tuple(f"{n} (demo)" for n in (
    "Avery", "Blake", "Casey", "Devon", "Emery", "Finley", "Harper", "Jordan", "Kai", "Logan",
    "Morgan", "Parker", "Quinn", "Reese", "Rowan", "Sage", "Skyler", "Taylor"))
# California area codes; the 555-01xx exchange makes every number fictional.
AREA_CODES = ("213", "310", "323", "408", "415", "510", "559", "619", "661", "707", "805", "818", "916", "951")
CITIES = (  # (city, ZIP)
    ("Los Angeles", "90012"), ("San Diego", "92101"), ("San Jose", "95113"), ("San Francisco", "94103"),
    ("Fresno", "93721"), ("Sacramento", "95814"), ("Oakland", "94612"), ("Long Beach", "90802"),
    ("Bakersfield", "93301"), ("Santa Barbara", "93101"), ("Ventura", "93001"), ("Thousand Oaks", "91360"),
    ("Malibu", "90265"), ("Riverside", "92501"), ("Santa Rosa", "95404"), ("Eureka", "95501"),
    ("Redding", "96001"), ("Chico", "95928"), ("Santa Cruz", "95060"), ("Monterey", "93940"),
    ("Camarillo", "93010"), ("Oxnard", "93030"), ("Pasadena", "91101"), ("Palm Springs", "92262"),
)
RESOURCE_PREFIXES = (
    "Harbor Light", "Sierra Vista", "Golden Poppy", "Redwood Path", "Coastal Bridge", "Blue Oak", "Sunrise Ridge",
    "Pacific Crest", "Valley Oak", "Cypress Grove", "Manzanita", "Sage Hill", "Tule Creek", "Channel Island",
    "Quiet Cove", "Live Oak", "Mission Bell", "Desert Willow", "Sequoia Springs", "Lighthouse Point",
)
RESOURCE_KINDS = (  # (kind, name suffix, weight)
    (ResourceKind.DETOX, "Detox", 6), (ResourceKind.RESIDENTIAL, "Recovery House", 6),
    (ResourceKind.OUTPATIENT, "Outpatient Clinic", 8), (ResourceKind.DUAL_DIAGNOSIS, "Dual Diagnosis Center", 5),
    (ResourceKind.TAPER_SUPPORT, "Benzodiazepine Taper Clinic", 6),
    (ResourceKind.SUPPORT_GROUP, "Peer Support Group", 5),
    (ResourceKind.CRISIS_LINE, "Warmline", 2), (ResourceKind.OTHER, "Family Resource Center", 2),
)
SAFE_TIMES = ("Weekdays after 6 pm", "Weekday mornings before 9", "Saturdays 10 am to noon", "Any day 1-3 pm",
              "Evenings only", "Tuesdays and Thursdays after 5 pm")
SAFE_WORDINGS = ("Returning your call from the pharmacy.", "Calling back about your library request.",
                 "Calling from the clinic about an appointment.",
                 "Just following up on your question from last week.",
                 "This is the bike shop; your order is in.")
NOTES = ("Demo note: caller asked about a slow clonazepam taper with their prescriber.",
         "Demo note: family member worried about alcohol together with benzodiazepines.",
         "Demo note: discussed withdrawal symptoms and when to go to an emergency room.",
         "Demo note: caller wants residential options that accept Medi-Cal.",
         "Demo note: gave information about peer support meetings nearby.")
NON_DATA_WEIGHTS = {CallType.HANG_UP: 40, CallType.WRONG_NUMBER: 25, CallType.SILENT: 20, CallType.PRANK: 10,
                    CallType.TEST: 5}
SUBSTANCE_ODDS = {Substance.CLONAZEPAM: 0.6, Substance.OTHER_BENZODIAZEPINE: 0.3, Substance.ALCOHOL: 0.25,
                  Substance.OPIOIDS: 0.12, Substance.STIMULANTS: 0.08, Substance.CANNABIS: 0.1, Substance.OTHER: 0.04}
RISK_WEIGHTS = {RiskLevel.NONE: 22, RiskLevel.LOW: 38, RiskLevel.MODERATE: 30, RiskLevel.HIGH: 7, RiskLevel.IMMINENT: 3}


class SeedRefused(click.ClickException):
    """The seeder will not run here (production without --force, no staff to log calls under)."""


class Ids:
    """Primary keys handed out before the rows are written, so children can name their parents
    and every table is written in one multi-row statement per batch (no id read back per row).

    PostgreSQL: blocks taken from the table's own sequence, so later inserts never collide.
    SQLite: counting on from the largest id (run the seeder on a database nobody else is writing).
    """

    BLOCK = 1000

    def __init__(self) -> None:
        self._free: dict[str, list[int]] = {}
        self._last: dict[str, int] = {}  # SQLite: the last id handed out, per table
        self._postgres = db.session.get_bind().dialect.name == "postgresql"

    def take(self, table: Table) -> int:
        free = self._free.setdefault(table.name, [])
        if not free:
            if self._postgres:
                free.extend(reversed(db.session.execute(
                    text("SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :n)"),
                    {"t": table.name, "n": self.BLOCK}).scalars().all()))
            else:
                if table.name not in self._last:
                    self._last[table.name] = db.session.execute(select(func.max(table.c.id))).scalar() or 0
                last = self._last[table.name]
                free.extend(range(last + self.BLOCK, last, -1))
                self._last[table.name] = last + self.BLOCK
        return free.pop()


class Rows:
    """One batch of rows as plain dicts, table by table, written with one INSERT per table.

    Encrypted columns accept only sealed values (plaintext is refused on purpose); the ORM seals
    in its flush hooks, which cost more than the rest of the seeding together, so this seals with
    the same key ring and associated data (table, column, row uid) as those hooks do.
    """

    def __init__(self, ids: Ids) -> None:
        self.ids = ids
        self.tables: dict[Table, list[dict[str, Any]]] = {}
        self._ring = keyring()

    def add(self, model: type[Model], **values: Any) -> dict[str, Any]:
        table: Table = model.__table__
        row = {column.key: _default(column) for column in table.columns}
        row.update(values)
        if "id" in table.c and table.c.id.primary_key:
            row["id"] = self.ids.take(table)
        if "uid" in table.c:
            row["uid"] = new_uid()
        for key, column in encrypted_columns(inspect(model)):
            if row[key] is not None:
                row[key] = self._ring.seal(str(row[key]), aad_for(table.name, column, row["uid"]))
        self.tables.setdefault(table, []).append(row)
        return row

    def write(self) -> None:
        for table in db.metadata.sorted_tables:  # parents before children
            if self.tables.get(table):
                db.session.execute(insert(table), self.tables[table])
        self.tables = {}


def _default(column: Column) -> Any:
    default = column.default
    if not isinstance(default, ColumnDefault):  # none, or a server-side one the database fills in
        return None
    if default.is_scalar:
        return default.arg
    return default.arg(None)  # a Python callable default (timestamps); SQLAlchemy wraps it to take a context


def fictional_phone(rng: random.Random) -> str:
    """A number in the 555-0100..555-0199 range, reserved for fiction."""
    return f"({rng.choice(AREA_CODES)}) 555-01{rng.randrange(100):02d}"


def _weighted(rng: random.Random, weights: dict[Any, int]) -> Any:
    return rng.choices(list(weights), weights=list(weights.values()))[0]


def build_resources(rng: random.Random, rows: Rows, count: int, now: datetime, start: int = 0) -> list[int]:
    """``count`` invented programs spread over California cities and kinds; returns their ids."""
    kinds = [k for k, _suffix, w in RESOURCE_KINDS for _ in range(w)]
    suffixes = {k: s for k, s, _w in RESOURCE_KINDS}
    ids = []
    for i in range(start, start + count):
        kind = kinds[i % len(kinds)]
        prefix = RESOURCE_PREFIXES[i % len(RESOURCE_PREFIXES)]
        round_ = i // len(RESOURCE_PREFIXES)
        name = f"{prefix} {suffixes[kind]}{f' {round_ + 1}' if round_ else ''} (demo)"
        city, zip_code = CITIES[rng.randrange(len(CITIES))]
        slug = "-".join(name.lower().replace("(demo)", "").split())
        payers = sorted(rng.sample(PAYERS, rng.randint(1, 4)), key=PAYERS.index)
        row = rows.add(
            Resource, name=name, kind=kind, phone=fictional_phone(rng), website=f"https://{slug}.example.org",
            address=f"{rng.randint(100, 9999)} Demo Street", city=city, state="CA", zip=zip_code,
            payers=",".join(payers), description="Invented program for demonstrations; not a real service.",
            active=rng.random() > 0.05, created_at=now, updated_at=now,
            last_verified_at=None if rng.random() < 0.1 else now - timedelta(days=rng.randint(1, 400)),
        )
        if row["active"]:
            ids.append(row["id"])
    return ids


def _risk_answers(rng: random.Random, target: RiskLevel, substances: set[Substance]) -> dict[str, bool]:
    """Screen answers that lead to ``target`` (the rules in ``intake.calls.risk`` decide in the end)."""
    od = overdose_risk(substances)
    base = {"suicidal_thoughts": False, "suicidal_intent": False, "suicide_plan": False, "access_to_means": False,
            "recent_attempt": False, "medical_danger": False}
    if target == RiskLevel.MODERATE and not od:
        base["suicidal_thoughts"] = True
    elif target == RiskLevel.HIGH:
        base.update(suicidal_thoughts=True, **rng.choice(({"suicidal_intent": True}, {"suicide_plan": True},
                                                          {"access_to_means": True})))
    elif target == RiskLevel.IMMINENT:
        base.update(rng.choice(({"medical_danger": True},
                                {"suicidal_thoughts": True, "suicidal_intent": True, "suicide_plan": True,
                                 "access_to_means": True})))
    return base


def build_call(rng: random.Random, rows: Rows, now: datetime, operators: list[int], resource_ids: list[int],
               reviewer: int | None, counts: Counter) -> None:
    """One invented call, with its substances, referrals, tasks and follow-up.

    ``operators`` and ``reviewer`` are account ids.
    """
    started = now - timedelta(seconds=rng.randint(60, DAYS * 86400))
    call: dict[str, Any] = {
        "operator_id": rng.choice(operators), "status": CallStatus.FINAL, "started_at": started,
        "created_at": started, "updated_at": started,
        "channel": _weighted(rng, {Channel.PHONE: 85, Channel.TEXT: 8, Channel.CHAT: 6, Channel.EMAIL: 1}),
    }
    counts["calls"] += 1
    if rng.random() < 0.3:
        duration = rng.randint(3, 90)
        kind = _weighted(rng, NON_DATA_WEIGHTS)
        call.update(call_type=kind, duration_seconds=duration, ended_at=started + timedelta(seconds=duration),
                    disposition=Disposition.CALLER_DISCONNECTED if kind == CallType.HANG_UP else None)
        call["finalized_at"] = call["ended_at"]
        rows.add(Call, **call)
        counts["non_data_calls"] += 1
        return

    duration = rng.randint(180, 2700)
    ended = started + timedelta(seconds=duration)
    finalized = ended + timedelta(seconds=rng.randint(10, 600))
    call.update(
        call_type=CallType.DATA, duration_seconds=duration, ended_at=ended, finalized_at=finalized,
        relationship_to_person=_weighted(rng, {Relationship.SELF: 55, Relationship.FAMILY: 28, Relationship.FRIEND: 9,
                                               Relationship.PROFESSIONAL: 5, Relationship.OTHER: 3}),
        age_range=rng.choice(list(AgeRange)),
    )
    if rng.random() < 0.3:  # anonymous unless the caller chose otherwise
        call["caller_name"] = rng.choice(DEMO_FIRST_NAMES)
    if rng.random() < 0.35:
        phone = fictional_phone(rng)
        call["caller_phone"] = phone
        call["caller_phone_index"] = keyring().blind_index(PHONE_INDEX_PURPOSE, normalise_phone(phone))
    if rng.random() < 0.7:
        call["state"] = "CA"
        call["zip"] = CITIES[rng.randrange(len(CITIES))][1]

    substances = {s for s, p in SUBSTANCE_ODDS.items() if rng.random() < p}
    if not substances and rng.random() < 0.8:
        substances = {Substance.CLONAZEPAM}
    symptoms = rng.sample(MILD_SYMPTOMS, rng.randint(0, 3)) if substances & {
        Substance.CLONAZEPAM, Substance.OTHER_BENZODIAZEPINE, Substance.ALCOHOL} else []
    call["withdrawal_symptoms"] = ",".join(sorted(symptoms))
    call["concerns"] = ",".join(sorted(rng.sample(CONCERNS[:-1], rng.randint(1, 3))))

    answers = _risk_answers(rng, _weighted(rng, RISK_WEIGHTS), substances)
    call.update(answers)
    assessment = evaluate(Facts.build(answers, symptoms, substances))
    call["overdose_risk"] = assessment.overdose_risk
    level = call["risk_level"] = assessment.level
    counts[f"risk_{level.value}"] += 1

    if needs_safety_action(level):
        call["urgent"] = True
        if level == RiskLevel.IMMINENT:
            call["safety_911"] = rng.random() < 0.7
            call["safety_warm_transfer"] = not call["safety_911"] or rng.random() < 0.3
            call["disposition"] = Disposition.EMERGENCY_DISPATCHED if call["safety_911"] else Disposition.WARM_TRANSFER
        else:
            call["safety_988"] = rng.random() < 0.6
            call["safety_plan"] = not call["safety_988"] or rng.random() < 0.5
            call["disposition"] = rng.choice((Disposition.CRISIS_DEESCALATED, Disposition.WARM_TRANSFER,
                                              Disposition.REFERRED))
        if reviewer is not None and started < now - timedelta(days=3):
            call["urgent_reviewed_at"] = finalized + timedelta(hours=rng.randint(1, 20))
            call["urgent_reviewed_by_id"] = reviewer
    else:
        call["disposition"] = _weighted(rng, {Disposition.INFORMATION_GIVEN: 35, Disposition.REFERRED: 40,
                                              Disposition.CALLBACK_PLANNED: 10, Disposition.CALLER_DISCONNECTED: 5,
                                              Disposition.CRISIS_DEESCALATED: 5, Disposition.OTHER: 5})
    if rng.random() < 0.2:
        call["notes"] = rng.choice(NOTES)

    consent = rng.random() < (0.6 if call["disposition"] == Disposition.CALLBACK_PLANNED else 0.25)
    if consent:
        call.update(consent_callback=True, consent_voicemail=rng.random() < 0.5, consent_text=rng.random() < 0.4,
                    safe_times=rng.choice(SAFE_TIMES), safe_wording=rng.choice(SAFE_WORDINGS))
        counts["calls_with_consent"] += 1
    call_id = rows.add(Call, **call)["id"]

    for substance in sorted(substances):
        rows.add(CallSubstance, call_id=call_id, substance=substance)
    if resource_ids and (call["disposition"] == Disposition.REFERRED or rng.random() < 0.15):
        age_days = (now - started).days
        for resource_id in rng.sample(resource_ids, min(len(resource_ids), rng.randint(1, 2))):
            status = ReferralStatus.GIVEN
            if age_days > 7:
                status = _weighted(rng, {ReferralStatus.GIVEN: 50, ReferralStatus.CONTACTED: 25,
                                         ReferralStatus.ADMITTED: 15, ReferralStatus.DECLINED: 10})
            rows.add(Referral, call_id=call_id, resource_id=resource_id, status=status, created_at=finalized,
                     updated_at=finalized)
            counts["referrals"] += 1
    if rng.random() < 0.05:
        done = rng.random() < 0.6
        rows.add(CallTask, call_id=call_id, kind=rng.choice(list(TaskKind)),
                 status=TaskStatus.DONE if done else TaskStatus.OPEN, created_at=finalized,
                 done_at=finalized + timedelta(days=1) if done else None)
        counts["tasks"] += 1
    if consent and rng.random() < 0.8:
        _add_followup(rng, rows, call, call_id, now, operators, counts)


def _add_followup(rng: random.Random, rows: Rows, call: dict[str, Any], call_id: int, now: datetime,
                  operators: list[int], counts: Counter) -> None:
    """A follow-up for a consenting caller: older ones closed after some attempts, recent ones open.
    Attempt outcomes use only the channels the caller allowed."""
    due = call["finalized_at"] + timedelta(hours=rng.randint(4, 72))
    assignee = rng.choice(operators) if rng.random() < 0.6 else None
    allowed = [AttemptOutcome.REACHED, AttemptOutcome.NO_ANSWER, AttemptOutcome.NOT_SAFE_TO_TALK,
               AttemptOutcome.DECLINED, AttemptOutcome.WRONG_NUMBER]
    if call["consent_voicemail"]:
        allowed.append(AttemptOutcome.LEFT_VOICEMAIL)
    if call["consent_text"]:
        allowed.append(AttemptOutcome.TEXT_SENT)
    closed = due < now - timedelta(days=5) or rng.random() < 0.15
    tries = rng.randint(1, 3) if closed else (rng.randint(0, 2) if due < now else 0)
    outcomes = [rng.choice(allowed) for _ in range(tries)]
    if closed and outcomes and rng.random() < 0.7:
        outcomes[-1] = AttemptOutcome.REACHED
    status = FollowUpStatus.OPEN
    if closed:
        status = FollowUpStatus.DONE if rng.random() < 0.85 else FollowUpStatus.CANCELLED
    followup_id = rows.add(
        FollowUp, call_id=call_id, assignee_id=assignee, due_at=due, status=status, attempts=tries,
        last_outcome=outcomes[-1] if outcomes else None, created_at=call["finalized_at"],
        closed_at=min(due + timedelta(hours=4 * tries + 2), now) if closed else None,
    )["id"]
    for n, outcome in enumerate(outcomes):
        rows.add(FollowUpAttempt, followup_id=followup_id, operator_id=assignee or rng.choice(operators),
                 attempted_at=min(due + timedelta(hours=4 * n, minutes=rng.randint(0, 90)), now), outcome=outcome)
    counts["followups"] += 1
    counts["followup_attempts"] += tries
    counts["followups_closed" if closed else "followups_open"] += 1


# --- Records requests ----------------------------------------------------------------------------
# Made through ``intake.records.services`` (not raw rows): a request's timeline, clock and audit
# trail must be exactly what the real workflow writes. Every state is represented; open requests
# are spread so some are overdue, some due soon and some on track.

S = RequestStatus
_TO_REVIEW = [S.VERIFYING, S.IN_REVIEW]
REQUEST_PATHS: dict[RequestStatus, list[RequestStatus]] = {
    S.SUBMITTED: [], S.VERIFYING: [S.VERIFYING], S.IN_REVIEW: _TO_REVIEW,
    S.AWAITING_REQUESTER: [S.VERIFYING, S.AWAITING_REQUESTER],
    S.FULFILLED: _TO_REVIEW + [S.FULFILLED], S.PARTIALLY_FULFILLED: _TO_REVIEW + [S.PARTIALLY_FULFILLED],
    S.DENIED: _TO_REVIEW + [S.DENIED], S.NO_RECORDS: [S.VERIFYING, S.NO_RECORDS], S.WITHDRAWN: [S.WITHDRAWN],
    S.REVIEW_REQUESTED: _TO_REVIEW + [S.DENIED, S.REVIEW_REQUESTED],
    S.REVIEW_DECIDED: _TO_REVIEW + [S.DENIED, S.REVIEW_REQUESTED, S.REVIEW_DECIDED],
}
REQUESTER_MOVES = frozenset({S.WITHDRAWN, S.REVIEW_REQUESTED})
REQUEST_TYPE_WEIGHTS = {RequestType.COPY: 45, RequestType.THIRD_PARTY: 20, RequestType.INSPECTION: 10,
                        RequestType.ACCOUNTING: 15, RequestType.ADDENDUM: 10}
STAFF_MESSAGES = ("Demo message: please upload a photo ID so we can confirm who you are.",
                  "Demo message: which years of your stay do you need?",
                  "Demo message: we are retrieving the records from off-site storage.")
STAFF_NOTES = ("Demo note: boxes 12-14 in the off-site archive.", "Demo note: matched to archive index card.",
               "Demo note: check the second admission too.")
REQUESTER_REPLIES = ("Demo reply: I have uploaded my ID.", "Demo reply: 2016 and 2017, thank you.")
DEMO_REQUESTERS = 10


def _demo_requesters(count: int) -> tuple[list[User], int]:
    """``count`` verified demo requester accounts (existing ones reused); returns them and how many are new."""
    users, created = [], 0
    for n in range(1, count + 1):
        email = f"demo-requester-{n}@example.org"
        user = find_by_email(email)
        if user is None:
            user = create_user(email, Role.REQUESTER, secrets.token_urlsafe(15), verified=True)
            created += 1
        users.append(user)
    return users, created


def _submission(rng: random.Random, n: int, request_type: RequestType) -> dict[str, Any]:
    """A valid, invented submission for "Demo Patient n"."""
    closed = date.fromisoformat(current_app.config["FACILITY_CLOSED_ON"])
    dob = date(rng.randint(1950, 1998), rng.randint(1, 12), rng.randint(1, 28))
    stay_from = closed - timedelta(days=rng.randint(60, 3000))
    patient = f"Demo Patient {n}"
    self_ = rng.random() < 0.8
    data: dict[str, Any] = {
        "patient_name": patient, "patient_dob": dob, "stay_from": stay_from,
        "stay_to": min(closed, stay_from + timedelta(days=rng.randint(14, 90))),
        "relationship_to_patient": (RequesterRelationship.SELF if self_ else
                                    rng.choice([RequesterRelationship.PERSONAL_REPRESENTATIVE,
                                                RequesterRelationship.DECEASED_REPRESENTATIVE])).value,
        "requester_name": "" if self_ else f"Demo Representative {n}",
        "request_type": request_type.value, "scope": Scope.EVERYTHING.value, "record_format": "electronic",
        "delivery": Delivery.SECURE_DOWNLOAD.value, "attest": True,
        "attestation_name": patient if self_ else f"Demo Representative {n}",
    }
    if request_type == RequestType.INSPECTION:
        data["delivery"] = None
    elif rng.random() < 0.25:
        city, zip_code = CITIES[rng.randrange(len(CITIES))]
        data.update(delivery=Delivery.MAIL.value, record_format="paper",
                    mail_address=f"{rng.randint(100, 9999)} Demo Street, {city}, CA {zip_code}")
    if request_type == RequestType.THIRD_PARTY:
        city, zip_code = CITIES[rng.randrange(len(CITIES))]
        data.update(recipient_name=f"{rng.choice(RESOURCE_PREFIXES)} Clinic (demo)",
                    recipient_address=f"{rng.randint(100, 9999)} Demo Avenue, {city}, CA {zip_code}",
                    purpose="Continuing care (demo)")
    if request_type == RequestType.ADDENDUM:
        data["addendum_text"] = "Demo statement: the discharge summary lists the wrong discharge date."
    return data


def _received_at(rng: random.Random, target: RequestStatus, request_type: RequestType, i: int,
                 now: datetime) -> datetime:
    """When the request came in: closed ones weeks ago; open ones so that, in turn, the clock is
    overdue, due soon or on track (working-day rules approximated by calendar days)."""
    if target not in OPEN_STATUSES or target == S.REVIEW_REQUESTED:
        days_ago = rng.randint(20, 120)
    else:
        period = {RequestType.COPY: 15, RequestType.INSPECTION: 7, RequestType.THIRD_PARTY: 30}.get(request_type, 60)
        left = (-rng.randint(1, 6), rng.randint(0, 3), rng.randint(4, period - 1))[i % 3]
        days_ago = max(0, period - left)
    return now - timedelta(days=days_ago, hours=rng.randint(0, 8), minutes=rng.randint(0, 59))


def _move_input(rng: random.Random, target: RequestStatus, final: RequestStatus,
                archived_patient_id: int | None = None) -> MoveInput:
    if target == S.IN_REVIEW:
        return MoveInput(verification_method=rng.choice(list(VerificationMethod)).value,
                         archived_patient_id=archived_patient_id)
    if target == S.AWAITING_REQUESTER:
        return MoveInput(message=rng.choice(STAFF_MESSAGES))
    if target == S.NO_RECORDS:
        reason = rng.choice(list(NoRecordsReason))
        return MoveInput(no_records_reason=reason.value,
                         custodian="County Records Center (demo)" if reason == NoRecordsReason.HELD_ELSEWHERE else None)
    if target == S.DENIED:
        reasons = sorted(REVIEWABLE_REASONS) if final in (S.REVIEW_REQUESTED, S.REVIEW_DECIDED) else list(DenialReason)
        return MoveInput(reason=rng.choice(reasons).value)
    if target == S.PARTIALLY_FULFILLED:
        return MoveInput(reason=rng.choice(list(PartialReason)).value)
    if target == S.REVIEW_DECIDED:
        return MoveInput(review_outcome=rng.choice(list(ReviewOutcome)).value,
                         message="Demo message: a different licensed professional reviewed the decision.")
    return MoveInput()


# The smallest PDF a demo "written decision" needs (the upload checks the first bytes).
DEMO_PDF = b"%PDF-1.4\n% demo: an outside professional's written decision\n%%EOF\n"


def _outside_decision(req: RecordsRequest, clerk: User, role: ProfessionalRole, decision: str) -> None:
    """The clerk records an invented outside licensed professional's written decision."""
    reviewer = role == ProfessionalRole.REVIEW  # never the professional who denied (164.524(d)(4))
    professionals.record_decision(req, clerk, role, {
        "name": "Demo Outside Reviewer" if reviewer else "Demo Outside Clinician",
        "licence_type": LicenceType.LCSW.value, "licence_number": "LCS 88888" if reviewer else "LCS 99999",
        "licence_state": "CA", "decided_on": deadlines.today(), "decision": decision},
        (f"{role.value}-decision.pdf", DEMO_PDF))


def _backdate_events(req: RecordsRequest, after_id: int, when: datetime) -> int:
    """The services stamp events with the real clock; put the demo's at the invented time."""
    db.session.flush()
    db.session.execute(update(RequestEvent).where(RequestEvent.request_id == req.id, RequestEvent.id > after_id)
                       .values(created_at=when))
    return db.session.execute(select(func.max(RequestEvent.id))).scalar() or 0


def build_request(rng: random.Random, n: int, target: RequestStatus, i: int, now: datetime, owner: User,
                  admins: list[User], counts: Counter) -> None:
    """One invented request, moved through the workflow to ``target`` at invented times."""
    request_type = _weighted(rng, REQUEST_TYPE_WEIGHTS)
    received = _received_at(rng, target, request_type, i, now)
    data = _submission(rng, n, request_type)
    req = submission.submit_request(owner, data, now=received)
    req.created_at = received
    if request_type == RequestType.THIRD_PARTY and target != S.SUBMITTED:
        # The requester signs the 42 CFR §2.31 consent online, so a release (and its disclosure) can happen.
        signed = deadlines.facility_day(received)
        consents.sign(req, owner, {**consents.prefill(req), "revocation_acknowledged": True,
                                   "expires_on": signed + timedelta(days=365), "signed_name": data["attestation_name"],
                                   "signer_authority": None if data["relationship_to_patient"] == "self"
                                   else "Demo: durable power of attorney"}, now=received)
        counts["consents"] += 1
    archived_patient_id = None
    if S.IN_REVIEW in REQUEST_PATHS[target]:  # the archive holds this patient: verification links the record
        archived_patient_id = add_patient({
            "mrn": f"DEMO-{n:06d}", "last_name": "Patient", "first_name": f"Demo {n}", "dob": data["patient_dob"],
            "admitted_on": data["stay_from"], "discharged_on": data["stay_to"],
            "record_location": f"Demo box {rng.randint(1, 400)}", "custodian": "Records office (demo)"}).id
        counts["archive_patients"] += 1
    last = _backdate_events(req, 0, received)
    staff = rng.choice(admins)
    path = REQUEST_PATHS[target]
    span = (now - received) / (len(path) + 2)
    when = received
    for step in path:
        when += span
        move = _move_input(rng, step, target, archived_patient_id)
        actor = owner if step in REQUESTER_MOVES else staff
        if step in (S.FULFILLED, S.PARTIALLY_FULFILLED):
            # Demo staff read the consent beside the request and confirm they match (42 CFR 2.31).
            records.record_delivery(req, staff, rng.choice(["mail", "pickup"]), now=when, consent_confirmed=True)
        if step == S.DENIED and move.reason in REVIEWABLE_REASONS:
            # A clinical denial is a licensed professional's (45 CFR 164.524(a)(3)): a licensed clerk's, or an
            # outside professional's decision the clerk records.
            actor = next((a for a in admins if professionals.clinical_licence_of(a)), None) or staff
            if not professionals.clinical_licence_of(actor):
                _outside_decision(req, actor, ProfessionalRole.DENIAL, move.reason or "")
        if step == S.REVIEW_DECIDED:
            # Reviewed by a licensed professional who did not deny (164.524(d)(4)): a colleague, or an outside one.
            actor = next((a for a in admins if professionals.clinical_licence_of(a) and a.id != req.decided_by_id),
                         None) or staff
            if not professionals.clinical_licence_of(actor) or actor.id == req.decided_by_id:
                _outside_decision(req, actor, ProfessionalRole.REVIEW, move.review_outcome or "")
        records.transition(req, step, actor, move, now=when)
        last = _backdate_events(req, last, when)
        if step == S.VERIFYING and rng.random() < 0.5:
            records.claim(req, staff)
        if step == S.VERIFYING and rng.random() < 0.3:
            records.add_note(req, staff, rng.choice(STAFF_NOTES))
        last = _backdate_events(req, last, when)
    when += span / 2
    if target == S.AWAITING_REQUESTER and rng.random() < 0.3:
        records.send_message(req, staff, rng.choice(STAFF_MESSAGES))
    if target in (S.IN_REVIEW, S.VERIFYING) and rng.random() < 0.4:
        records.reply(req, owner, rng.choice(REQUESTER_REPLIES))
    if (req.is_open and req.status != S.REVIEW_REQUESTED and request_type in (RequestType.ACCOUNTING,
                                                                           RequestType.ADDENDUM)
            and deadlines.facility_day(when) <= req.due_on and rng.random() < 0.5):
        records.extend(req, staff, "Demo reason: the records are in off-site storage.",
                       on=deadlines.facility_day(when))
        counts["requests_extended"] += 1
    _backdate_events(req, last, when)
    counts["requests"] += 1
    counts[f"requests_{req.status.value}"] += 1
    urgency = deadlines.urgency(req, on=deadlines.facility_day(now))
    if urgency is not None:
        counts[f"requests_{urgency.value}"] += 1


def seed_requests(rng: random.Random, count: int, now: datetime, counts: Counter) -> list[str]:
    """``count`` requests in every state (a few each), from demo requesters; returns notes to print."""
    # Who works the records queue (records clerks): the requests move through their hands.
    admins = staff_accounts(roles=roles_with([Permission.REQUESTS_QUEUE]), limit=10)
    if not admins:
        return ["No active records clerk: no records requests seeded (run with --with-staff)."]
    notes = []
    targets = list(RequestStatus)
    if not any(professionals.clinical_licence_of(a) for a in admins):
        notes.append("No records clerk holds a licence: clinical denials and their reviews are recorded as an "
                     "outside licensed professional's decisions.")
    owners, created = _demo_requesters(min(DEMO_REQUESTERS, max(1, count // 4)))
    counts["requester_accounts"] += created
    db.session.commit()
    first = db.session.execute(select(func.count()).select_from(RecordsRequest)).scalar_one() + 1
    for i in range(count):
        build_request(rng, first + i, targets[i % len(targets)], i // len(targets), now, owners[i % len(owners)],
                      admins, counts)
        db.session.commit()
    notes.append(f"Demo requesters: demo-requester-1..{len(owners)}@example.org (no password is printed; "
                 "use 'Forgot your password?' and read the link in the outbox).")
    return notes


# One account per staff role, and one holding two roles with a licence (the second person a
# denial's review needs): (e-mail, name, roles, licence or None).
DEMO_STAFF = (
    ("demo-operator@example.org", "Demo Operator", (Role.OPERATOR,), None),
    ("demo-supervisor@example.org", "Demo Supervisor", (Role.SUPERVISOR,), None),
    ("demo-records-clerk@example.org", "Demo Records Clerk", (Role.RECORDS_CLERK,), None),
    ("demo-privacy-officer@example.org", "Demo Privacy Officer", (Role.PRIVACY_OFFICER,), None),
    ("demo-admin@example.org", "Demo Administrator", (Role.ADMIN,), None),
    ("demo-clinician@example.org", "Demo Clinician", (Role.SUPERVISOR, Role.RECORDS_CLERK),
     (LicenceType.PSYD, "PSY 00000", "CA")),
)


def _create_staff() -> list[tuple[str, str, str]]:
    """The demo staff accounts (second factor not set up); returns (roles, e-mail, password)."""
    created = []
    for email, name, roles, licence in DEMO_STAFF:
        if find_by_email(email) is not None:
            click.echo(f"{email} exists already; left as it is.")
            continue
        password = secrets.token_urlsafe(15)
        user = create_user(email, roles, password, display_name=name)
        if licence is not None:
            user.licence_type, user.licence_number, user.licence_state = licence
        created.append((", ".join(role.value for role in roles), email, password))
    return created


@demo_cli.command("seed")
@click.option("--calls", "n_calls", default=200, show_default=True, type=click.IntRange(0, MAX_CALLS),
              help="How many calls to invent, spread over the last 90 days.")
@click.option("--resources", "n_resources", default=40, show_default=True, type=click.IntRange(0, 1000),
              help="How many invented programs to add to the resource directory.")
@click.option("--requests", "n_requests", default=40, show_default=True, type=click.IntRange(0, 1000),
              help="How many invented records requests to add, in every state (needs an admin account).")
@click.option("--with-staff", is_flag=True,
              help="Also create one demo account per staff role, and one with two roles and a licence "
                   "(passwords printed once).")
@click.option("--seed", "rng_seed", type=int, default=None, help="Random seed, for the same data every time.")
@click.option("--force", is_flag=True, help="Run even where ENV_NAME is production (never do this with real data).")
def seed_command(n_calls: int, n_resources: int, n_requests: int, with_staff: bool, rng_seed: int | None,
                 force: bool) -> None:
    """Fill this database with invented resources, calls, follow-ups and records requests."""
    if current_app.config.get("ENV_NAME") == "production" and not force:
        raise SeedRefused("Refusing to seed: this is a production configuration (ENV_NAME=production), and invented "
                          "calls would mix with real health records. Use a development database, or pass --force "
                          "if this really is a throwaway production-like copy.")
    started = time.perf_counter()
    # Invented demo data: a seedable, non-cryptographic generator is the right tool here.
    rng = random.Random(rng_seed)  # nosec B311
    now = utcnow()
    counts: Counter = Counter()

    staff = _create_staff() if with_staff else []
    # Calls are logged by those who log calls (operators, supervisors); urgent ones are marked
    # reviewed by someone who holds the urgent queue.
    operators = staff_accounts(roles=roles_with([Permission.CALLS_LOG]), limit=50)
    if n_calls and not operators:
        db.session.rollback()
        raise SeedRefused("No active staff account to log the demo calls under. Run again with --with-staff, "
                          "or create one with `flask --app intake users create`.")
    reviewer = next((user.id for user in operators if can(user, Permission.CALLS_URGENT_QUEUE)), None)
    operator_ids = sorted(user.id for user in operators)

    rows = Rows(Ids())
    existing = db.session.execute(select(func.count()).select_from(Resource)).scalar_one()
    resource_ids = build_resources(rng, rows, n_resources, now, start=existing)
    rows.write()
    counts["resources"] = n_resources
    if not resource_ids:
        resource_ids = list(db.session.execute(
            select(Resource.id).where(Resource.active.is_(True)).order_by(Resource.id).limit(500)).scalars())
    db.session.commit()

    remaining = n_calls
    while remaining:
        size = min(BATCH, remaining)
        for _ in range(size):
            build_call(rng, rows, now, operator_ids, resource_ids, reviewer, counts)
        rows.write()
        db.session.commit()
        remaining -= size

    request_notes = seed_requests(rng, n_requests, now, counts) if n_requests else []

    record("demo.seeded", details={**dict(sorted(counts.items())), "staff_accounts": len(staff)})
    db.session.commit()
    elapsed = time.perf_counter() - started

    click.echo(f"Created {counts['resources']} resources and {counts['calls']} calls "
               f"({counts['non_data_calls']} non-data, {counts['calls_with_consent']} with consent to contact, "
               f"{counts['referrals']} referrals, {counts['tasks']} tasks).")
    click.echo(f"Follow-ups: {counts['followups']} ({counts['followups_open']} open, "
               f"{counts['followups_closed']} closed, {counts['followup_attempts']} attempts).")
    if counts["requests"]:
        click.echo(f"Records requests: {counts['requests']} ({counts['requests_overdue']} overdue, "
                   f"{counts['requests_due_soon']} due soon, {counts['requests_extended']} extended; "
                   + ", ".join(f"{status.value} {counts[f'requests_{status.value}']}" for status in RequestStatus)
                   + ").")
        click.echo(f"Archive index: {counts['archive_patients']} invented patients, one for each request that "
                   "was matched.")
    for note in request_notes:
        click.echo(note)
    click.echo("Risk: " + ", ".join(f"{level.value} {counts[f'risk_{level.value}']}" for level in RiskLevel) + ".")
    if staff:
        click.echo("Sign in at /login as any of these (each sets up an authenticator app at the first sign-in):")
    for roles, email, password in staff:
        click.echo(f"Demo {roles}: {email}  password: {password}")
    click.echo(f"Done in {elapsed:.1f} s.")
