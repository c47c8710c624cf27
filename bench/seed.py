"""Fast seeding for the benchmark (``make bench``): N calls and N/5 records requests spread over
three years, into a database already upgraded by ``flask db upgrade``.

    INTAKE_CONFIG=production DATABASE_URL=... DATA_KEYS=... AUDIT_KEYS=... .venv/bin/python bench/seed.py \\
        --calls 1000000 --requests 200000 --out seed.json

Rows go in through SQLAlchemy Core (``executemany`` in batches of 10,000 on SQLite, PostgreSQL's
COPY through psycopg), never through the ORM, so a million calls take seconds to a minute or two.
Coded columns are varied the way a helpline's would be (mostly data calls, a few high-risk ones,
one or two substances, some referrals and follow-ups); encrypted call columns are left NULL
(they are all nullable). The NOT NULL encrypted columns of a records request (patient name, date
of birth, attestation name) are sealed per row with the app's keyring: ``EncryptedText`` binds
each value to its row's uid, so a ciphertext cannot be reused across rows.

The few accounts the benchmark signs in with (operators, an admin, a requester) are made through
``create_user`` with an authenticator enrolled; the other requesters share one password hash.
What the driver needs (credentials, TOTP secrets, a deep list cursor, a request reference) is
written as JSON to ``--out`` (a file in the benchmark's temporary folder, mode 0600).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BATCH = 10_000
YEARS = 3
TOTP_STAFF = ("operator1", "operator2", "operator3", "admin1")

# (value, weight) tables: what a year of a benzodiazepine-focused helpline looks like, roughly.
CALL_TYPES = (("data", 75), ("hang_up", 10), ("wrong_number", 5), ("prank", 3), ("silent", 5), ("test", 2))
CHANNELS = (("phone", 85), ("text", 8), ("chat", 5), ("email", 2))
RELATIONSHIPS = (("self", 60), ("family", 25), ("friend", 8), ("professional", 5), ("other", 2))
AGES = (("unknown", 15), ("under_18", 3), ("18_24", 12), ("25_34", 22), ("35_44", 20), ("45_54", 14),
        ("55_64", 10), ("65_plus", 4))
RISKS = (("none", 60), ("low", 20), ("moderate", 12), ("high", 6), ("imminent", 2))
DISPOSITIONS = (("information_given", 40), ("referred", 30), ("crisis_deescalated", 8),
                ("emergency_dispatched", 2), ("warm_transfer", 5), ("callback_planned", 8),
                ("caller_disconnected", 5), ("other", 2))
SUBSTANCES = (("clonazepam", 35), ("other_benzodiazepine", 25), ("alcohol", 18), ("opioids", 10),
              ("stimulants", 5), ("cannabis", 5), ("other", 2))
RESOURCE_KINDS = ("detox", "residential", "outpatient", "dual_diagnosis", "taper_support", "support_group",
                  "crisis_line", "other")
REQUEST_TYPES = (("copy", 70), ("third_party", 18), ("inspection", 3), ("accounting", 5), ("addendum", 4))
RELATIONSHIPS_TO_PATIENT = (("self", 85), ("personal_representative", 10), ("deceased_representative", 5))
DELIVERIES = (("secure_download", 70), ("mail", 25), ("pickup", 5))
CLOSED = (("fulfilled", 70), ("partially_fulfilled", 5), ("denied", 5), ("no_records", 12), ("withdrawn", 8))
OPEN = (("submitted", 30), ("verifying", 20), ("in_review", 35), ("awaiting_requester", 15))
DENIALS = ("identity_not_verified", "authority_not_shown", "psychotherapy_notes", "endangerment")
PARTIALS = ("some_records_lost", "part_denied", "held_elsewhere")
NO_RECORDS = ("not_in_index", "destroyed", "held_elsewhere")


def pick(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def batches(rows: Iterator[dict[str, Any]], size: int = BATCH) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for row in rows:
        batch.append(row)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


class Loader:
    """Bulk INSERT into one table: COPY on PostgreSQL, executemany on SQLite. Values are bound
    through the table's own column types first, so timestamps and enums are stored exactly as
    the ORM would store them."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self.postgres = engine.dialect.name == "postgresql"
        self.rows: dict[str, int] = {}

    def load(self, table: Any, rows: Iterator[dict[str, Any]]) -> None:
        from sqlalchemy import insert

        total = 0
        for batch in batches(rows):
            with self.engine.begin() as conn:
                if self.postgres:
                    self._copy(conn, table, batch)
                else:
                    conn.execute(insert(table), batch)
            total += len(batch)
        self.rows[table.name] = self.rows.get(table.name, 0) + total

    def _copy(self, conn: Any, table: Any, batch: list[dict[str, Any]]) -> None:
        names = list(batch[0])
        # Each column's own bind processing (UTCDateTime to naive UTC, enums checked), as an INSERT would do.
        procs = [table.c[name].type.bind_processor(conn.dialect) for name in names]
        columns = ", ".join(f'"{name}"' for name in names)
        raw = conn.connection.driver_connection
        # Table and column names come from the models, not from input.
        with raw.cursor() as cur, cur.copy(f'COPY "{table.name}" ({columns}) FROM STDIN') as copy:
            for row in batch:
                copy.write_row([row[name] if proc is None or row[name] is None else proc(row[name])
                                for name, proc in zip(names, procs, strict=True)])

    def fix_sequences(self, tables: list[str]) -> None:
        """PostgreSQL: explicit ids do not advance the id sequences; the app's next INSERT would
        collide without this."""
        if not self.postgres:
            return
        from sqlalchemy import text

        with self.engine.begin() as conn:
            for name in tables:
                # Table names are this module's constants, never input.
                statement = f"SELECT setval(pg_get_serial_sequence('{name}', 'id'), (SELECT COALESCE(MAX(id), 1) FROM \"{name}\"))"  # nosec B608  # noqa: E501
                conn.execute(text(statement))


def moments(rng: random.Random, count: int, now: datetime) -> list[datetime]:
    """``count`` instants over the last three years, oldest first, busier in the evening."""
    span = YEARS * 365 * 86400
    now = now - timedelta(minutes=5)
    start = now - timedelta(seconds=span)
    out = []
    for _ in range(count):
        at = start + timedelta(seconds=rng.random() * span)
        if rng.random() < 0.3:  # a third of calls come in the evening, facility time (UTC-8 or so)
            evening = at.replace(hour=rng.choice((2, 3, 4, 5, 6)))
            at = evening if evening < now else at
        out.append(at)
    out.sort()
    return out


def seed_accounts(app: Any, password: str, requesters: int) -> dict[str, Any]:
    """The signed-in accounts (through ``create_user``), then the other requesters in bulk."""
    import pyotp

    from intake.db_types import utcnow
    from intake.extensions import db
    from intake.security.crypto import aad_for, keyring, new_uid
    from intake.users.models import STAFF_ROLES, Role, User, UserRole
    from intake.users.services import create_user, email_index

    accounts: dict[str, Any] = {"password": password, "staff": {}, "requester": None}
    with app.app_context():
        for name in TOTP_STAFF:
            # The admin holds every staff role (as migration 0010 left the admins of before): it opens
            # the records queue, the request page and the dashboard.
            roles = list(STAFF_ROLES) if name.startswith("admin") else [Role.OPERATOR]
            user = create_user(f"bench-{name}@example.org", roles, password,
                               display_name=f"Bench {name.rstrip('0123456789').title()}")
            user.mfa_secret = pyotp.random_base32()
            user.mfa_enrolled_at = utcnow()
            db.session.flush()
            accounts["staff"][name] = {"email": user.email, "totp": user.mfa_secret, "id": user.id}
        requester = create_user("bench-requester@example.org", Role.REQUESTER, password)
        accounts["requester"] = {"email": requester.email, "id": requester.id}
        password_hash = requester.password_hash
        db.session.commit()
        # Closed, not just committed: on SQLite any later read would begin IMMEDIATE and hold the write lock.
        db.session.close()
        ring = keyring()
        now = utcnow()
        first_id = accounts["requester"]["id"] + 1
        rows = []
        for n in range(requesters - 1):
            uid = new_uid()
            email = f"requester{n}@example.org"
            rows.append({"id": first_id + n, "uid": uid, "email": ring.seal(email, aad_for("users", "email", uid)),
                         "email_index": email_index(email), "password_hash": password_hash,
                         "active": True, "session_version": 1, "created_at": now, "password_changed_at": now,
                         "email_verified_at": now, "failed_logins": 0, "lockouts": 0})
        Loader(db.engine).load(User.__table__, iter(rows))
        Loader(db.engine).load(UserRole.__table__, ({"user_id": r["id"], "role": "requester"} for r in rows))
        accounts["requester_ids"] = [accounts["requester"]["id"]] + [r["id"] for r in rows]
        accounts["operator_ids"] = [v["id"] for k, v in accounts["staff"].items() if k.startswith("operator")]
    return accounts


def call_rows(rng: random.Random, starts: list[datetime], operator_ids: list[int], now: datetime,
              out: dict[str, list[dict[str, Any]]]) -> Iterator[dict[str, Any]]:
    """Calls, oldest first (ids follow time, as they would); substances, referrals and follow-ups
    of each call go to ``out``."""
    from intake.security.crypto import new_uid

    for call_id, started in enumerate(starts, start=1):
        call_type = pick(rng, CALL_TYPES)
        data = call_type == "data"
        risk = pick(rng, RISKS) if data else "none"
        high = risk in ("high", "imminent")
        duration = rng.randint(300, 2400) if data else rng.randint(5, 90)
        ended = started + timedelta(seconds=duration)
        # A few drafts left open by operators; the rest finalized when the call ended.
        draft = data and rng.random() < 0.002
        callback = data and rng.random() < 0.15
        screened = data and risk != "none"
        yield {
            "id": call_id, "uid": new_uid(), "operator_id": rng.choice(operator_ids),
            "status": "draft" if draft else "final", "call_type": call_type, "channel": pick(rng, CHANNELS),
            "started_at": started, "ended_at": ended, "duration_seconds": duration,
            "relationship_to_person": pick(rng, RELATIONSHIPS) if data else None,
            "caller_phone_index": None,
            "zip": f"{rng.randint(90001, 96162):05d}" if data and rng.random() < 0.7 else None,
            "state": "CA" if data else None, "age_range": pick(rng, AGES) if data else None,
            "withdrawal_symptoms": "", "concerns": "", "overdose_risk": data and rng.random() < 0.08,
            "suicidal_thoughts": (risk != "none") if screened or data else None,
            "suicidal_intent": high if screened else None, "suicide_plan": risk == "imminent" if screened else None,
            "access_to_means": high and rng.random() < 0.5 if screened else None,
            "recent_attempt": risk == "imminent" and rng.random() < 0.3 if screened else None,
            "medical_danger": data and rng.random() < 0.05, "risk_level": risk,
            "safety_988": high, "safety_911": risk == "imminent" and rng.random() < 0.4,
            "safety_warm_transfer": high and rng.random() < 0.3, "safety_plan": high,
            "urgent": high and not draft,
            # Supervisors review the urgent queue daily: only the last few days are still waiting.
            "urgent_reviewed_at": ended + timedelta(hours=rng.randint(1, 20))
            if high and not draft and started < now - timedelta(days=3) else None,
            "urgent_reviewed_by_id": None,
            "consent_callback": callback, "consent_voicemail": callback and rng.random() < 0.5,
            "consent_text": callback and rng.random() < 0.3,
            "disposition": None if draft or not data else pick(rng, DISPOSITIONS),
            "created_at": started, "updated_at": ended, "finalized_at": None if draft else ended,
        }
        if data:
            first = pick(rng, SUBSTANCES)
            out["substances"].append({"call_id": call_id, "substance": first})
            if rng.random() < 0.3:
                second = pick(rng, SUBSTANCES)
                if second != first:
                    out["substances"].append({"call_id": call_id, "substance": second})
            if rng.random() < 0.25:
                out["referrals"].append({"call_id": call_id, "resource_id": rng.randint(1, len(RESOURCE_KINDS) * 4),
                                         "status": rng.choice(("given", "contacted", "admitted", "declined")),
                                         "created_at": ended, "updated_at": ended})
            if callback:
                due = started + timedelta(days=rng.randint(1, 3))
                closed = due < now - timedelta(days=2)
                outcome = ("done" if rng.random() < 0.9 else "cancelled") if closed else "open"
                out["followups"].append({"call_id": call_id, "assignee_id": rng.choice(operator_ids), "due_at": due,
                                         "status": outcome,
                                         "attempts": rng.randint(1, 3) if closed else 0, "created_at": ended,
                                         "closed_at": due if closed else None})


def seed_calls(app: Any, loader: Loader, rng: random.Random, count: int, operator_ids: list[int]) -> None:
    from intake.calls.models import Call, CallSubstance, FollowUp, Referral
    from intake.db_types import utcnow
    from intake.resources.models import Resource

    now = utcnow()
    resources = [{"id": n + 1, "name": f"Resource {n + 1}", "kind": RESOURCE_KINDS[n % len(RESOURCE_KINDS)],
                  "payers": "", "active": True, "state": "CA", "created_at": now, "updated_at": now}
                 for n in range(len(RESOURCE_KINDS) * 4)]
    loader.load(Resource.__table__, iter(resources))
    out: dict[str, list[dict[str, Any]]] = {"substances": [], "referrals": [], "followups": []}
    loader.load(Call.__table__, call_rows(rng, moments(rng, count, now), operator_ids, now, out))
    loader.load(CallSubstance.__table__, iter(out["substances"]))
    loader.load(Referral.__table__, ({"id": n, **row} for n, row in enumerate(out["referrals"], start=1)))
    loader.load(FollowUp.__table__, ({"id": n, **row} for n, row in enumerate(out["followups"], start=1)))
    loader.fix_sequences(["resources", "calls", "referrals", "followups"])


def request_rows(rng: random.Random, count: int, owners: list[int], staff: list[int], now: datetime,
                 events: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Records requests over three years: the last six weeks' still open, the rest closed."""
    from intake.records.clocks import local_day
    from intake.records.models import new_reference
    from intake.security.crypto import aad_for, keyring, new_uid

    ring = keyring()
    event_id = 0

    def event(request_id: int, kind: str, at: datetime, from_status: str | None, to_status: str | None,
              actor: int | None) -> None:
        nonlocal event_id
        event_id += 1
        events.append({"id": event_id, "uid": new_uid(), "request_id": request_id, "kind": kind,
                       "visibility": "requester", "actor_id": actor, "from_status": from_status,
                       "to_status": to_status, "created_at": at})

    for request_id, received in enumerate(moments(rng, count, now), start=1):
        uid = new_uid()
        is_open = received > now - timedelta(days=40) and rng.random() < 0.8
        status = pick(rng, OPEN) if is_open else pick(rng, CLOSED)
        closed_at = None if is_open else min(received + timedelta(days=rng.randint(2, 30)), now)
        owner = owners[request_id % len(owners)]
        # Half the open requests are claimed; the default queue tab shows the rest.
        assignee = rng.choice(staff) if (not is_open or rng.random() < 0.5) else None
        dob = f"{rng.randint(1940, 2004)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        yield {
            "id": request_id, "uid": uid, "reference": new_reference(),
            "human_ref": f"RR-{received.year}-B{request_id}", "owner_id": owner, "version": 1,
            "request_type": pick(rng, REQUEST_TYPES), "relationship_to_patient": pick(rng, RELATIONSHIPS_TO_PATIENT),
            "patient_name": ring.seal(f"Patient {request_id}", aad_for("records_requests", "patient_name", uid)),
            "patient_dob": ring.seal(dob, aad_for("records_requests", "patient_dob", uid)),
            "scope": "everything", "scope_kinds": "", "record_format": "electronic",
            "delivery": pick(rng, DELIVERIES),
            "attestation_name": ring.seal(f"Patient {request_id}",
                                          aad_for("records_requests", "attestation_name", uid)),
            "attested_at": received, "status": status, "is_open": is_open, "assignee_id": assignee,
            "decision_reason": rng.choice(DENIALS) if status == "denied"
            else rng.choice(PARTIALS) if status == "partially_fulfilled" else None,
            "decided_by_id": assignee if status in ("denied", "partially_fulfilled") else None,
            "no_records_reason": rng.choice(NO_RECORDS) if status == "no_records" else None,
            "received_at": received, "clock_policy": "california",
            "due_on": local_day(received, "America/Los_Angeles") + timedelta(days=15),
            "extended_days": 0, "paused_days": 0, "created_at": received, "updated_at": closed_at or received,
            "closed_at": closed_at,
        }
        event(request_id, "submitted", received, None, "submitted", owner)
        if not is_open:
            event(request_id, "status", received + timedelta(days=1), "submitted", "in_review", assignee)
            event(request_id, "status", closed_at, "in_review", status, assignee)
        elif status != "submitted":
            event(request_id, "status", received + timedelta(hours=4), "submitted", status, assignee)


def seed_requests(app: Any, loader: Loader, rng: random.Random, count: int, owners: list[int],
                  staff: list[int]) -> dict[str, Any]:
    """Requests and their timelines; returns a closed request of the first owner (the bench requester)."""
    from sqlalchemy import select

    from intake.db_types import utcnow
    from intake.extensions import db
    from intake.records.models import RecordsRequest, RequestEvent

    events: list[dict[str, Any]] = []
    loader.load(RecordsRequest.__table__, request_rows(rng, count, owners, staff, utcnow(), events))
    loader.load(RequestEvent.__table__, iter(events))
    loader.fix_sequences(["records_requests", "request_events"])
    r = RecordsRequest
    # The bench requester's request nearest the middle of the table.
    row = db.session.execute(select(r.reference, r.id).where(r.owner_id == owners[0], r.status == "fulfilled")
                             .order_by(r.id).offset(count // (2 * len(owners))).limit(1)).first()
    if row is None:
        row = db.session.execute(select(r.reference, r.id).where(r.owner_id == owners[0])
                                 .order_by(r.id).limit(1)).one()
    db.session.close()
    return {"reference": row.reference, "id": row.id}


def deep_cursor(depth_fraction: float) -> dict[str, Any]:
    """The call list's ``?before=`` cursor about ``depth_fraction`` of the way down (newest first).
    An OFFSET is fine here: it runs once, in the seeder, never in a request."""
    from sqlalchemy import func, select

    from intake.calls.models import Call
    from intake.extensions import db
    from intake.pagination import MomentCursor

    total = db.session.execute(select(func.count()).select_from(Call)).scalar_one()
    depth = int(total * depth_fraction)
    row = db.session.execute(select(Call.started_at, Call.id).order_by(Call.started_at.desc(), Call.id.desc())
                             .offset(depth).limit(1)).one()
    db.session.close()
    return {"before": MomentCursor(row.started_at, row.id).encode(), "depth": depth}


def analyze(engine: Any) -> None:
    """The state a database reaches by itself after a bulk load. SQLite never gathers planner
    statistics (without them it plans the call list as a sort of every finalized call): ANALYZE.
    On PostgreSQL, autovacuum would both vacuum the new rows and analyze them; a server may run with
    it off (this machine's does), and then every index-only scan also read the table's rows, as no
    page was marked all-visible: VACUUM (ANALYZE), outside a transaction as VACUUM must be."""
    from sqlalchemy import text

    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM (ANALYZE)"))
        return
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Seed a benchmark database (see the module docstring).")
    parser.add_argument("--calls", type=int, required=True)
    parser.add_argument("--requests", type=int, required=True)
    parser.add_argument("--requesters", type=int, default=None, help="default: one per 100 requests, at least 10")
    parser.add_argument("--seed", type=int, default=20181110)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from intake import create_app
    from intake.extensions import db

    # Picks coded values for fake rows; nothing secret.
    rng = random.Random(args.seed)  # nosec B311
    app = create_app()
    timings: dict[str, float] = {}
    started = time.monotonic()
    password = secrets.token_urlsafe(24)
    requesters = args.requesters or max(10, args.requests // 100)
    accounts = seed_accounts(app, password, requesters)
    with app.app_context():
        loader = Loader(db.engine)
        staff_ids = accounts["operator_ids"] + [accounts["staff"]["admin1"]["id"]]
        mark = time.monotonic()
        seed_calls(app, loader, rng, args.calls, accounts["operator_ids"])
        timings["calls"] = time.monotonic() - mark
        mark = time.monotonic()
        target = seed_requests(app, loader, rng, args.requests, accounts["requester_ids"], staff_ids)
        timings["requests"] = time.monotonic() - mark
        mark = time.monotonic()
        analyze(db.engine)
        timings["analyze"] = time.monotonic() - mark
        cursor = deep_cursor(0.9)
        db.session.remove()
        db.engine.dispose()
    timings["total"] = time.monotonic() - started
    rows = sum(loader.rows.values())
    result = {"accounts": {k: v for k, v in accounts.items() if k not in ("requester_ids", "operator_ids")},
              "request": target, "deep": cursor, "rows": loader.rows, "timings": timings}
    fd = os.open(args.out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(result, handle, indent=2, default=str)
    print(f"seeded {rows:,} rows ({', '.join(f'{k} {v:,}' for k, v in loader.rows.items())}) "
          f"in {timings['total']:.1f} s: calls and their parts {timings['calls']:.1f} s "
          f"({(args.calls / timings['calls']) if timings['calls'] else 0:,.0f} calls/s), requests "
          f"{timings['requests']:.1f} s, {rows / timings['total']:,.0f} rows/s overall")
    return 0


if __name__ == "__main__":
    sys.exit(main())
