"""Licensed professionals in denials and reviews (45 CFR 164.524(a)(3), (a)(4), (d)(4); H&S 123115(b)),
through the pages: a clinical denial is a licensed professional's, who may be an outside one recorded by
staff with their written decision; a review is by a licensed professional who took no part, so a
one-clerk facility records an outside reviewer; and the patient may designate a licensed professional to
receive the records instead, whom the disclosure gate then lets them go to."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from io import BytesIO

import pytest
import time_machine
from sqlalchemy import select

from intake.extensions import db
from intake.records import services
from intake.records.documents import content_of
from intake.records.models import (
    Disclosure,
    FileKind,
    LicensedProfessional,
    RecordsRequest,
    RequestDocument,
    RequestStatus,
)
from intake.records.services import MoveInput
from intake.users.models import Role, User

from .conftest import csrf_token, login

S = RequestStatus
NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)
PDF = b"%PDF-1.7\n% a signed decision\n%%EOF\n"
OUTSIDE = {"name": "Casey Outside", "licence_type": "PsyD", "licence_number": "PSY 12345", "licence_state": "CA",
           "decided_on": "2026-06-12", "decision": "endangerment"}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOON, tick=False):
        yield


@pytest.fixture()
def people(make_user):
    # The facility's only records clerk, with no licence; the requester.
    return {"clerk": make_user(Role.RECORDS_CLERK), "requester": make_user(Role.REQUESTER)}


def signed_in(app, user):
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    return browser


def _load(ref: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()


def state(app, ref: str, *names: str):
    with app.app_context():
        req = _load(ref)
        return tuple(getattr(req, name) for name in names)


def act(app, ref: str, fn):
    with app.app_context():
        result = fn(_load(ref))
        db.session.commit()
        return result


def verified(app, ref: str, clerk: User, patient_id: int) -> None:
    act(app, ref, lambda req: services.transition(req, S.VERIFYING, db.session.get(User, clerk.id)))
    act(app, ref, lambda req: services.transition(req, S.IN_REVIEW, db.session.get(User, clerk.id), MoveInput(
        verification_method="photo_id", archived_patient_id=patient_id)))


def move(browser, app, ref: str, target: str, **fields):
    version = state(app, ref, "version")[0]
    data = {"target": target, f"move-{target}-version": str(version),
            f"move-{target}-csrf_token": csrf_token(browser, "/account")}
    data.update({f"move-{target}-{k}": v for k, v in fields.items()})
    return browser.post(f"/queue/requests/{ref}/move", data=data)


def outside(browser, app, ref: str, role: str, file: bytes | None = PDF, **changes):
    version = state(app, ref, "version")[0]
    values = {**OUTSIDE, **changes}
    data = {f"professional-{role}-{k}": v for k, v in values.items()}
    data.update({f"professional-{role}-version": str(version), "csrf_token": csrf_token(browser, "/account")})
    if file is not None:
        data[f"professional-{role}-file"] = (BytesIO(file), "decision.pdf")
    return browser.post(f"/queue/requests/{ref}/professional/{role}", data=data,
                        content_type="multipart/form-data")


def text(response) -> str:
    return html.unescape(response.get_data(as_text=True))


def test_hipaa_164_524_a3_a_clinical_denial_needs_a_licensed_professional(app, people, make_request,
                                                                        archive_patient):
    ref = make_request(people["requester"])
    verified(app, ref, people["clerk"], archive_patient())
    clerk = signed_in(app, people["clerk"])
    refused = move(clerk, app, ref, "denied", reason="endangerment")
    assert refused.status_code == 400 and "licensed health care professional" in text(refused)
    assert state(app, ref, "status") == (S.IN_REVIEW,)
    # Bad and hostile input for the outside professional: nothing recorded, messages by the fields.
    for changes, file, message in (
            ({}, None, "Attach the professional's written decision"),
            ({"licence_type": "other"}, PDF, "licensed health care professional"),
            ({"licence_state": "ZZ"}, PDF, "Choose a state from the list"),
            ({"decided_on": "2026-07-01"}, PDF, "cannot be in the future"),
            ({"decision": "psychotherapy_notes"}, PDF, "Choose the decision from the list"),
            ({"name": "<script>alert(1)</script>"}, PDF, "A name has letters"),
            ({}, b"MZ not a pdf", "Only PDF, PNG and JPEG")):
        response = outside(clerk, app, ref, "denial", file=file, **changes)
        assert response.status_code == 400 and message in text(response), (changes, message)
        assert "<script>alert(1)</script>" not in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(LicensedProfessional)).first() is None
    assert outside(clerk, app, ref, "denial").status_code == 302
    # A different reason than the professional decided is still refused; the same one goes through.
    assert move(clerk, app, ref, "denied", reason="representative_harm").status_code == 400
    assert move(clerk, app, ref, "denied", reason="endangerment").status_code == 302
    assert state(app, ref, "status", "decision_licence") == (S.DENIED, "PsyD PSY 12345 CA")
    page = text(clerk.get(f"/queue/requests/{ref}"))
    assert "Casey Outside" in page and 'id="decision-licence"' in page
    with app.app_context():
        doc = db.session.execute(select(RequestDocument).where(RequestDocument.kind == FileKind.PROFESSIONAL)
                                 ).scalar_one()
        assert content_of(doc) == PDF and doc.visibility.value == "internal"


def test_hipaa_164_524_a3_other_grounds_need_no_licence(app, people, make_request):
    ref = make_request(people["requester"])
    clerk = signed_in(app, people["clerk"])
    act(app, ref, lambda req: services.transition(req, S.VERIFYING, db.session.get(User, people["clerk"].id)))
    assert move(clerk, app, ref, "denied", reason="identity_not_verified").status_code == 302
    assert state(app, ref, "decision_licence") == (None,)


def _denied_by_outside(app, people, make_request, archive_patient) -> str:
    ref = make_request(people["requester"])
    verified(app, ref, people["clerk"], archive_patient())
    clerk = signed_in(app, people["clerk"])
    assert outside(clerk, app, ref, "denial").status_code == 302
    assert move(clerk, app, ref, "denied", reason="endangerment").status_code == 302
    return ref


def test_hipaa_164_524_d4_a_one_clerk_facility_decides_a_review(app, people, make_request, archive_patient):
    ref = _denied_by_outside(app, people, make_request, archive_patient)
    requester = signed_in(app, people["requester"])
    path = f"/my/requests/{ref}"
    assert requester.post(f"{path}/review", data={"csrf_token": csrf_token(requester, path)}).status_code == 303
    clerk = signed_in(app, people["clerk"])
    page = text(clerk.get(f"/queue/requests/{ref}"))
    assert "Record the review decision: The review is decided by a licensed health care professional" in page
    # The professional who denied cannot review it.
    same = outside(clerk, app, ref, "review", decision="overturned")
    assert same.status_code == 400 and "did not take part in the denial" in text(same)
    assert outside(clerk, app, ref, "review", name="Robin Reviewer", licence_type="MD", licence_number="A55555",
                   decision="overturned").status_code == 302
    wrong = move(clerk, app, ref, "review_decided", review_outcome="upheld", message="Upheld.")
    assert wrong.status_code == 400 and "Record the outcome the outside professional decided" in text(wrong)
    assert move(clerk, app, ref, "review_decided", review_outcome="overturned",
                message="The review overturned the denial.").status_code == 302
    assert state(app, ref, "status", "review_outcome", "review_licence") == (S.REVIEW_DECIDED, "overturned",
                                                                            "MD A55555 CA")


def test_hsc_123115_b_the_patient_designates_a_professional_who_receives_the_records(app, people, make_request,
                                                                                   archive_patient):
    ref = _denied_by_outside(app, people, make_request, archive_patient)
    requester = signed_in(app, people["requester"])
    assert "Name a professional" in text(requester.get(f"/my/requests/{ref}"))
    path = f"/my/requests/{ref}/designate"
    form = {"name": "Dr. Sam Chosen", "licence_type": "MD", "licence_number": "G12345", "licence_state": "CA",
            "address": "9 Clinic Road\nSacramento, CA 95814"}
    bad = requester.post(path, data={**form, "licence_type": "RN", "csrf_token": csrf_token(requester, path)})
    assert bad.status_code == 400 and "§123115(b)" in text(bad)
    no_address = requester.post(path, data={**form, "address": "", "csrf_token": csrf_token(requester, path)})
    assert no_address.status_code == 400 and "Enter the address" in text(no_address)
    assert requester.post(path, data={**form, "csrf_token": csrf_token(requester, path)}).status_code == 303
    clerk = signed_in(app, people["clerk"])
    assert move(clerk, app, ref, "in_review", note="Reopened to send the records to the designated MD.").status_code \
        == 302
    # The patient's own copy stays denied; the records go to the professional, by post, not by download.
    version = state(app, ref, "version")[0]
    token = csrf_token(clerk, "/account")
    download = clerk.post(f"/queue/requests/{ref}/delivery", data={
        "delivery-method": "download", "delivery-version": str(version), "delivery-csrf_token": token})
    assert download.status_code == 400
    mailed = clerk.post(f"/queue/requests/{ref}/delivery", data={
        "delivery-method": "mail", "delivery-version": str(version), "delivery-csrf_token": token})
    assert mailed.status_code == 302
    with app.app_context():
        [logged] = db.session.execute(select(Disclosure)).scalars().all()
        assert (logged.basis, logged.recipient_name) == ("designated", "Dr. Sam Chosen")
        assert "Sacramento" in logged.recipient_address
    act(app, ref, lambda req: services.transition(req, S.FULFILLED, db.session.get(User, people["clerk"].id)))
    with app.app_context():
        req = _load(ref)
        letters = {d.filename.split("-", 1)[0]: content_of(d).decode() for d in db.session.execute(
            select(RequestDocument).where(RequestDocument.request_id == req.id,
                                          RequestDocument.kind == FileKind.LETTER)).scalars()}
    assert "Dear Dr. Sam Chosen," in letters["disclosure"] and "123115(b)" in letters["disclosure"]
    assert "we sent the records to Dr. Sam Chosen" in letters["fulfilment"]


def test_a_designation_is_refused_without_a_clinical_denial(app, people, make_request):
    ref = make_request(people["requester"])
    requester = signed_in(app, people["requester"])
    path = f"/my/requests/{ref}/designate"
    assert "applies only after" in text(requester.get(path))
    response = requester.post(path, data={"name": "Dr. Sam Chosen", "licence_type": "MD",
                                          "licence_number": "G12345", "licence_state": "CA", "address": "9 Road",
                                          "csrf_token": csrf_token(requester, path)})
    assert response.status_code == 400 and "denial on clinical grounds" in text(response)
    assert signed_in(app, people["clerk"]).get(path).status_code == 403


def test_the_clinical_denial_reasons_are_offered_in_one_fixed_order(app):
    """The reasons come from a set; offered in its order, each worker showed them in its own."""
    from intake.records.labels import DENIAL_LABELS
    from intake.records.professional_forms import decision_form
    from intake.records.workflow import REVIEWABLE_REASONS

    with app.test_request_context("/"):
        offered = [choice.value for choice in decision_form("denial").decision.choices][1:]
    assert offered == [str(code) for code in DENIAL_LABELS if code in REVIEWABLE_REASONS]
    assert len(offered) == len(REVIEWABLE_REASONS)
