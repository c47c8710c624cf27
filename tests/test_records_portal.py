"""The requester portal (/my/requests/): the request form through real HTTP (each type, bad and
hostile input, a Hypothesis property test), who may see what (404 for anything not one's own),
the page of a request (timeline, due date, audit of every view), messages, the reply that resumes
a waiting request, withdrawal and the request for a review."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import common, services
from intake.records.models import EventKind, RecordsRequest, RequestEvent, RequestStatus
from intake.records.services import MoveInput
from intake.records.timeline import describe
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, LICENCE, csrf_token, login

S = RequestStatus
NEW = "/my/requests/new"
HOSTILE = "<script>alert(1)</script>'; DROP TABLE records_requests; --"
TEXT_FIELDS = ("patient_name", "patient_former_names", "requester_name", "recipient_name", "recipient_address",
               "purpose", "addendum_text", "mail_address", "details", "attestation_name")


def form(**overrides) -> dict:
    """What a browser posts for a valid copy request (every field as text)."""
    data = {
        "patient_name": "Jordan Example", "patient_former_names": "", "patient_dob": "1980-05-17",
        "stay_from": "2017-03-01", "stay_to": "2017-04-15", "relationship_to_patient": "self",
        "requester_name": "", "request_type": "copy", "recipient_name": "", "recipient_address": "",
        "purpose": "", "addendum_text": "", "scope": "everything", "scope_from": "", "scope_to": "",
        "record_format": "electronic", "delivery": "secure_download", "mail_address": "", "details": "",
        "attest": "y", "attestation_name": "Jordan Example",
    }
    data.update(overrides)
    data.update(dob_parts(data.pop("patient_dob", None)))
    return {key: value for key, value in data.items() if value is not None}


def dob_parts(value) -> dict:
    """The date of birth as the form posts it: three boxes, day, month and year. A "YYYY-MM-DD"
    string or a (day, month, year) tuple is split; anything else goes into the year box whole."""
    if value is None:
        return {}
    if isinstance(value, tuple):
        day, month, year = value
    elif re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        year, month, day = value.split("-")
    elif value == "":
        day = month = year = ""
    else:
        day, month, year = "1", "1", value
    return {"patient_dob-day": day, "patient_dob-month": month, "patient_dob-year": year}


@pytest.fixture()
def requester(client, make_user):
    user = make_user(Role.REQUESTER)
    assert login(client, user.email).status_code == 302
    return user


@pytest.fixture()
def admin(make_user):
    return make_user(FULL_ADMIN, licence=LICENCE)


def submit(client, data: dict, token: bool = True):
    if token:
        data = {**data, "csrf_token": csrf_token(client, NEW)}
    return client.post(NEW, data=data)


def stored_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count(RecordsRequest.id))).scalar_one()


def load(app, reference: str) -> RecordsRequest:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        for column in ("patient_name", "recipient_name", "addendum_text", "details", "mail_address"):
            getattr(req, column)  # decrypt before leaving the session
        db.session.expunge(req)
        return req


def reference_of(response) -> str:
    assert response.status_code == 303, response.get_data(as_text=True)[:2000]
    match = re.fullmatch(r"/my/requests/([A-Za-z0-9_-]{16,64})", response.headers["Location"])
    assert match, response.headers["Location"]
    return match.group(1)


def move(app, staff: User, reference: str, target: RequestStatus, **given) -> None:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        services.transition(req, target, db.session.get(User, staff.id), MoveInput(**given))
        db.session.commit()


def events_of(app, reference: str) -> list[tuple[str, str | None]]:
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        return [(e.kind.value, describe(e, "en").full) for e in db.session.execute(
            select(RequestEvent).where(RequestEvent.request_id == req.id).order_by(RequestEvent.id)).scalars()]


def token_for(client, reference: str) -> str:
    return csrf_token(client, f"/my/requests/{reference}")


def page(response) -> str:
    return response.get_data(as_text=True)


# Submitting -----------------------------------------------------------------------------------

TYPES = {
    "copy": {},
    "third_party": {"recipient_name": "Dr. Ana Ruiz", "recipient_address": "1 Main St\nFresno, CA 93701",
                    "purpose": "Continuing treatment", "delivery": "mail", "mail_address": ""},
    "inspection": {"delivery": "", "record_format": ""},
    "accounting": {"scope": "dates", "scope_from": "2017-03-01", "scope_to": "2017-04-01"},
    "addendum": {"addendum_text": "My discharge date is wrong: I left on April 15.", "scope": "kinds",
                 "scope_kinds": ["discharge_summary", "progress_notes"]},
}


@pytest.mark.parametrize("request_type", list(TYPES))
def test_each_request_type_goes_through_the_form(app, client, requester, request_type):
    response = submit(client, form(request_type=request_type, **TYPES[request_type]))
    reference = reference_of(response)
    req = load(app, reference)
    assert req.request_type == request_type and req.owner_id == requester.id and req.status == S.SUBMITTED
    assert req.patient_name == "Jordan Example"
    detail = client.get(response.headers["Location"])
    body = page(detail)
    assert detail.status_code == 200
    assert req.human_ref in body and "Received" in body and "How we worked out this date" in body
    assert "has been received" in body  # the flash
    if request_type == "addendum":
        assert req.kinds == ["discharge_summary", "progress_notes"]
        assert "My discharge date is wrong" in body
    if request_type == "third_party":
        assert req.recipient_name == "Dr. Ana Ruiz" and "Dr. Ana Ruiz" in body
    if request_type == "inspection":
        assert req.delivery == "pickup"


def test_representative_gives_their_own_name(app, client, requester):
    response = submit(client, form(relationship_to_patient="personal_representative", requester_name=""))
    assert response.status_code == 400
    assert "Enter your own full name" in page(response)
    assert stored_count(app) == 0
    response = submit(client, form(relationship_to_patient="personal_representative",
                                   requester_name="Casey Guardian"))
    assert load(app, reference_of(response)).requester_name == "Casey Guardian"


def test_acknowledgment_is_queued_without_the_patient_name(app, client, requester):
    response = submit(client, form(patient_name="Zebulon Quintavious", attestation_name="Zebulon Quintavious"))
    req = load(app, reference_of(response))
    with app.app_context():
        mail = db.session.execute(select(OutboxMessage)).scalar_one()
        assert mail.recipient == requester.email
        assert req.human_ref in mail.subject
        for text in (mail.subject, mail.body):
            assert "Zebulon" not in text and "Quintavious" not in text and "1980" not in text
        assert f"/my/requests/{req.reference}" in mail.body
    # The flash on the next page says nothing about the patient either.
    flash = page(client.get(response.headers["Location"])).split('role="status"')[1].split("</div>")[0]
    assert "Zebulon" not in flash and req.human_ref in flash


def test_the_form_keeps_what_was_typed_and_shows_every_problem(app, client, requester):
    response = submit(client, form(patient_dob="2999-01-01", attest=None, details="Please hurry",
                                   stay_to="2019-01-01"))
    body = page(response)
    assert response.status_code == 400
    assert "The date of birth cannot be in the future." in body
    assert "a stay cannot end after that" in body
    assert "Tick the box to confirm the statement." in body
    assert 'value="Jordan Example"' in body and "Please hurry" in body and 'value="2999"' in body
    assert stored_count(app) == 0


BAD_INPUT = [
    ({"patient_dob": (date.today() + timedelta(days=2)).isoformat()}, "patient_dob",
     "The date of birth cannot be in the future."),
    ({"stay_from": "2018-11-11", "stay_to": "2018-12-01"}, "stay_from", "a stay cannot start after that"),
    ({"stay_to": "2018-11-11"}, "stay_to", "a stay cannot end after that"),
    ({"attest": None}, "attest", "Tick the box to confirm the statement."),
    ({"attestation_name": ""}, "attestation_name", "Type your full name as your signature."),
    ({"delivery": "mail", "mail_address": "  "}, "mail_address", "Enter the postal address"),
    ({"request_type": "addendum", "addendum_text": "word " * 251}, "addendum_text", "at most 250 words"),
    ({"request_type": "third_party"}, "recipient_name", "Enter who should receive the copy."),
    ({"patient_name": ""}, "patient_name", "Enter the patient&#39;s full name."),
    ({"patient_dob": ""}, "patient_dob", "Enter the patient&#39;s date of birth."),
    # Three boxes: each problem is named (GOV.UK's date input messages).
    ({"patient_dob": ("17", "", "1980")}, "patient_dob", "The patient&#39;s date of birth must include a month."),
    ({"patient_dob": ("", "", "1980")}, "patient_dob", "must include a day and a month."),
    ({"patient_dob": ("17", "May", "1980")}, "patient_dob", "Type the day, month and year as numbers"),
    ({"patient_dob": ("17", "13", "1980")}, "patient_dob", "The month must be a number from 1 to 12."),
    ({"patient_dob": ("30", "2", "1980")}, "patient_dob", "Check the day: that month has no day 30."),
    ({"patient_dob": ("8", "12", "517")}, "patient_dob", "Type the year with four digits, for example 1980."),
    ({"patient_dob": "1899-12-31"}, "patient_dob", "The year of birth is 1899: it must be 1900 or later."),
    ({"request_type": "everything_please"}, "request_type", "Choose what you are asking for."),
    ({"request_type": None}, "request_type", "Choose what you are asking for."),
    ({"relationship_to_patient": "lawyer"}, "relationship_to_patient", "Choose how you are related"),
    ({"scope": "all"}, "scope", "Choose which records you want."),
    ({"scope": "kinds", "scope_kinds": ["x-rays"]}, "scope_kinds", "Choose from the list."),
    ({"scope": "kinds"}, "scope_kinds", "Choose at least one kind of document."),
    ({"scope": "dates"}, "scope_from", "Give at least one of the two dates."),
    ({"record_format": "fax"}, "record_format", "Choose a format from the list."),
    ({"delivery": "pigeon"}, "delivery", "Choose how you want to receive the records."),
    ({"delivery": ""}, "delivery", "Choose how you want to receive the records."),
    ({"details": "x" * 50_000}, "details", "Please keep this under 2000 characters."),
    ({"patient_name": "y" * 50_000}, "patient_name", "Please keep this under 200 characters."),
    ({"mail_address": "z" * 50_000, "delivery": "mail"}, "mail_address", "Please keep this under 500 characters."),
    ({"patient_name": "Jordan\x00Example"}, "patient_name", "invisible control characters"),
]


@pytest.mark.parametrize(("overrides", "field", "message"), BAD_INPUT)
def test_bad_input_is_explained_next_to_its_field_and_nothing_is_stored(app, client, requester, overrides, field,
                                                                        message):
    response = submit(client, form(**overrides))
    body = page(response)
    assert response.status_code == 400
    error = re.search(rf'<div id="{field}-error"[^>]*>(.*?)</div>', body, re.S)
    assert error, f"no error shown next to {field}"
    assert message in error.group(1)
    assert stored_count(app) == 0
    with app.app_context():
        assert db.session.execute(select(func.count(OutboxMessage.id))).scalar_one() == 0


def test_a_forged_choice_is_never_echoed_back(app, client, requester):
    response = submit(client, form(request_type="<b>bogus</b>", scope="kinds", scope_kinds=["<i>forged</i>"]))
    body = page(response)
    assert response.status_code == 400
    assert "bogus" not in body and "forged" not in body


def test_html_and_sql_in_every_text_field_are_stored_as_text_and_shown_escaped(app, client, requester):
    values = {name: f"{HOSTILE} {name}" for name in TEXT_FIELDS}
    values["addendum_text"] = f"{HOSTILE} addendum_text"
    response = submit(client, form(request_type="third_party", relationship_to_patient="personal_representative",
                                   delivery="mail", **values))
    req = load(app, reference_of(response))
    assert req.patient_name == f"{HOSTILE} patient_name"
    assert req.recipient_name == f"{HOSTILE} recipient_name"
    assert req.details == f"{HOSTILE} details"
    assert stored_count(app) == 1  # the table is still there
    body = page(client.get(f"/my/requests/{req.reference}"))
    assert "<script>alert(1)</script>" not in body
    assert html.escape(f"{HOSTILE} patient_name", quote=False).replace("'", "&#39;") in body


def test_hostile_values_are_kept_escaped_when_the_form_is_refused(app, client, requester):
    response = submit(client, form(patient_name=HOSTILE, patient_dob="2999-01-01"))
    body = page(response)
    assert response.status_code == 400
    assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert stored_count(app) == 0


def test_a_post_without_csrf_token_is_refused(app, client, requester):
    response = submit(client, form(), token=False)
    assert response.status_code == 400
    assert "did not come from this site" in page(response)
    assert stored_count(app) == 0


def test_unverified_requester_cannot_submit_and_is_told_why(app, client, make_user):
    user = make_user(Role.REQUESTER, verified=False)
    assert login(client, user.email).status_code == 302
    told = client.get(NEW)
    assert told.status_code == 403  # not yet, and the page says why and what to do (issue 19)
    assert "Confirm your e-mail address first" in page(told) and user.email in page(told)
    assert 'action="/account/verify/resend"' in page(told) and "Send the link again" in page(told)
    token = csrf_token(client, "/account")
    assert client.post(NEW, data={**form(), "csrf_token": token}).status_code == 403
    resent = client.post("/account/verify/resend", data={"csrf_token": token})
    assert resent.status_code == 302
    index = client.get("/my/requests/")
    assert index.status_code == 200
    assert "you must verify your e-mail address" in page(index)
    assert 'href="/my/requests/new"' not in page(index)
    assert stored_count(app) == 0


class Hostile:
    text = st.one_of(
        st.text(st.characters(exclude_categories=("Cs",)), max_size=60),
        st.sampled_from(["", " ", HOSTILE, "\x00", "x" * 3000, "‮Jordan", "\u200b", "%00", "{{7*7}}"]),
    )
    dates = st.one_of(st.dates(min_value=date(1, 1, 1)).map(date.isoformat), text,
                      st.sampled_from(["2018-11-10", "2018-11-11", "0000-00-00", "1980-13-01", "99999-01-01"]))


FREE_TEXT = ("patient_former_names", "requester_name", "recipient_name", "recipient_address", "purpose",
             "addendum_text", "mail_address", "details")
CHOICES = {
    "relationship_to_patient": ["self", "personal_representative", "deceased_representative"],
    "request_type": list(TYPES),
    "scope": ["everything", "dates", "kinds"],
    "record_format": ["electronic", "paper"],
    "delivery": ["secure_download", "mail", "pickup"],
}
DATE_FIELDS = ("patient_dob", "stay_from", "stay_to", "scope_from", "scope_to")


@st.composite
def hostile_forms(draw) -> dict:
    """A plausible request with random choices and hostile free text, then up to three fields
    (any of them) replaced by something hostile: some pass, many must be refused."""
    data = form(**{name: draw(st.sampled_from(values)) for name, values in CHOICES.items()})
    for name in FREE_TEXT:
        data[name] = draw(Hostile.text)
    data["scope_kinds"] = draw(st.lists(st.sampled_from(["discharge_summary", "medications", "billing"]),
                                        max_size=3))
    for name in draw(st.sets(st.sampled_from(sorted(set(data) | {"attest"})), max_size=3)):
        if name in DATE_FIELDS:
            data[name] = draw(Hostile.dates)
        elif name == "attest":
            data[name] = draw(st.sampled_from(["", "false", "on", HOSTILE]))
        elif name == "scope_kinds":
            data[name] = draw(st.lists(Hostile.text, max_size=3))
        else:
            data[name] = draw(Hostile.text)
    return data


def test_property_the_form_answers_303_or_400_never_500(app, client, requester):
    """Hypothesis drives the form; every answer is a redirect to a stored, readable request or
    a 400 with nothing stored, and both happen."""
    outcomes = set()

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=hostile_forms())
    def post(data):
        before = stored_count(app)
        response = client.post(NEW, data={**data, "csrf_token": csrf_token(client, NEW)})
        assert response.status_code in (303, 400), (response.status_code, data)
        outcomes.add(response.status_code)
        if response.status_code == 303:
            reference = reference_of(response)
            assert stored_count(app) == before + 1
            req = load(app, reference)
            assert req.owner_id == requester.id
            assert req.patient_name == data["patient_name"].strip()
            assert client.get(f"/my/requests/{reference}").status_code == 200
        else:
            assert stored_count(app) == before

    post()
    assert outcomes == {303, 400}


# Who sees what ----------------------------------------------------------------------------------

def test_the_list_shows_only_my_requests_newest_first(app, client, requester, make_user, make_request):
    first = make_request(requester)
    second = make_request(requester, request_type="accounting")
    someone_else = make_request(make_user(Role.REQUESTER))
    body = page(client.get("/my/requests/"))
    assert body.index(second) < body.index(first)
    assert someone_else not in body and load(app, someone_else).human_ref not in body
    assert "Accounting of disclosures" in body and "Received" in body
    assert "Jordan" not in body  # the list shows codes, not what is encrypted


def test_the_empty_list_points_to_start_a_request(client, requester):
    body = page(client.get("/my/requests/"))
    assert "You have not made a records request yet." in body
    assert 'href="/my/requests/new"' in body


def test_another_requesters_request_is_404_on_every_route(app, client, requester, make_user, make_request):
    reference = make_request(make_user(Role.REQUESTER))
    token = csrf_token(client, "/account")
    base = f"/my/requests/{reference}"
    assert client.get(base).status_code == 404
    assert client.post(f"{base}/messages", data={"csrf_token": token, "body": "hello"}).status_code == 404
    assert client.post(f"{base}/withdraw", data={"csrf_token": token, "confirm": "y"}).status_code == 404
    assert client.post(f"{base}/review", data={"csrf_token": token}).status_code == 404
    req = load(app, reference)
    assert req.status == S.SUBMITTED and len(events_of(app, reference)) == 1
    with app.app_context():
        viewed = db.session.execute(select(func.count(AuditEvent.seq))
                                    .where(AuditEvent.action == "request.viewed")).scalar_one()
        assert viewed == 0


@pytest.mark.parametrize("path", ["/my/requests/AAAAAAAAAAAAAAAAAAAAAA", "/my/requests/short",
                                  "/my/requests/" + "A" * 65, "/my/requests/bad%20ref%3Cx%3E123456"])
def test_made_up_references_are_404(client, requester, path):
    assert client.get(path).status_code == 404


def test_the_human_reference_in_the_url_is_404(app, client, requester, make_request):
    human_ref = load(app, make_request(requester)).human_ref
    assert client.get(f"/my/requests/{human_ref}").status_code == 404
    token = csrf_token(client, "/account")
    assert client.post(f"/my/requests/{human_ref}/withdraw", data={"csrf_token": token, "confirm": "y"}
                       ).status_code == 404


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.ADMIN])
def test_staff_get_403_from_the_portal(app, client, make_user, make_request, role):
    reference = make_request(make_user(Role.REQUESTER))
    staff = make_user(role)
    assert login(client, staff.email).status_code == 302
    assert client.get(f"/my/requests/{reference}").status_code == 403
    assert client.get(NEW).status_code == 403


# The page of a request --------------------------------------------------------------------------

def test_every_view_is_audited_without_content(app, client, requester, make_request):
    reference = make_request(requester)
    for _ in range(2):
        assert client.get(f"/my/requests/{reference}").status_code == 200
    req = load(app, reference)
    with app.app_context():
        rows = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.viewed")).scalars().all()
        assert len(rows) == 2
        assert {r.object_id for r in rows} == {str(req.id)} and {r.actor_id for r in rows} == {requester.id}
        assert all("Jordan" not in r.details for r in rows)


def test_the_page_explains_the_due_date_and_hides_internal_notes(app, client, requester, admin, make_request):
    reference = make_request(requester)
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        services.add_note(req, db.session.get(User, admin.id), "Internal: ask the archive in Fresno")
        db.session.commit()
    body = page(client.get(f"/my/requests/{reference}"))
    assert "The rule gives 15 calendar days" in body and "123110" in body
    assert "Internal: ask the archive" not in body
    assert "Request received" in body


def test_a_message_is_sent_and_shown_escaped_with_its_line_breaks(app, client, requester, make_request):
    reference = make_request(requester)
    response = client.post(f"/my/requests/{reference}/messages",
                           data={"csrf_token": token_for(client, reference), "body": f"Line one\n{HOSTILE}"})
    assert response.status_code == 303 and response.headers["Location"] == f"/my/requests/{reference}"
    assert events_of(app, reference)[-1] == ("message", f"Line one\n{HOSTILE}")
    body = page(client.get(response.headers["Location"]))
    assert "Your message was sent." in body
    assert "Line one<br>&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.mark.parametrize(("text", "problem"), [("x" * 50_000, "under 5000 characters"), ("   ", "Write your message."),
                                               ("bad\x00byte", "invisible control characters")])
def test_a_bad_message_is_refused_and_kept(app, client, requester, make_request, text, problem):
    reference = make_request(requester)
    response = client.post(f"/my/requests/{reference}/messages",
                           data={"csrf_token": token_for(client, reference), "body": text})
    assert response.status_code == 400
    body = page(response)
    assert problem in body
    if text.strip():
        assert html.escape(text.replace("\x00", "\ufffd"))[:100] in body or text[:100] in body
    assert [kind for kind, _ in events_of(app, reference)] == ["submitted"]


def test_a_message_without_csrf_is_refused(app, client, requester, make_request):
    reference = make_request(requester)
    assert client.post(f"/my/requests/{reference}/messages", data={"body": "hi"}).status_code == 400
    assert len(events_of(app, reference)) == 1


def test_answering_a_waiting_request_resumes_it(app, client, requester, admin, make_request):
    reference = make_request(requester)
    move(app, admin, reference, S.VERIFYING)
    move(app, admin, reference, S.AWAITING_REQUESTER, message="Please send a copy of your photo ID.")
    body = page(client.get(f"/my/requests/{reference}"))
    assert "We need information from you" in body and "Please send a copy of your photo ID." in body
    assert "Waiting for you" in body
    response = client.post(f"/my/requests/{reference}/messages",
                           data={"csrf_token": token_for(client, reference), "body": "Sent by post today."})
    assert response.status_code == 303
    assert load(app, reference).status == S.VERIFYING
    assert ("status", "Sent by post today.") in events_of(app, reference)
    body = page(client.get(response.headers["Location"]))
    assert "we are working on request" in body and "We need information from you" not in body


def test_withdraw_needs_the_box_then_closes_the_request(app, client, requester, make_request):
    reference = make_request(requester)
    url = f"/my/requests/{reference}/withdraw"
    response = client.post(url, data={"csrf_token": token_for(client, reference)})
    assert response.status_code == 400
    assert "Tick the box to confirm that you want to withdraw." in page(response)
    assert load(app, reference).status == S.SUBMITTED
    response = client.post(url, data={"csrf_token": token_for(client, reference), "confirm": "y"})
    assert response.status_code == 303
    req = load(app, reference)
    assert req.status == S.WITHDRAWN and not req.is_open
    body = page(client.get(f"/my/requests/{reference}"))
    assert "Withdrawn" in body and "is withdrawn" in body
    assert "Withdraw this request" not in body  # no button for a closed request
    # A replayed withdrawal of a closed request: a clear message, nothing changed.
    count = len(events_of(app, reference))
    response = client.post(url, data={"csrf_token": token_for(client, reference), "confirm": "y"})
    assert response.status_code == 409
    assert "can no longer be changed" in page(response)
    assert len(events_of(app, reference)) == count and load(app, reference).status == S.WITHDRAWN


def test_a_message_on_a_closed_request_is_refused(app, client, requester, make_request):
    reference = make_request(requester)
    token = token_for(client, reference)
    client.post(f"/my/requests/{reference}/withdraw", data={"csrf_token": token, "confirm": "y"})
    count = len(events_of(app, reference))
    response = client.post(f"/my/requests/{reference}/messages", data={"csrf_token": token, "body": "Hello?"})
    assert response.status_code == 400
    assert "This request is closed." in page(response)
    assert len(events_of(app, reference)) == count


def test_a_reviewable_denial_can_be_reviewed(app, client, requester, admin, make_request):
    reference = make_request(requester)
    move(app, admin, reference, S.VERIFYING)
    move(app, admin, reference, S.DENIED, reason="endangerment")
    body = page(client.get(f"/my/requests/{reference}"))
    assert "Denied" in body and "Ask for a review" in body and "right to have this decision reviewed" in body
    response = client.post(f"/my/requests/{reference}/review",
                           data={"csrf_token": token_for(client, reference), "message": "I disagree."})
    assert response.status_code == 303
    req = load(app, reference)
    assert req.status == S.REVIEW_REQUESTED and req.is_open
    body = page(client.get(response.headers["Location"]))
    assert "Review of the denial requested" in body and "I disagree." in body
    assert "review of" in body and "was received" in body
    with app.app_context():
        kinds = db.session.execute(select(OutboxMessage.kind)).scalars().all()
        assert "records_update" in kinds


def test_a_final_denial_offers_no_review(app, client, requester, admin, make_request):
    reference = make_request(requester)
    move(app, admin, reference, S.VERIFYING)
    move(app, admin, reference, S.DENIED, reason="identity_not_verified")
    body = page(client.get(f"/my/requests/{reference}"))
    assert "Ask for a review" not in body
    response = client.post(f"/my/requests/{reference}/review", data={"csrf_token": token_for(client, reference)})
    assert response.status_code == 400
    assert "not one a review can reconsider" in page(response)
    assert load(app, reference).status == S.DENIED


def test_a_review_of_an_open_request_is_refused(app, client, requester, make_request):
    reference = make_request(requester)
    response = client.post(f"/my/requests/{reference}/review", data={"csrf_token": token_for(client, reference)})
    assert response.status_code == 409
    assert load(app, reference).status == S.SUBMITTED


def test_timeline_shows_status_changes_with_labels(app, client, requester, admin, make_request):
    reference = make_request(requester)
    move(app, admin, reference, S.VERIFYING)
    body = page(client.get(f"/my/requests/{reference}"))
    assert "From “Received” to “Checking identity”" in body
    assert [kind for kind, _ in events_of(app, reference)] == [EventKind.SUBMITTED.value, EventKind.STATUS.value]


def test_submitting_and_messaging_are_rate_limited(tmp_path, app, make_user, make_request):
    from tests.conftest import make_app

    limited = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "limited", RATELIMIT_ENABLED=True,
                       RATELIMIT_RECORDS="3 per minute")
    user = make_user(Role.REQUESTER)
    reference = make_request(user)
    client = limited.test_client()
    assert login(client, user.email).status_code == 302
    token = csrf_token(client, NEW)
    statuses = [client.post(NEW, data={**form(attest=None), "csrf_token": token}).status_code for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    statuses = [client.post(f"/my/requests/{reference}/messages", data={"csrf_token": token, "body": ""}).status_code
                for _ in range(4)]
    assert statuses == [400, 400, 400, 429]
    assert client.get(NEW).status_code == 200  # reading the form is never limited


def test_a_conflicting_save_answers_409_and_keeps_the_message(app, client, requester, make_request, monkeypatch):
    reference = make_request(requester)

    def stale(*args, **kwargs):
        raise common.VersionConflict("stale")

    monkeypatch.setattr(services, "reply", stale)
    response = client.post(f"/my/requests/{reference}/messages",
                           data={"csrf_token": token_for(client, reference), "body": "My typed words"})
    assert response.status_code == 409
    body = page(response)
    assert "changed this request while you were writing" in body and "My typed words" in body
    assert len(events_of(app, reference)) == 1
