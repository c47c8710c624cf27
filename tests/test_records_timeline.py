"""Issue 19, "Languages, read at the time of reading": a request's timeline is stored as codes with
their parameters and worded when read, in the reader's language (intake/records/timeline.py). A
Spanish requester never reads an English line between Spanish ones; staff read English; entries
from before 0015 show as written; a letter keeps its language and says so; every records e-mail
goes through send_mail."""

from __future__ import annotations

import ast
import html
import re
from pathlib import Path

import sqlalchemy as sa
from flask_babel import force_locale
from flask_migrate import downgrade, upgrade
from sqlalchemy import select, text

from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import common, services
from intake.records.models import (
    DeliveryMethod,
    EventCode,
    EventKind,
    FileKind,
    NoRecordsReason,
    RecordsRequest,
    RequestDocument,
    RequestEvent,
    Visibility,
)
from intake.records.timeline import (
    CATALOGUE,
    COMPOSED,
    DELIVERY_TEXTS,
    LETTER_LANGUAGES,
    describe,
    wording,
)
from intake.records.workflow import DenialReason, Email, PartialReason, ReviewOutcome, WithdrawReason
from intake.security.crypto import Sealed, aad_for, keyring
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, login
from tests.test_migrations import _insert_filler_row, empty_app  # noqa: F401  (the fixture)

ROOT = Path(__file__).resolve().parents[1]

# Every code with parameters that reach each of its words (every delivery method, every reason).
SAMPLES: list[tuple[EventCode, dict]] = [
    (EventCode.DOCUMENT_FROM_REQUESTER, {"kind": FileKind.PHOTO_ID.value}),
    (EventCode.DOCUMENT_ADDED, {"kind": FileKind.PROOF_OF_AUTHORITY.value}),
    (EventCode.DOCUMENT_RELEASED, {"kind": FileKind.RELEASED_RECORD.value, "days": 30, "n": 5}),
    (EventCode.DOCUMENT_REVOKED, {"kind": FileKind.RELEASED_RECORD.value}),
    (EventCode.FEE_ESTIMATE, {"total": 1150, "basis": "paper"}),
    (EventCode.PROFESSIONAL_DENIAL, {}),
    (EventCode.PROFESSIONAL_REVIEW, {}),
    (EventCode.PROFESSIONAL_DESIGNATED, {}),
    (EventCode.CONSENT_SIGNED, {}),
    (EventCode.CONSENT_PAPER, {}),
    (EventCode.CONSENT_REVOKED_ONLINE, {}),
    (EventCode.CONSENT_REVOKED_IN_WRITING, {}),
    (EventCode.ACCOUNT_LINKED, {}),
    (EventCode.EXTENDED, {"reason": "Caja 12 fuera del sitio.", "day": "2026-09-13"}),
    (EventCode.DISCLOSED, {"recipient": "Dra. Rivera", "how": DeliveryMethod.FAX.value}),
    *[(EventCode.DELIVERED, {"method": method.value}) for method in DeliveryMethod],
    *[(EventCode.NO_RECORDS, {"reason": reason.value, "custodian": "Archivo del Condado"})
      for reason in NoRecordsReason],
    *[(EventCode.DENIED, {"reason": reason.value}) for reason in DenialReason],
    *[(EventCode.PARTIAL, {"reason": reason.value}) for reason in PartialReason],
    *[(EventCode.REVIEW_DECIDED, {"outcome": outcome.value}) for outcome in ReviewOutcome],
    (EventCode.ANSWERED_WITH_DOCUMENT, {"kind": FileKind.PHOTO_ID.value}),
    (EventCode.FEE_ACCEPTED, {"total": 1150}),
    *[(EventCode.WITHDRAW_REASON, {"reason": reason.value}) for reason in WithdrawReason],
    (EventCode.FEE_DECLINED, {"total": 1150}),
]
TYPED = ("Caja 12 fuera del sitio.", "Dra. Rivera", "Archivo del Condado")  # what people typed: as typed


def _english_fragments() -> set[str]:
    """The English catalogue texts, cut at their placeholders: pieces no Spanish line may contain."""
    with force_locale("en"):
        texts = [str(w.text) for w in CATALOGUE.values()] + [str(t) for t in DELIVERY_TEXTS.values()]
    pieces = set()
    for raw in texts:
        for piece in re.split(r"%\(\w+\)[sd]", raw):
            for part in piece.split("\n"):
                if len(part.strip(" .:()")) >= 12:
                    pieces.add(part.strip())
    return pieces


def _paragraphs(words: str) -> list[str]:
    return [p.strip() for p in words.split("\n") if len(p.strip()) >= 12 and p.strip() not in TYPED]


def test_every_event_code_is_worded_once(app):
    assert set(CATALOGUE) | set(COMPOSED) == set(EventCode)
    assert not set(CATALOGUE) & set(COMPOSED)
    assert {code for code, _ in SAMPLES} == set(EventCode)
    with app.test_request_context():
        for code, params in SAMPLES:
            for language in ("en", "es"):
                with force_locale(language):
                    words = wording(code, params)
                assert words and "%(" not in words, (code, language)


def test_spanish_words_differ_from_english_for_every_code(app):
    """Each code has its Spanish (its texts are in the catalogue, translated)."""
    with app.test_request_context():
        for code, params in SAMPLES:
            with force_locale("en"):
                english = wording(code, params)
            with force_locale("es"):
                spanish = wording(code, params)
            assert spanish != english, code
            for paragraph in _paragraphs(english):
                assert paragraph not in spanish, (code, paragraph)


def _spanish_requester(app, make_user) -> User:
    requester = make_user(Role.REQUESTER)
    with app.app_context():
        db.session.get(User, requester.id).locale = "es"
        db.session.commit()
    return requester


def _add_every_code(app, reference: str, actor_id: int | None) -> None:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        actor = db.session.get(User, actor_id) if actor_id else None
        for code, params in SAMPLES:
            common.add_event(req, EventKind.STATUS if code.value.startswith(("decision", "review"))
                             else EventKind.DOCUMENT, Visibility.REQUESTER, actor, code=code, params=params)
        db.session.commit()


def _timeline(page: str) -> str:
    """Every entry of the page's timeline: the latest list and the folded earlier ones (the staff
    page shows the six latest and folds the rest)."""
    lists = re.findall(r'<ol class="list-unstyled(?: mt-2| small)?"(?: id="timeline(?:-entries)?")?>(.*?)</ol>',
                       page, re.S)
    assert lists and 'id="timeline' in page, "no timeline on the page"
    return html.unescape(re.sub(r"<[^>]+>", " ", " ".join(lists)))


def test_a_spanish_reader_never_sees_an_english_line_between_spanish_ones(app, client, make_user, make_request):
    """Every code, as a Spanish requester reads it on their page: no English catalogue text."""
    requester = _spanish_requester(app, make_user)
    admin = make_user(FULL_ADMIN)
    reference = make_request(requester)
    _add_every_code(app, reference, admin.id)
    assert login(client, requester.email).status_code == 302
    page = client.get(f"/my/requests/{reference}").get_data(as_text=True)
    assert '<html lang="es"' in page
    timeline = " ".join(_timeline(page).split())
    for fragment in _english_fragments():
        assert " ".join(fragment.split()) not in timeline, fragment
    with app.test_request_context():
        for code, params in SAMPLES:
            with force_locale("en"):
                english = wording(code, params)
            with force_locale("es"):
                spanish = wording(code, params)
            for paragraph in _paragraphs(english):
                assert " ".join(paragraph.split()) not in timeline, (code, paragraph)
            for paragraph in _paragraphs(spanish):
                assert " ".join(paragraph.split()) in timeline, (code, paragraph)
    for typed in TYPED:
        assert typed in timeline  # what people typed shows as typed


def test_staff_read_a_spanish_requester_s_timeline_in_english(app, admin_client, make_user, make_request):
    requester = _spanish_requester(app, make_user)
    reference = make_request(requester)
    _add_every_code(app, reference, admin_client.admin.id)
    page = admin_client.get(f"/queue/requests/{reference}").get_data(as_text=True)
    assert '<html lang="en"' in page
    timeline = " ".join(_timeline(page).split())
    with app.test_request_context():
        for code, params in SAMPLES:
            with force_locale("en"):
                english = wording(code, params)
            for paragraph in _paragraphs(english):
                assert " ".join(paragraph.split()) in timeline, (code, paragraph)
    assert "Necesitamos más tiempo" not in timeline


def test_the_same_entry_reads_in_each_reader_s_language_through_the_services(app, make_user, make_request):
    """Staff extend a Spanish requester's request from an English page: the entry holds a code,
    the reason as typed, and the due date as a date; each reader gets their own words."""
    requester = _spanish_requester(app, make_user)
    admin = make_user(FULL_ADMIN)
    reference = make_request(requester, request_type="accounting")
    with app.test_request_context("/queue/requests/", headers={"Accept-Language": "en-US"}):
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        services.extend(req, db.session.get(User, admin.id), "The boxes are off-site.")
        db.session.commit()
        event = db.session.execute(select(RequestEvent).where(
            RequestEvent.request_id == req.id, RequestEvent.kind == EventKind.EXTENDED)).scalar_one()
        assert event.code == EventCode.EXTENDED and event.body is None
        assert describe(event, "es").text.startswith("Necesitamos más tiempo")
        assert describe(event, "en").text.startswith("We need more time")
        assert "The boxes are off-site." in describe(event, "es").text


def test_timeline_parameters_are_encrypted_at_rest(app, make_user, make_request):
    reference = make_request(make_user(Role.REQUESTER))
    _add_every_code(app, reference, None)
    with app.app_context():
        raw = db.session.execute(text("SELECT params FROM request_events WHERE params IS NOT NULL")).scalars().all()
        assert raw and not any("Dra. Rivera" in value or "Caja 12" in value for value in raw)


def test_an_entry_from_before_0015_shows_as_it_was_written(app, client, make_user, make_request):
    requester = _spanish_requester(app, make_user)
    reference = make_request(requester)
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        db.session.add(RequestEvent(request_id=req.id, kind=EventKind.DOCUMENT, visibility=Visibility.REQUESTER,
                                    body="Nos envió un documento: Identificación con foto."))
        # A code this version does not know (written by a newer one): the entry's kind, no words.
        db.session.add(RequestEvent(request_id=req.id, kind=EventKind.DOCUMENT, visibility=Visibility.REQUESTER,
                                    code="document.from_the_future", params='{"kind": "x"}'))
        db.session.commit()
    assert login(client, requester.email).status_code == 302
    response = client.get(f"/my/requests/{reference}")
    assert response.status_code == 200
    assert "Nos envió un documento: Identificación con foto." in _timeline(response.get_data(as_text=True))


def test_a_letter_keeps_its_language_and_the_page_says_which(app, client, admin_client, make_user, make_request):
    requester = _spanish_requester(app, make_user)
    reference = make_request(requester)  # the acknowledgment letter, written in Spanish
    with app.app_context():
        languages = db.session.execute(select(RequestDocument.language).where(
            RequestDocument.kind == FileKind.LETTER)).scalars().all()
        assert languages == ["es"]
    staff_page = admin_client.get(f"/queue/requests/{reference}").get_data(as_text=True)
    assert str(LETTER_LANGUAGES["es"]) in staff_page  # "Letter sent in Spanish", on an English page
    assert login(client, requester.email).status_code == 302
    own_page = client.get(f"/my/requests/{reference}").get_data(as_text=True)
    assert "Carta enviada en español" in own_page


def test_every_records_email_goes_through_send_mail():
    """No records module builds an e-mail by hand: each one is a template in templates/email."""
    offenders = []
    for path in sorted((ROOT / "intake" / "records").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = node.func.attr if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) else (
                node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None)
            if name == "queue_email":
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []
    for kind in Email:
        assert (ROOT / "templates" / "email" / f"records_{kind.value}.txt").is_file(), kind
    assert (ROOT / "templates" / "email" / "records_digest.txt").is_file()


def test_a_spanish_requester_s_notice_is_spanish_and_keeps_its_outbox_kind(app, make_user, make_request):
    requester = _spanish_requester(app, make_user)
    admin = make_user(FULL_ADMIN)
    reference = make_request(requester)
    with app.test_request_context("/queue/requests/", headers={"Accept-Language": "en-US"}):
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        services.send_message(req, db.session.get(User, admin.id), "Please send a photo ID.")
        db.session.commit()
        mail = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "records_update")).scalar_one()
        assert mail.recipient == requester.email and mail.status == "pending"
        assert req.human_ref in mail.subject and "novedades" in mail.body and "Inicie sesión" in mail.body
        assert "Please send" not in mail.body and "update" not in mail.subject  # no content; no English


# --- The migration ------------------------------------------------------------------------------

def _open(table: str, column: str, uid: str, raw: str) -> str:
    return keyring().open(Sealed(raw), aad_for(table, column, uid))


def test_0015_keeps_old_entries_as_written_and_downgrade_words_coded_ones(empty_app):  # noqa: F811
    with empty_app.app_context():
        upgrade(revision="0014")
        _insert_filler_row("users", {"id": 1})
        _insert_filler_row("records_requests", {"id": 1, "owner_id": 1})
        _insert_filler_row("request_events", {"id": 1, "request_id": 1, "kind": "document", "body": "old-text"})
        db.session.commit()
        upgrade()
        row = db.session.execute(text("SELECT code, params, body FROM request_events WHERE id = 1")).one()
        assert (row.code, row.params, row.body) == (None, None, "old-text")
        columns = {c["name"] for c in sa.inspect(db.session.connection()).get_columns("request_documents")}
        assert "language" in columns
        db.session.execute(text("DELETE FROM request_events"))
        db.session.commit()
        event = RequestEvent(id=2, request_id=1, kind=EventKind.DELIVERED, visibility=Visibility.REQUESTER,
                             code=EventCode.DISCLOSED.value, params='{"how": "mail", "recipient": "Dr. Rivera"}',
                             body="Sent today.")
        db.session.add(event)
        db.session.commit()
        uid = event.uid
        db.session.remove()
        downgrade(revision="0014")
        raw = db.session.execute(text("SELECT body FROM request_events WHERE id = 2")).scalar_one()
        assert _open("request_events", "body", uid, raw) == (
            "The records were sent to Dr. Rivera (Sent by post).\n\nSent today.")
        db.session.remove()
        upgrade()



# --- The accounting of disclosures --------------------------------------------------------------

def test_the_accounting_is_worded_in_the_reader_s_language(app, client, admin_client, make_user, make_request,
                                                           archive_patient):
    """A disclosure's description and purpose were written in the recipient's language (English);
    a Spanish requester's accounting words them from their facts, in Spanish. Text people typed
    (a consent's purpose) and a disclosure from before 0015 show as written."""
    from datetime import timedelta

    from intake.db_types import utcnow
    from intake.records.consents import disclosure_wording
    from intake.records.models import Disclosure, DisclosureBasis, RequestStatus
    from intake.records.services import MoveInput

    requester = _spanish_requester(app, make_user)
    pid = archive_patient()
    reference = make_request(requester, request_type="accounting")
    with app.app_context():
        when = utcnow() - timedelta(days=10)
        db.session.add(Disclosure(
            archived_patient_id=pid, disclosed_at=when, recipient_name="Clinic Designated",
            basis=DisclosureBasis.DESIGNATED_PROFESSIONAL, description="All records",
            purpose="Sent to the licensed professional the patient designated after a denial on clinical grounds "
                    "(Health & Safety Code §123115(b)).", redisclosure_notice=True,
            wording=disclosure_wording({"scope": "everything", "from": None, "to": None, "kinds": [], "partial": None},
                                       {"code": "designated"})))
        db.session.add(Disclosure(archived_patient_id=pid, disclosed_at=when, recipient_name="Clinic Old",
                                  description="records as written", purpose="Care", redisclosure_notice=True))
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        admin = db.session.get(User, admin_client.admin.id)
        services.transition(req, RequestStatus.VERIFYING, admin)
        services.transition(req, RequestStatus.IN_REVIEW, admin, MoveInput(verification_method="photo_id",
                                                                         archived_patient_id=pid))
        services.record_delivery(req, admin, "mail")
        services.transition(req, RequestStatus.FULFILLED, admin)
        db.session.commit()
    assert login(client, requester.email).status_code == 302
    mine = client.get(f"/my/requests/{reference}").get_data(as_text=True)
    table = html.unescape(mine.split('id="accounting-table"')[1].split("</table>")[0])
    assert "Clinic Designated" in table and "Sent to the licensed professional" not in table
    assert "§123115(b)" in table  # the Spanish sentence, with its citation
    assert "records as written" in table and "Care" in table  # from before 0015: as written
    staff = html.unescape(admin_client.get(f"/queue/requests/{reference}").get_data(as_text=True))
    assert "Sent to the licensed professional the patient designated" in staff
