"""Letters: each kind rendered with the right facts, stored on the request at the right moment,
names escaped, self-contained and printable, shown to staff and to the requester (their own
letters only, under a policy that forbids scripts), never e-mailed."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import consents, documents, fees, letters, services
from intake.records.documents import content_of
from intake.records.labels import DENIAL_LABELS
from intake.records.models import (
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequestStatus,
    Visibility,
)
from intake.records.services import MoveInput
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, LICENCE, OTHER_LICENCE, login, verify_and_deliver

S = RequestStatus
NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)  # noon in Los Angeles, Monday 15 June 2026


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def _user(user: User) -> User:
    return db.session.get(User, user.id)


def stored(app, ref: str) -> list[tuple[str, str, str, str]]:
    """(kind of letter, content type, visibility, html) for each letter on the request, oldest first."""
    with app.app_context():
        req = _load(ref)
        docs = db.session.execute(select(RequestDocument).where(
            RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)
            .order_by(RequestDocument.id)).scalars()
        return [(doc.filename.split("-", 1)[0], doc.content_type, doc.visibility.value,
                 content_of(doc).decode("utf-8")) for doc in docs]


def kinds(app, ref: str) -> list[str]:
    return [row[0] for row in stored(app, ref)]


def text_of(html: str) -> str:
    """The letter's words, tags dropped and spaces squeezed (for plain-language assertions)."""
    body = html.split("<body>", 1)[1]
    return " ".join(re.sub(r"<[^>]+>", " ", body).replace("&#39;", "'").split())


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "other": make_user(Role.REQUESTER),
            "admin": make_user(FULL_ADMIN, licence=LICENCE), "admin2": make_user(FULL_ADMIN, licence=OTHER_LICENCE)}


def act(app, ref: str, fn) -> None:
    with app.test_request_context():
        fn(_load(ref))
        db.session.commit()


# --- Rendering -----------------------------------------------------------------------------------

def test_the_acknowledgment_says_what_was_asked_the_due_date_and_the_rule(app, people, make_request):
    with time_machine.travel(NOON, tick=False):
        ref = make_request(people["requester"], now=NOON, scope="kinds",
                           scope_kinds=["lab_results", "medications"])
        [(kind, content_type, visibility, html)] = stored(app, ref)
    assert (kind, content_type, visibility) == ("acknowledgment", "text/html; charset=utf-8", "requester")
    words = text_of(html)
    with app.app_context():
        req = _load(ref)
        assert req.human_ref in words and "Jordan Example" in words
        assert "Dear Jordan Example," in words
    assert app.config["FACILITY_NAME"] in words
    assert "A copy of my records" in words and "Laboratory results" in words
    assert "June 15, 2026" in words  # received, and the letter's date, in the facility's zone
    assert "by June 30, 2026" in words  # 15 calendar days
    assert "123110" in words  # the rule it cites


def test_the_letter_date_is_the_facility_day(app, people, make_request):
    late = datetime(2026, 6, 16, 5, 0, tzinfo=UTC)  # 22:00 on 15 June in Los Angeles
    with time_machine.travel(late, tick=False):
        ref = make_request(people["requester"], now=late)
        html = stored(app, ref)[0][3]
    assert '<p class="meta">June 15, 2026</p>' in html


def test_a_letter_is_self_contained_and_printable(app, people, make_request):
    html = stored(app, make_request(people["requester"]))[0][3]
    assert html.startswith("<!doctype html>")
    assert "<style>" in html and "@media print" in html
    assert "<script" not in html.lower()
    assert not re.search(r"(src|href)\s*=", html)  # no external resource, no link
    assert "http" not in html


def test_names_are_escaped_in_the_letter(app, people, make_request):
    hostile = "<script>alert(1)</script> O'Hara & <b>Co</b>"
    ref = make_request(people["requester"], patient_name=hostile, attestation_name=hostile,
                       relationship_to_patient="personal_representative", requester_name="<img src=x onerror=1>")
    html = stored(app, ref)[0][3]
    assert "<script>" not in html and "<b>Co</b>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; O&#39;Hara &amp; &lt;b&gt;Co&lt;/b&gt;" in html
    assert "Dear &lt;img src=x onerror=1&gt;," in html  # addressed to the representative


def test_an_unknown_kind_is_refused(app, people, make_request):
    ref = make_request(people["requester"])
    with app.test_request_context():
        with pytest.raises(letters.UnknownLetter):
            letters.render_letter("../../base", _load(ref))


# --- Stored at the right moment ----------------------------------------------------------------

def test_the_extension_notice_gives_the_reason_and_the_new_date(app, people, make_request):
    with time_machine.travel(NOON, tick=False):
        ref = make_request(people["requester"], now=NOON, request_type="accounting")
        act(app, ref, lambda req: services.extend(req, _user(people["admin"]), "Records are in\n\noff-site storage"))
        with app.app_context():
            due = _load(ref).due_on
    assert kinds(app, ref) == ["acknowledgment", "extension"]
    words = text_of(stored(app, ref)[1][3])
    assert "Records are in" in words and "off-site storage" in words
    assert f"{due:%B} {due.day}, {due.year}" in words and "one extension only" in words


def test_a_request_for_information_carries_the_staff_message(app, people, make_request):
    ref = make_request(people["requester"])
    act(app, ref, lambda req: services.transition(req, S.AWAITING_REQUESTER, _user(people["admin"]),
                                                  MoveInput(message="Please send a copy of your ID & a bill.")))
    assert kinds(app, ref) == ["acknowledgment", "information_request"]
    words = text_of(stored(app, ref)[1][3])
    assert "Please send a copy of your ID &amp; a bill." in words
    assert "We need more information" in words


@pytest.mark.parametrize(("reason", "reviewable"), [("endangerment", True), ("psychotherapy_notes", False)])
def test_a_denial_explains_the_reason_the_review_and_how_to_complain(app, people, make_request, reason,
                                                                       reviewable):
    ref = make_request(people["requester"])
    act(app, ref, lambda req: services.transition(req, S.VERIFYING, _user(people["admin"])))
    act(app, ref, lambda req: services.transition(req, S.DENIED, _user(people["admin"]),
                                                  MoveInput(reason=reason, note="internal why")))
    assert kinds(app, ref) == ["acknowledgment", "denial"]
    words = text_of(stored(app, ref)[1][3])
    with app.test_request_context():
        assert str(DENIAL_LABELS[reason]) in words.replace("&#39;", "'")
        expected = letters.decision_letter(S.DENIED, reason)
    for paragraph in expected.split("\n\n"):  # the same wording as the timeline, not a copy of it
        assert " ".join(paragraph.split()) in words.replace("&#39;", "'")
    assert ("reviewed by a licensed health professional who did not take part" in words) is reviewable
    assert "Office for Civil Rights" in words and "privacy officer" in words
    assert "internal why" not in words


def test_no_records_names_the_custodian(app, people, make_request):
    ref = make_request(people["requester"])
    act(app, ref, lambda req: services.transition(req, S.NO_RECORDS, _user(people["admin"]), MoveInput(
        no_records_reason="held_elsewhere", custodian="County Archive <Ventura>")))
    assert kinds(app, ref) == ["acknowledgment", "no_records"]
    html = stored(app, ref)[1][3]
    assert "They are held by County Archive &lt;Ventura&gt;; please send your request to them." in html


def test_the_fulfilment_cover_letter_says_how_the_records_went(app, people, make_request, archive_patient):
    patient = archive_patient()
    ref = make_request(people["requester"], delivery="mail", mail_address="1 Main St\nOjai, CA 93023")
    admin = people["admin"]

    def fulfil(req):
        verify_and_deliver(req, _user(admin), patient, method="mail")
        services.transition(req, S.FULFILLED, _user(admin))

    act(app, ref, fulfil)
    assert kinds(app, ref) == ["acknowledgment", "fulfilment"]  # verifying and in review leave no letter
    html = stored(app, ref)[1][3]
    words = text_of(html)
    assert "Sent by post" in words and "1 Main St<br>Ojai, CA 93023" in html
    assert "42 CFR part 2" not in words  # no redisclosure notice for the patient's own copy


def test_a_partial_release_says_why_part_is_missing(app, people, make_request, archive_patient):
    patient = archive_patient()
    ref = make_request(people["requester"])

    def fulfil(req):
        verify_and_deliver(req, _user(people["admin"]), patient, method="pickup")
        services.transition(req, S.PARTIALLY_FULFILLED, _user(people["admin"]),
                            MoveInput(reason="some_records_lost"))

    act(app, ref, fulfil)
    words = text_of(stored(app, ref)[-1][3])
    assert "Picked up" in words and "Some of the records were destroyed" in words


def test_cfr2_32_the_cover_letter_carries_the_2024_notice_and_the_consents_scope(app, people, make_request,
                                                                                   archive_patient):
    """42 CFR 2.32(a)(1) (Statement 1 of the 2024 rule) and 2.32(b): the letter the records travel with
    goes to the consent's recipient, quotes the statement in force and explains the consent's scope; the
    requester's own letter says where the records went."""
    patient = archive_patient()
    ref = make_request(people["requester"], request_type="third_party", delivery="mail",
                       recipient_name="Dr. Rivera", recipient_address="5 Clinic Way\nVentura, CA",
                       purpose="Continuing care")
    owner, admin = people["requester"], people["admin"]

    def fulfil(req):
        consents.sign(req, _user(owner), {**consents.prefill(req), "revocation_acknowledged": True,
                                          "expires_on": date.today() + timedelta(days=300),
                                          "signed_name": "Jordan Example"})
        verify_and_deliver(req, _user(admin), patient, method="mail")
        services.transition(req, S.FULFILLED, _user(admin))

    act(app, ref, fulfil)
    letters_stored = stored(app, ref)
    kind, _type, visibility, cover = next(row for row in letters_stored if row[0] == "disclosure")
    assert visibility == "internal"  # staff print it and enclose it with the records
    words = text_of(cover)
    assert "Dear Dr. Rivera," in words and "5 Clinic Way<br>Ventura, CA" in cover
    statement = consents.NOTICE_2024.text["en"]
    for line in statement.split("\n"):
        assert " ".join(line.replace("'", "&#39;").split()) in words
    assert "89 FR 12472" in words and "42 CFR §2.32(b)" in words and "Continuing care" in words
    final = text_of(letters_stored[-1][3])
    assert "we sent the records to Dr. Rivera" in final and "Statement 1" not in final


def test_letters_never_go_in_emails(app, people, make_request):
    ref = make_request(people["requester"])
    act(app, ref, lambda req: services.transition(req, S.AWAITING_REQUESTER, _user(people["admin"]),
                                                  MoveInput(message="Secret-ish request text 4711")))
    with app.app_context():
        for mail in db.session.execute(select(OutboxMessage)).scalars():
            assert "4711" not in mail.body and "Jordan" not in mail.body and "<html" not in mail.body


# --- Reading a letter --------------------------------------------------------------------------

def _letter_uid(app, ref: str, kind: str = "acknowledgment") -> str:
    with app.app_context():
        req = _load(ref)
        for doc in db.session.execute(select(RequestDocument).where(
                RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)).scalars():
            if doc.filename.startswith(kind):
                return doc.uid
    raise AssertionError(f"no {kind} letter")


def test_the_requester_reads_and_prints_their_letter_under_a_strict_policy(app, client, people, make_request):
    ref = make_request(people["requester"])
    uid = _letter_uid(app, ref)
    assert login(client, people["requester"].email).status_code == 302
    page = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert f'href="/my/requests/{ref}/letters/{uid}"' in page and "We received your request" in page
    response = client.get(f"/my/requests/{ref}/letters/{uid}")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy and "script-src" not in policy
    assert response.headers["Cache-Control"] == "no-store"
    assert "Jordan Example" in response.get_data(as_text=True)
    with app.app_context():
        audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.letter_viewed")).scalar_one()
        details = json.loads(audit.details)
        assert details["by"] == "requester" and "Jordan" not in audit.details
        assert audit.actor_id == people["requester"].id


def test_staff_read_letters_from_the_queue_page(app, client, people, make_request):
    ref = make_request(people["requester"])
    uid = _letter_uid(app, ref)
    assert login(client, people["admin"].email).status_code == 302
    page = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert f'href="/queue/requests/{ref}/letters/{uid}"' in page
    response = client.get(f"/queue/requests/{ref}/letters/{uid}")
    assert response.status_code == 200 and "sandbox" in response.headers["Content-Security-Policy"]
    # The app's own pages keep the app's policy.
    assert "sandbox" not in client.get(f"/queue/requests/{ref}").headers["Content-Security-Policy"]


def test_someone_elses_letter_or_another_document_is_404(app, client, people, make_request):
    mine = make_request(people["requester"])
    theirs = make_request(people["other"])
    their_letter = _letter_uid(app, theirs)
    with app.test_request_context():
        req = _load(mine)
        internal = documents.store_document(req, FileKind.INTERNAL, "notes.pdf", b"%PDF-1.4 internal",
                                            _user(people["admin"]), Visibility.INTERNAL)
        internal_uid = internal.uid
        db.session.commit()
    assert login(client, people["requester"].email).status_code == 302
    for path in (f"/my/requests/{theirs}/letters/{their_letter}",  # their request
                 f"/my/requests/{mine}/letters/{their_letter}",  # their letter on my request's URL
                 f"/my/requests/{mine}/letters/{internal_uid}",  # not a letter
                 f"/my/requests/{mine}/letters/AAAAAAAAAAAAAAAAAAAAAA",  # a guess
                 f"/my/requests/{mine}/letters/' OR 1=1 --",
                 f"/my/requests/{mine}/letters/{'x' * 300}"):
        assert client.get(path).status_code == 404, path
    # Staff: a document that is not a letter is not shown as a page either.
    staff = client.application.test_client()
    assert login(staff, people["admin"].email).status_code == 302
    assert staff.get(f"/queue/requests/{mine}/letters/{internal_uid}").status_code == 404
    assert staff.get(f"/queue/requests/{mine}/letters/{their_letter}").status_code == 404


def test_the_requester_sees_their_letters_not_internal_documents(app, client, people, make_request):
    ref = make_request(people["requester"])
    with app.test_request_context():
        documents.store_document(_load(ref), FileKind.INTERNAL, "working-notes.pdf", b"%PDF-1.4 x",
                                 _user(people["admin"]), Visibility.INTERNAL)
        db.session.commit()
        req = _load(ref)
        assert [row["title"] for row in fees.letter_links(req, staff=False)] == ["We received your request"]
        assert len(fees.letter_links(req, staff=True)) == 1  # the internal file is not a letter
    assert login(client, people["requester"].email).status_code == 302
    page = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    section = re.search(r'<section class="mb-4" aria-labelledby="letters-heading".*?</section>', page, re.S).group(0)
    assert section.count("<li>") == 1 and "working-notes" not in section
