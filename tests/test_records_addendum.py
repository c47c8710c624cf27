"""Addenda (California Health & Safety Code §123111): at most 250 words, counted in words (not characters);
an accepted addendum is attached to the record and goes with every later disclosure of it (§123111(b))."""

from __future__ import annotations

from sqlalchemy import select

from intake.extensions import db
from intake.records import consents, deadlines, services
from intake.records.documents import content_of
from intake.records.models import Disclosure, FileKind, RecordsRequest, RequestDocument, RequestStatus
from intake.records.services import MoveInput
from intake.records.submission import addendum_words
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, csrf_token, login, verify_and_deliver
from .test_records_portal import NEW, form

S = RequestStatus
LONG_WORD = "Pneumonoultramicroscopicsilicovolcanoconiosis"  # 45 letters


def test_hsc_123111_the_addendum_limit_is_counted_in_words(app, client, make_user):
    """250 long words (over 11,000 characters, far past the old 3,000-character cap) are accepted;
    251 words are refused with the count; punctuation alone is not a word."""
    user = make_user(Role.REQUESTER)
    assert login(client, user.email).status_code == 302
    valid = " ".join([LONG_WORD] * 250)
    assert len(valid) > 11_000 and addendum_words(valid) == 250 and addendum_words("a - b —") == 2
    response = client.post(NEW, data={**form(request_type="addendum", addendum_text=valid),
                                      "csrf_token": csrf_token(client, NEW)})
    assert response.status_code == 303
    too_many = client.post(NEW, data={**form(request_type="addendum", addendum_text=valid + " more"),
                                      "csrf_token": csrf_token(client, NEW)})
    assert too_many.status_code == 400 and "at most 250 words; this one has 251" in too_many.get_data(as_text=True)
    with app.app_context():
        assert len(db.session.execute(select(RecordsRequest)).scalars().all()) == 1


def _load(ref: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()


def test_hsc_123111_b_an_accepted_addendum_goes_with_every_later_disclosure(app, make_user, make_request,
                                                                          archive_patient):
    requester, admin = make_user(Role.REQUESTER), make_user(FULL_ADMIN)
    pid = archive_patient()
    statement = "I left the facility on April 15, not April 30."
    addendum = make_request(requester, request_type="addendum", addendum_text=statement)
    third = make_request(requester, request_type="third_party", recipient_name="Dr. Ana Ruiz",
                         recipient_address="1 Main St, Fresno", purpose="Continuing treatment")
    with app.app_context():
        staff = db.session.get(User, admin.id)
        req = _load(addendum)
        verify_and_deliver(req, staff, pid)  # the acceptance letter goes to the patient
        services.transition(req, S.FULFILLED, staff, MoveInput())
        req = _load(third)
        consents.enter_paper(req, staff, {
            "patient_name": "Jordan Example", "disclosing_program": "The Canyon at Peace Park",
            "information": "All records", "recipient_name": "Dr. Ana Ruiz", "recipient_address": "1 Main St, Fresno",
            "purpose": "Continuing treatment", "revocation_acknowledged": True, "expires_on": None,
            "expiry_event": "The end of treatment", "signed_name": "Jordan Example", "signed_on": deadlines.today()})
        db.session.commit()
    with app.app_context():
        verify_and_deliver(_load(third), db.session.get(User, admin.id), pid)
        db.session.commit()
        [logged] = db.session.execute(select(Disclosure)).scalars().all()
        assert logged.addenda_count == 1
        req = _load(third)
        cover = next(content_of(d).decode() for d in db.session.execute(select(RequestDocument).where(
            RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)).scalars()
            if d.filename.startswith("disclosure"))
    assert "Addenda to the record" in cover and statement in cover and "123111(b)" in cover
