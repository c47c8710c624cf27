"""Retention: policies (defaults, limits, legal holds), the purge of each kind (what expired goes,
what did not stays), dry runs, an interrupted purge finished by the next run, the audit trail's
prefix purge behind a checkpoint (and the database still refusing any other deletion), purged
calls and documents shown cleanly, the policy form's bad input, the CLI, and the archive list."""

from __future__ import annotations

import base64
import re
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DatabaseError

from intake.admin import retention
from intake.admin.models import DataKind, RetentionPolicy
from intake.admin.retention import PolicyInvalid, PurgeInterrupted, plan, policies, purge, update_policy
from intake.archive.models import ArchivedPatient
from intake.audit.models import AuditCheckpoint, AuditEvent
from intake.audit.services import record, verify_chain
from intake.calls.models import (
    AttemptOutcome,
    Call,
    CallStatus,
    CallSubstance,
    CallTask,
    EmergencyDisclosure,
    FollowUp,
    FollowUpAttempt,
    RiskLevel,
    Substance,
    TaskKind,
)
from intake.calls.phones import PHONE_INDEX_PURPOSE, normalise_phone
from intake.db_types import utcnow
from intake.extensions import db
from intake.records import documents
from intake.records.common import RequestInvalid
from intake.records.models import (
    DocumentContent,
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequestStatus,
    Visibility,
)
from intake.security.crypto import keyring
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, csrf_token, login, sql_statements

NAME = "Jane Q. Roe"
PHONE = "(805) 555-0142"
NOTE = "caller drinks with klonopin nightly"
PDF = b"%PDF-1.7\n% released-record-canary\n%%EOF\n"
LONG_AGO = datetime(2012, 1, 10, 12, 0, tzinfo=UTC)


def days_ago(n: int) -> datetime:
    return utcnow() - timedelta(days=n)


def make_call(operator_id: int, started_at: datetime) -> int:
    """A final call with every kind of text: contact details, notes, a task, a follow-up attempt
    and an emergency disclosure; returns its id (inside an app context)."""
    call = Call(operator_id=operator_id, status=CallStatus.FINAL, started_at=started_at, finalized_at=started_at,
                risk_level=RiskLevel.HIGH, zip="93101", caller_name=NAME, caller_phone=normalise_phone(PHONE),
                caller_phone_index=keyring().blind_index(PHONE_INDEX_PURPOSE, normalise_phone(PHONE)),
                safe_times="after 6pm", safe_wording="say it is the pharmacy", notes=NOTE,
                consent_callback=True)
    call.substances = [CallSubstance(substance=Substance.CLONAZEPAM)]
    call.tasks = [CallTask(kind=TaskKind.TRANSPORT, note="ride from " + NAME)]
    db.session.add(call)
    db.session.flush()
    followup = FollowUp(call_id=call.id, due_at=started_at + timedelta(days=1))
    db.session.add(followup)
    db.session.flush()
    db.session.add(FollowUpAttempt(followup_id=followup.id, operator_id=operator_id,
                                   outcome=AttemptOutcome.NO_ANSWER, note="spoke to " + NAME))
    db.session.add(EmergencyDisclosure(call_id=call.id, disclosed_to="county EMS", information="name and address",
                                       reason="overdose in progress", disclosed_at=started_at,
                                       recorded_by_id=operator_id))
    db.session.commit()
    return call.id


def raw_call(call_id: int):
    return db.session.execute(text(
        "SELECT caller_name, caller_phone, caller_phone_index, safe_times, safe_wording, notes, draft_extras, "
        "text_purged_at, risk_level, zip FROM calls WHERE id = :i"), {"i": call_id}).first()


def children(call_id: int) -> dict[str, int]:
    counts = {}
    for model in (CallSubstance, CallTask, FollowUp, EmergencyDisclosure):
        counts[model.__tablename__] = db.session.execute(
            select(func.count()).select_from(model).where(model.call_id == call_id)).scalar_one()
    return counts


def purged_events(kind: str | None = None) -> list[dict]:
    import json

    rows = db.session.execute(select(AuditEvent.details).where(AuditEvent.action == "retention.purged")
                              .order_by(AuditEvent.seq)).scalars()
    found = [json.loads(d) for d in rows]
    return [d for d in found if kind is None or d["kind"] == kind]


def result_for(results, kind: DataKind):
    return next(r for r in results if r.kind == kind)


@pytest.fixture()
def operator(make_user):
    return make_user(Role.OPERATOR)


# --- Policies -------------------------------------------------------------------------------------

def test_defaults_apply_until_a_policy_is_saved(ctx):
    found = policies()
    assert {k: p.keep_days for k, p in found.items()} == {
        DataKind.CALL_TEXT: 730, DataKind.CALL_RECORD: 2555, DataKind.RELEASED_DOCUMENT: 365,
        DataKind.AUDIT_EVENT: 2192}
    assert all(p.is_default and not p.legal_hold for p in found.values())


def test_update_policy_checks_the_limits_and_audits_without_the_reason(app, make_user):
    admin = make_user(FULL_ADMIN)
    with app.app_context():
        actor = db.session.get(User, admin.id)
        for kind, days, field in ((DataKind.AUDIT_EVENT, 2191, "keep_days"), (DataKind.CALL_TEXT, 29, "keep_days"),
                                  (DataKind.CALL_TEXT, 3000, "keep_days"),  # longer than the call records
                                  (DataKind.CALL_RECORD, 36501, "keep_days")):
            with pytest.raises(PolicyInvalid) as caught:
                update_policy(kind, days, False, None, actor)
            assert field in caught.value.errors
        with pytest.raises(PolicyInvalid) as caught:
            update_policy(DataKind.CALL_TEXT, 800, True, "   ", actor)
        assert "hold_reason" in caught.value.errors
        saved = update_policy(DataKind.CALL_TEXT, 800, True, "Doe v. Facility, case 24-001", actor)
        db.session.commit()
        assert (saved.keep_days, saved.legal_hold, saved.is_default) == (800, True, False)
        raw = db.session.execute(text("SELECT hold_reason FROM retention_policies")).scalar_one()
        assert "Doe" not in raw
        event_ = db.session.execute(select(AuditEvent).where(AuditEvent.action == "retention.policy_changed")
                                    ).scalar_one()
        assert '"legal_hold":true' in event_.details and "Doe" not in event_.details
        # Lifting the hold forgets the reason.
        update_policy(DataKind.CALL_TEXT, 800, False, "ignored", actor)
        db.session.commit()
        assert db.session.get(RetentionPolicy, DataKind.CALL_TEXT).hold_reason is None


# --- Each kind ------------------------------------------------------------------------------------

def test_call_text_is_stripped_when_expired_and_kept_when_not(app, operator):
    with app.app_context():
        old = make_call(operator.id, days_ago(731))
        young = make_call(operator.id, days_ago(729))
        results = purge()
        assert result_for(results, DataKind.CALL_TEXT).count == 1
        stripped = raw_call(old)
        assert stripped[:7] == (None,) * 7 and stripped.text_purged_at is not None
        assert (stripped.risk_level, stripped.zip) == ("high", "93101")  # coded fields stay
        assert db.session.execute(select(CallTask.note).where(CallTask.call_id == old)).scalar_one() is None
        assert db.session.execute(select(FollowUpAttempt.note).join(FollowUp).where(FollowUp.call_id == old)
                                  ).scalar_one() is None
        # The disclosure record (42 CFR 2.51) stays with the call record.
        assert children(old) == {"call_substances": 1, "call_tasks": 1, "followups": 1, "emergency_disclosures": 1}
        kept = db.session.get(Call, young)
        assert (kept.caller_name, kept.notes, kept.text_purged_at) == (NAME, NOTE, None)
        [details] = purged_events("call_text")
        assert details["count"] == 1 and set(details) == {"kind", "count", "cutoff"}
        # A second run finds nothing left to strip.
        assert result_for(purge(), DataKind.CALL_TEXT).nothing_to_do


def test_repeat_caller_lookup_no_longer_finds_a_stripped_call(app, operator):
    with app.app_context():
        old = make_call(operator.id, days_ago(800))
        index = keyring().blind_index(PHONE_INDEX_PURPOSE, normalise_phone(PHONE))
        purge()
        assert db.session.execute(select(Call.id).where(Call.caller_phone_index == index)).first() is None
        assert db.session.get(Call, old) is not None


def test_call_records_are_deleted_with_their_children_after_their_period(app, operator):
    with app.app_context():
        old = make_call(operator.id, days_ago(2556))
        young = make_call(operator.id, days_ago(2554))
        results = purge()
        assert result_for(results, DataKind.CALL_RECORD).count == 1
        assert db.session.get(Call, old) is None
        assert children(old) == {"call_substances": 0, "call_tasks": 0, "followups": 0, "emergency_disclosures": 0}
        assert db.session.execute(text("SELECT COUNT(*) FROM followup_attempts")).scalar_one() == 1  # young's
        assert db.session.get(Call, young) is not None
        assert raw_call(young).text_purged_at is not None  # past the text period, within the record period


def released_document(app, make_request, owner, admin, *, released_days_ago: int, closed: bool = True,
                      kind: FileKind = FileKind.RELEASED_RECORD, revoked: bool = False) -> tuple[str, str, int]:
    """A document released ``released_days_ago`` days ago (its 30-day download period long over
    unless told otherwise); returns (request reference, document uid, document id)."""
    ref = make_request(owner)
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
        doc = documents.store_document(req, kind, "discharge.pdf", PDF, db.session.get(User, admin.id),
                                       Visibility.REQUESTER, content_type="application/pdf")
        released = days_ago(released_days_ago)
        doc.released_at, doc.expires_at, doc.max_downloads = released, released + timedelta(days=30), 3
        if revoked:
            doc.expires_at, doc.revoked_at = released + timedelta(days=9999), released + timedelta(days=1)
        if closed:
            req.status, req.is_open, req.closed_at = RequestStatus.FULFILLED, False, released
        db.session.commit()
        return ref, doc.uid, doc.id


def test_released_document_contents_go_the_row_stays(app, make_request, make_user):
    owner, admin = make_user(Role.REQUESTER), make_user(FULL_ADMIN)
    _, _, expired = released_document(app, make_request, owner, admin, released_days_ago=400)
    _, _, withdrawn = released_document(app, make_request, owner, admin, released_days_ago=400, revoked=True)
    _, _, recent = released_document(app, make_request, owner, admin, released_days_ago=300)
    _, _, still_open = released_document(app, make_request, owner, admin, released_days_ago=400, closed=False)
    _, _, letter = released_document(app, make_request, owner, admin, released_days_ago=400, kind=FileKind.LETTER)
    with app.app_context():
        assert result_for(purge(), DataKind.RELEASED_DOCUMENT).count == 2
        for doc_id in (expired, withdrawn):
            doc = db.session.get(RequestDocument, doc_id)
            assert doc.content_purged_at is not None and doc.sha256 and doc.size_bytes == len(PDF)
            assert db.session.get(DocumentContent, doc_id) is None
        for doc_id in (recent, still_open, letter):
            assert db.session.get(RequestDocument, doc_id).content_purged_at is None
            assert base64.b64decode(db.session.get(DocumentContent, doc_id).data) == PDF


def test_a_document_still_downloadable_is_not_purged(app, make_request, make_user):
    """Released long ago but released again with a period that has not ended: kept."""
    owner, admin = make_user(Role.REQUESTER), make_user(FULL_ADMIN)
    _, _, doc_id = released_document(app, make_request, owner, admin, released_days_ago=400)
    with app.app_context():
        db.session.get(RequestDocument, doc_id).expires_at = utcnow() + timedelta(days=5)
        db.session.commit()
        assert result_for(purge(), DataKind.RELEASED_DOCUMENT).nothing_to_do


# --- Legal hold, dry run, nothing to do --------------------------------------------------------------

def test_legal_hold_stops_its_kind_entirely_and_only_its_kind(app, operator, make_user):
    admin = make_user(FULL_ADMIN)
    with app.app_context():
        ancient = make_call(operator.id, days_ago(3000))
        old = make_call(operator.id, days_ago(800))
        update_policy(DataKind.CALL_TEXT, 730, True, "litigation hold 24-001", db.session.get(User, admin.id))
        update_policy(DataKind.CALL_RECORD, 2555, True, "litigation hold 24-001", db.session.get(User, admin.id))
        db.session.commit()
        results = purge()
        for kind in (DataKind.CALL_TEXT, DataKind.CALL_RECORD):
            assert result_for(results, kind).held and result_for(results, kind).count == 0
        assert db.session.get(Call, ancient) is not None
        assert raw_call(old).caller_name is not None and raw_call(ancient).text_purged_at is None
        assert purged_events() == []
        # The dry run says the same.
        assert result_for(plan(), DataKind.CALL_TEXT).held
        # Lifting the hold on the text only: the text goes, the ancient record still stays.
        update_policy(DataKind.CALL_TEXT, 730, False, None, db.session.get(User, admin.id))
        db.session.commit()
        results = purge()
        assert result_for(results, DataKind.CALL_TEXT).count == 2
        assert result_for(results, DataKind.CALL_RECORD).held
        assert db.session.get(Call, ancient) is not None


def test_dry_run_counts_and_changes_nothing(app, operator):
    with app.app_context():
        make_call(operator.id, days_ago(3000))
        make_call(operator.id, days_ago(800))
        make_call(operator.id, days_ago(10))
        seq_before = db.session.execute(select(func.max(AuditEvent.seq))).scalar()
        results = purge(dry_run=True)
        assert {r.kind: r.count for r in results} == {DataKind.CALL_TEXT: 2, DataKind.CALL_RECORD: 1,
                                                    DataKind.RELEASED_DOCUMENT: 0, DataKind.AUDIT_EVENT: 0}
        assert all(r.dry_run for r in results)
        assert db.session.execute(select(func.count()).select_from(Call)).scalar_one() == 3
        assert db.session.execute(select(func.count()).select_from(Call)
                                  .where(Call.text_purged_at.is_not(None))).scalar_one() == 0
        assert db.session.execute(select(func.max(AuditEvent.seq))).scalar() == seq_before


def test_cli_dry_run_and_nothing_to_do(app, runner, operator):
    empty = runner.invoke(args=["retention", "purge"])
    assert empty.exit_code == 0, empty.output
    assert "Nothing to purge" in empty.output
    assert "call_text: nothing to do (nothing older than" in empty.output
    with app.app_context():
        make_call(operator.id, days_ago(800))
    dry = runner.invoke(args=["retention", "purge", "--dry-run"])
    assert dry.exit_code == 0
    assert "call_text: 1 call(s) would be stripped (older than" in dry.output
    assert "Dry run: 1 row(s) would be purged; nothing was changed." in dry.output
    done = runner.invoke(args=["retention", "purge"])
    assert "call_text: 1 call(s) stripped" in done.output and "Done: 1 row(s) purged" in done.output
    assert NAME not in done.output
    shown = runner.invoke(args=["retention", "show"])
    assert "call_text: 730 days (default), no hold" in shown.output
    assert "audit_event: 2192 days (default), no hold" in shown.output


# --- An interrupted purge ----------------------------------------------------------------------------

def fail_on_batch(monkeypatch, kind: DataKind, n: int) -> None:
    """The ``n``-th batch of ``kind`` raises after doing its work (so its work must be undone)."""
    real = retention.BATCHES[kind]
    calls = {"n": 0}

    def batch(cutoff, now, size):
        calls["n"] += 1
        done = real(cutoff, now, size)
        if calls["n"] == n:
            raise OSError("disk went away")
        return done

    monkeypatch.setitem(retention.BATCHES, kind, batch)


def test_an_interrupted_purge_keeps_its_first_batch_and_the_rerun_finishes(app, operator, monkeypatch):
    with app.app_context():
        ids = [make_call(operator.id, days_ago(800 + i)) for i in range(5)]
        fail_on_batch(monkeypatch, DataKind.CALL_TEXT, 2)
        with pytest.raises(PurgeInterrupted) as caught:
            purge(batch_size=2)
        assert caught.value.kind == DataKind.CALL_TEXT and caught.value.done[-1].count == 2
        db.session.rollback()
        stripped = {i: raw_call(i).text_purged_at for i in ids if raw_call(i).text_purged_at is not None}
        assert len(stripped) == 2  # the first batch, committed; the failed second one undone
        assert [d["count"] for d in purged_events("call_text")] == [2]
        monkeypatch.undo()
        results = purge(batch_size=2)
        assert result_for(results, DataKind.CALL_TEXT).count == 3
        assert sum(d["count"] for d in purged_events("call_text")) == 5
        assert all(raw_call(i).text_purged_at is not None for i in ids)
        # Nothing was done twice: the first batch kept its time.
        assert {i: raw_call(i).text_purged_at for i in stripped} == stripped


def test_the_cli_says_an_interrupted_purge_can_be_run_again(app, runner, operator, monkeypatch):
    with app.app_context():
        for i in range(3):
            make_call(operator.id, days_ago(800 + i))
    fail_on_batch(monkeypatch, DataKind.CALL_TEXT, 2)
    result = runner.invoke(args=["retention", "purge", "--batch-size", "2"])
    assert result.exit_code == 1
    assert "call_text: 2 call(s) stripped" in result.output
    assert "Purge interrupted while purging call_text (OSError)" in result.output
    assert "Run the purge again to finish." in result.output
    assert "Traceback" not in result.output
    monkeypatch.undo()
    again = runner.invoke(args=["retention", "purge", "--batch-size", "2"])
    assert again.exit_code == 0 and "call_text: 1 call(s) stripped" in again.output


# --- The audit trail ----------------------------------------------------------------------------------

def old_events(monkeypatch, n: int, at: datetime = LONG_AGO) -> None:
    """``n`` events written as if ``at`` (the column cannot be edited afterwards)."""
    with monkeypatch.context() as patch:
        patch.setattr("intake.audit.services.utcnow", lambda: at)
        for i in range(n):
            record("test.old", object_type="thing", object_id=i)
        db.session.commit()


def delete_event(seq: int) -> None:
    """A raw DELETE in a transaction of its own (the session's, if open, would hold SQLite's lock)."""
    db.session.rollback()
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM audit_events WHERE seq = :s"), {"s": seq})


def test_audit_events_are_removed_as_a_prefix_behind_a_signed_checkpoint(app, runner, monkeypatch):
    with app.app_context():
        old_events(monkeypatch, 5)
        old_events(monkeypatch, 1, at=utcnow() - timedelta(days=100))  # young: stops the prefix
        old_events(monkeypatch, 2)  # old again, but after a young one: kept
        fourth_hash = db.session.get(AuditEvent, 4).hash
        results = purge(batch_size=2)
        # The last expired event of the prefix (5) stays: its time vouches for what went before it.
        assert result_for(results, DataKind.AUDIT_EVENT).count == 4
        assert db.session.execute(select(func.min(AuditEvent.seq))).scalar_one() == 5
        [checkpoint] = db.session.execute(select(AuditCheckpoint)).scalars().all()
        assert (checkpoint.through_seq, checkpoint.through_hash) == (4, fourth_hash)
        assert checkpoint.key_id == "t4" and len(checkpoint.signature) == 64 and not checkpoint.legacy
        assert [d["count"] for d in purged_events("audit_event")] == [2, 2]
        report = verify_chain()
        assert report.ok and report.checkpoint_seq == 4, report
        # Every purge anchors the head outside the database.
        assert report.anchor is not None and report.anchor.reason == "purge" and report.anchor.seq == report.head_seq
        # The database still refuses any deletion past the checkpoint, and any change to it.
        seq = db.session.execute(select(func.max(AuditEvent.seq))).scalar_one()
        db.session.rollback()
        for statement, params in (("DELETE FROM audit_events WHERE seq = :s", {"s": 5}),
                                  ("DELETE FROM audit_events WHERE seq = :s", {"s": seq}),
                                  ("UPDATE audit_events SET action = 'x' WHERE seq = :s", {"s": 7}),
                                  ("DELETE FROM audit_checkpoints", {}),
                                  ("UPDATE audit_checkpoints SET through_seq = 99", {})):
            with pytest.raises(DatabaseError, match="append-only"):
                with db.engine.begin() as conn:
                    conn.execute(text(statement), params)
        assert verify_chain().ok
    verified = runner.invoke(args=["audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "events 1 to 4 were removed by the retention purge" in verified.output
    assert "Compared with the anchor written" in verified.output and "(purge)" in verified.output
    assert "Audit trail intact" in verified.output


def test_the_audit_page_says_the_chain_starts_at_the_checkpoint(app, make_user, monkeypatch):
    with app.app_context():
        old_events(monkeypatch, 4)  # before any account exists, so the old events are the chain's prefix
        purge()
    admin_client = app.test_client()
    assert login(admin_client, make_user(FULL_ADMIN).email).status_code == 302
    token = csrf_token(admin_client, "/admin/audit/")
    page = admin_client.post("/admin/audit/verify", data={"csrf_token": token}, follow_redirects=True)
    text_ = page.get_data(as_text=True)
    assert "The audit chain is intact" in text_
    assert "from the retention checkpoint after event 3 (older events were purged)" in text_


def test_an_interrupted_audit_purge_is_finished_by_the_next_run(app, monkeypatch):
    with app.app_context():
        old_events(monkeypatch, 6)
        fail_on_batch(monkeypatch, DataKind.AUDIT_EVENT, 2)
        with pytest.raises(PurgeInterrupted):
            purge(batch_size=2)
        db.session.rollback()
        assert db.session.execute(select(func.min(AuditEvent.seq))).scalar_one() == 3
        assert verify_chain().ok
        monkeypatch.undo()
        assert result_for(purge(batch_size=2), DataKind.AUDIT_EVENT).count == 3
        assert db.session.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one() == 1
        assert db.session.execute(select(func.min(AuditEvent.seq))).scalar_one() == 6
        assert verify_chain().ok
        # A later purge with nothing newly expired writes no second checkpoint.
        assert result_for(purge(), DataKind.AUDIT_EVENT).nothing_to_do
        assert db.session.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one() == 1


def forge_checkpoint(through_seq: int) -> None:
    """What an insider with INSERT rights but without the audit key can write: any seq and hash,
    but no signature the key would make."""
    through_hash = db.session.get(AuditEvent, through_seq).hash
    db.session.execute(text(
        "INSERT INTO audit_checkpoints (through_seq, through_hash, created_at, key_id, signature, legacy) "
        "VALUES (:s, :h, :c, :k, :sig, :l)"),
        {"s": through_seq, "h": through_hash, "c": datetime(2030, 1, 1), "k": "t4", "sig": "0" * 64, "l": False})
    db.session.commit()


def test_a_checkpoint_slipped_in_to_hide_a_deletion_is_detected(app, monkeypatch):
    """With insert rights one could add a checkpoint and then delete the events behind it. The
    database refuses to delete events younger than six years whatever the checkpoints say; and with
    that guard dropped too, the checkpoint carries no signature the key made, so the walk ignores it
    and names the first event deleted."""
    from tests.test_audit import drop_append_only_guard

    with app.app_context():
        for i in range(4):
            record("test.recent", object_type="thing", object_id=i)
        db.session.commit()
        forge_checkpoint(3)
        with pytest.raises(DatabaseError, match="append-only"):
            delete_event(1)
        drop_append_only_guard()
        delete_event(1)
        report = verify_chain()
        assert not report.ok and report.broken_at == 1
        assert "event 1 is missing" in report.reason and "not signed with the audit key" in report.reason


def test_audit_events_within_six_years_are_never_purged(app, monkeypatch):
    with app.app_context():
        old_events(monkeypatch, 3, at=utcnow() - timedelta(days=2190))
        assert result_for(purge(), DataKind.AUDIT_EVENT).nothing_to_do
        assert db.session.execute(select(func.min(AuditEvent.seq))).scalar_one() == 1
        with pytest.raises(DatabaseError, match="append-only"):
            delete_event(1)


def test_a_signed_checkpoint_that_removed_young_events_is_refused(app, monkeypatch):
    """Even a correctly signed checkpoint (a purge run with a wrong clock, say) fails the check
    when the first event it kept is not six years older than its announcement."""
    from intake.audit.chain import CHECKPOINT_ACTION, sign_checkpoint
    from tests.test_audit import drop_append_only_guard

    with app.app_context():
        old_events(monkeypatch, 2, at=utcnow() - timedelta(days=100))
        checkpoint = AuditCheckpoint(through_seq=1, through_hash=db.session.get(AuditEvent, 1).hash,
                                     created_at=utcnow())
        sign_checkpoint(checkpoint)
        db.session.add(checkpoint)
        db.session.flush()
        record(CHECKPOINT_ACTION, object_type="audit_checkpoint", object_id=checkpoint.id,
               details={"through_seq": 1, "through_hash": checkpoint.through_hash, "cutoff": "2000-01-01T00:00:00"})
        db.session.commit()
        drop_append_only_guard()
        delete_event(1)
        report = verify_chain()
        assert not report.ok and report.broken_at == 2
        assert "removed events younger than six years" in report.reason


# --- Purged data on the pages ---------------------------------------------------------------------------

def test_a_stripped_call_page_renders_without_the_text(app, operator, admin_client):
    with app.app_context():
        call_id = make_call(operator.id, days_ago(800))
        purge()
    response = admin_client.get(f"/calls/{call_id}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert NAME not in page and NOTE not in page and "0142" not in page


def test_a_purged_document_answers_no_longer_available(app, make_request, make_user, client):
    owner, admin = make_user(Role.REQUESTER), make_user(FULL_ADMIN)
    ref, uid, _ = released_document(app, make_request, owner, admin, released_days_ago=400)
    with app.app_context():
        purge()
    login(client, owner.email)
    response = client.get(f"/my/requests/{ref}/documents/{uid}")
    assert response.status_code == 410
    assert "no longer available" in response.get_data(as_text=True)
    page = client.get(f"/my/requests/{ref}")
    assert page.status_code == 200 and "no longer stored" in page.get_data(as_text=True)
    staff = app.test_client()
    login(staff, admin.email)
    response = staff.get(f"/queue/requests/{ref}/documents/{uid}")
    assert response.status_code == 410 and "no longer stored" in response.get_data(as_text=True)
    queue_page = staff.get(f"/queue/requests/{ref}")
    assert queue_page.status_code == 200
    assert "Contents deleted (retention)" in queue_page.get_data(as_text=True)
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
        doc = documents.document_of(req, uid)
        assert documents.availability(doc) == "purged"
        with pytest.raises(RequestInvalid) as caught:
            documents.release(req, doc, db.session.get(User, admin.id))
        assert "retention policy" in str(caught.value.errors["document"])


# --- The page ----------------------------------------------------------------------------------------

def post_policy(client, kind: str, **data):
    data.setdefault("csrf_token", csrf_token(client, "/admin/retention/"))
    return client.post(f"/admin/retention/{kind}", data=data)


@pytest.mark.parametrize("kind,data,message", [
    ("call_text", {"keep_days": ""}, "Enter a number of days."),
    # Found by the fuzz (tests/fuzz): only spaces passed InputRequired and reached the service as None.
    ("call_text", {"keep_days": " "}, "Enter a number of days."),
    ("call_text", {"keep_days": "\r\n"}, "Enter a number of days."),
    ("call_text", {"keep_days": "abc"}, "Enter a whole number of days"),
    ("call_text", {"keep_days": "12.5"}, "Enter a whole number of days"),
    ("call_text", {"keep_days": "-5"}, "Enter a whole number of days"),
    ("call_text", {"keep_days": "9" * 40}, "Enter a whole number of days"),
    ("call_text", {"keep_days": "99999"}, "Enter a number of days up to 36500"),
    ("call_text", {"keep_days": "29"}, "from 30 to 36500"),
    ("call_text", {"keep_days": "3000"}, "cannot be kept longer than the call records"),
    ("call_record", {"keep_days": "700"}, "from 2192 to 36500"),
    ("audit_event", {"keep_days": "365"}, "from 2192 to 36500"),
    ("audit_event", {"keep_days": "<script>alert(1)</script>"}, "Enter a whole number of days"),
    ("released_document", {"keep_days": "365", "legal_hold": "y"}, "Say why the data is held"),
    ("released_document", {"keep_days": "365", "legal_hold": "y", "hold_reason": "x" * 501}, "under 500 characters"),
])
def test_bad_policy_input_is_a_400_with_the_reason_and_the_input_kept(app, admin_client, kind, data, message):
    response = post_policy(admin_client, kind, **data)
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert "<script>alert(1)</script>" not in page
    if data["keep_days"] and len(data["keep_days"]) < 10 and "<" not in data["keep_days"]:
        assert f'value="{data["keep_days"]}"' in page
    with app.app_context():
        assert db.session.execute(select(RetentionPolicy)).first() is None


def test_a_hold_reason_with_markup_is_kept_escaped(app, admin_client):
    response = post_policy(admin_client, "call_text", keep_days="29", legal_hold="y",
                           hold_reason="<script>alert(1)</script>")
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_unknown_kind_is_404(admin_client):
    assert admin_client.get("/admin/retention/patients").status_code == 404
    assert post_policy(admin_client, "patients", keep_days="400").status_code == 404


def test_saving_a_policy_and_seeing_it_on_the_page(app, admin_client):
    form = admin_client.get("/admin/retention/released_document")
    assert form.status_code == 200 and 'value="365"' in form.get_data(as_text=True)
    response = post_policy(admin_client, "released_document", keep_days="400", legal_hold="y",
                           hold_reason="Subpoena 2026-17")
    assert response.status_code == 303
    page = admin_client.get("/admin/retention/").get_data(as_text=True)
    row = re.search(r'<tr data-kind="released_document">(.*?)</tr>', page, re.S).group(1)
    assert "400 days" in row and "Held" in row
    assert "Subpoena" not in page  # the reason is shown on the kind's own page only
    assert "Subpoena 2026-17" in admin_client.get("/admin/retention/released_document").get_data(as_text=True)
    with app.app_context():
        assert policies()[DataKind.RELEASED_DOCUMENT].keep_days == 400


def test_the_page_never_counts_and_the_preview_does(app, admin_client, operator):
    with app.app_context():
        make_call(operator.id, days_ago(800))
    with sql_statements(app) as statements:
        page = admin_client.get("/admin/retention/")
    assert page.status_code == 200
    assert not [s for s in statements if "count(" in s.lower()], statements
    assert "retention-preview" not in page.get_data(as_text=True)
    preview = admin_client.post("/admin/retention/preview",
                                data={"csrf_token": csrf_token(admin_client, "/admin/retention/")})
    assert preview.status_code == 200
    text_ = preview.get_data(as_text=True)
    assert re.search(r'data-kind="call_text">\s*<strong>[^<]+</strong>:\s*1 row older than', text_)
    assert "under legal hold, nothing would be touched" not in text_
    with app.app_context():
        assert db.session.execute(select(Call.text_purged_at)).scalar_one() is None  # a preview changes nothing


def test_last_purge_is_shown(app, admin_client, operator):
    with app.app_context():
        make_call(operator.id, days_ago(800))
        purge()
    row = re.search(r'<tr data-kind="call_text">(.*?)</tr>',
                    admin_client.get("/admin/retention/").get_data(as_text=True), re.S).group(1)
    assert "Never" not in row
    row = re.search(r'<tr data-kind="audit_event">(.*?)</tr>',
                    admin_client.get("/admin/retention/").get_data(as_text=True), re.S).group(1)
    assert "Never" in row


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
def test_only_admins_reach_retention(app, make_user, role):
    client = app.test_client()
    login(client, make_user(role).email)
    for path in ("/admin/retention/", "/admin/retention/call_text", "/admin/retention/archive"):
        assert client.get(path).status_code == 403
    token = csrf_token(client, "/account")
    assert client.post("/admin/retention/call_text", data={"csrf_token": token, "keep_days": "31"}).status_code == 403
    assert client.post("/admin/retention/preview", data={"csrf_token": token}).status_code == 403


# --- Archive records past their retention date ------------------------------------------------------

def test_archive_records_past_retention_are_listed_by_number_and_paged(app, admin_client, archive_patient,
                                                                      monkeypatch):
    ids = {}
    for n, until in enumerate((date(2020, 1, 1), date(2021, 6, 1), date(2021, 6, 1), date(2999, 1, 1), None)):
        ids[n] = archive_patient(mrn=f"MRN-SECRET-{n}", last_name="Zebrafish")
        with app.app_context():
            db.session.get(ArchivedPatient, ids[n]).retention_until = until
            db.session.commit()
    monkeypatch.setattr("intake.admin.retention_views.PAGE_SIZE", 2)
    first = admin_client.get("/admin/retention/archive")
    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert re.findall(r'data-patient="(\d+)"', page) == [str(ids[0]), str(ids[1])]
    assert f'href="/admin/archive/{ids[0]}"' in page
    assert "MRN-SECRET" not in page and "Zebrafish" not in page
    after = re.search(r'href="(/admin/retention/archive\?after=[^"]+)"', page).group(1)
    second = admin_client.get(after.replace("&amp;", "&")).get_data(as_text=True)
    assert re.findall(r'data-patient="(\d+)"', second) == [str(ids[2])]
    assert 'href="/admin/retention/archive?after=' not in second  # the last page links to no next one
    with app.app_context():
        listed = db.session.execute(select(AuditEvent.details).where(AuditEvent.action == "archive.retention_listed")
                                    .order_by(AuditEvent.seq)).scalars().all()
    assert len(listed) == 2 and '"shown":2' in listed[0] and '"shown":1' in listed[1]


@pytest.mark.parametrize("cursor", ["x", "not-a-cursor!", "LTUuMQ", "MC4x", "'; DROP TABLE x;--"])
def test_a_bad_archive_cursor_is_a_400(admin_client, cursor):
    response = admin_client.get("/admin/retention/archive", query_string={"after": cursor})
    assert response.status_code == 400
    assert "That page link is not valid" in response.get_data(as_text=True)


def test_an_emptied_trail_continues_from_its_checkpoint(app, monkeypatch):
    """Defensive: were every event behind a checkpoint gone, the next one still links to it."""
    from intake.audit.chain import sign_checkpoint

    with app.app_context():
        old_events(monkeypatch, 2)
        second = db.session.get(AuditEvent, 2).hash
        checkpoint = AuditCheckpoint(through_seq=2, through_hash=second, created_at=utcnow())
        sign_checkpoint(checkpoint)
        db.session.add(checkpoint)
        db.session.commit()
        delete_event(1)
        delete_event(2)
        event_ = record("test.three")
        db.session.commit()
        assert (event_.seq, event_.prev_hash) == (3, second)
