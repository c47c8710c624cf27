"""Third-party consent (42 CFR §2.31), the disclosure log with the §2.32 notice, and the accounting of
disclosures: the pure rules, the services, the requester's and the queue's pages, access, and hostile input."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
import time_machine
from sqlalchemy import func, select

from intake.extensions import db
from intake.records import common, consents, services
from intake.records.common import RequestInvalid
from intake.records.models import Consent, Disclosure, RecordsRequest, RequestStatus
from intake.records.services import MoveInput
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, csrf_token, login, verify_and_deliver

S = RequestStatus
# Noon in Los Angeles on a Monday: the facility's day is 2026-06-15.
TODAY = date(2026, 6, 15)
NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)
THIRD_PARTY = {"request_type": "third_party", "recipient_name": "Dr. Ana Ruiz",
               "recipient_address": "1 Main St\nFresno, CA 93701", "purpose": "Continuing treatment"}
COMPLETE = {"patient_name": "Jordan Example", "disclosing_program": "The Canyon at Peace Park",
            "information": "All records of the 2017 stay", "recipient_name": "Dr. Ana Ruiz",
            "recipient_address": "1 Main St, Fresno, CA 93701", "purpose": "Continuing treatment",
            "revocation_acknowledged": True, "expires_on": date(2027, 6, 1), "expiry_event": None,
            "signed_name": "Jordan Example", "signed_on": TODAY, "signer_authority": None}


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOON, tick=False):
        yield


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "other": make_user(Role.REQUESTER),
            "admin": make_user(FULL_ADMIN), "operator": make_user(Role.OPERATOR)}


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def _user(user: User) -> User:
    return db.session.get(User, user.id)


def act(app, ref: str, fn):
    with app.app_context():
        result = fn(_load(ref))
        db.session.commit()
        return result


def count(app, model) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(model)).scalar_one()


def page(response) -> str:
    return response.get_data(as_text=True)


def paper(app, ref: str, admin: User, **changes) -> None:
    """Enter a paper consent (the complete one, with ``changes``) through the service."""
    act(app, ref, lambda req: consents.enter_paper(req, _user(admin), {**COMPLETE, **changes}))


def release(app, ref: str, admin: User, patient_id: int, target: S = S.FULFILLED) -> None:
    """Verify (committed), deliver through the disclosure gate (committed), then make the release."""
    act(app, ref, lambda req: services.transition(req, S.VERIFYING, _user(admin)))
    act(app, ref, lambda req: services.transition(req, S.IN_REVIEW, _user(admin), MoveInput(
        verification_method="photo_id", archived_patient_id=patient_id)))
    act(app, ref, lambda req: verify_and_deliver(req, _user(admin), patient_id))
    act(app, ref, lambda req: services.transition(
        req, target, _user(admin), MoveInput(reason="some_records_lost" if target == S.PARTIALLY_FULFILLED else None)))


def status_of(app, ref: str) -> S:
    with app.app_context():
        return _load(ref).status


def form_post(data: dict, token: str, prefix: str = "") -> dict:
    out = {"csrf_token": token}
    for name, value in data.items():
        if value is None or value is False:
            continue
        out[prefix + name] = "y" if value is True else (value.isoformat() if isinstance(value, date) else value)
    return out


def sign_online(client, ref: str, **changes):
    path = f"/my/requests/{ref}/consent"
    data = {k: v for k, v in {**COMPLETE, **changes}.items() if k != "signed_on"}
    return client.post(path, data=form_post(data, csrf_token(client, path)))


@pytest.fixture()
def third(make_request, people):
    return make_request(people["requester"], **THIRD_PARTY)


@pytest.fixture()
def requester_client(client, people):
    assert login(client, people["requester"].email).status_code == 302
    return client


@pytest.fixture()
def admin_client(app, people):
    other = app.test_client()
    assert login(other, people["admin"].email).status_code == 302
    return other


# The pure rules ------------------------------------------------------------------------------------

def _consent(**changes) -> SimpleNamespace:
    return SimpleNamespace(**{**COMPLETE, "revoked_at": None, **changes})


ELEMENT_GAPS = [
    ("patient_name", {"patient_name": " "}), ("disclosing_program", {"disclosing_program": None}),
    ("information", {"information": ""}), ("recipient_name", {"recipient_name": None}),
    ("recipient_address", {"recipient_address": None}), ("purpose", {"purpose": ""}),
    ("revocation_acknowledged", {"revocation_acknowledged": False}),
    ("expiry", {"expires_on": None, "expiry_event": None}), ("signed_name", {"signed_name": ""}),
    ("signed_on", {"signed_on": None}),
]


@pytest.mark.parametrize(("element", "changes"), ELEMENT_GAPS)
def test_each_missing_element_is_named_and_makes_the_consent_incomplete(element, changes):
    consent = _consent(**changes)
    assert consents.missing_elements(consent, representative=False) == [element]
    assert consents.consent_problem(consent, TODAY, representative=False) == consents.INCOMPLETE


def test_a_complete_consent_passes_and_an_event_can_replace_the_date():
    assert consents.missing_elements(_consent(), representative=False) == []
    assert consents.consent_problem(_consent(), TODAY, representative=False) is None
    by_event = _consent(expires_on=None, expiry_event="When my treatment with Dr. Ruiz ends")
    assert consents.consent_problem(by_event, TODAY, representative=False) is None


def test_a_representative_must_state_their_authority():
    assert consents.missing_elements(_consent(), representative=True) == ["signer_authority"]
    assert consents.consent_problem(_consent(signer_authority="Power of attorney"), TODAY, True) is None


def test_missing_revoked_and_expired():
    assert consents.consent_problem(None, TODAY, False) == consents.MISSING
    assert consents.consent_problem(_consent(revoked_at=NOON), TODAY, False) == consents.REVOKED
    # Revoked wins over any other problem: it is what the requester must act on.
    assert consents.consent_problem(_consent(revoked_at=NOON, purpose=None), TODAY, False) == consents.REVOKED
    # Valid through its expiry day, expired the day after.
    assert consents.consent_problem(_consent(expires_on=TODAY), TODAY, False) is None
    assert consents.consent_problem(_consent(expires_on=TODAY - timedelta(days=1)), TODAY, False) == consents.EXPIRED


def test_every_problem_code_has_a_message_and_the_limits_match_the_request_form(app):
    with app.test_request_context():
        for code in (consents.MISSING, consents.INCOMPLETE, consents.EXPIRED, consents.REVOKED):
            assert common.blocked_reason(code)
    assert (consents.NAME_MAX, consents.ADDRESS_MAX, consents.TEXT_MAX) == (
        common.NAME_MAX, common.ADDRESS_MAX, common.TEXT_MAX)
    assert "42 CFR part 2" in str(consents.REDISCLOSURE_NOTICE)
    for code in ("consent_mismatch", "consent_unconfirmed", "to_recipient_only", "clinical_denial",
                 "to_designated_only", "emergency_incomplete"):
        assert common.blocked_reason(code)


def test_other_request_types_need_no_consent(app, make_request, people):
    ref = make_request(people["requester"])
    assert act(app, ref, consents.release_problem) is None


# Release blocked, release allowed ------------------------------------------------------------------

def test_without_a_consent_the_release_is_refused_and_the_queue_says_why(app, third, people, archive_patient,
                                                                          admin_client):
    pid = archive_patient()
    with pytest.raises(RequestInvalid) as refused:
        release(app, third, people["admin"], pid)
    assert "no signed consent" in refused.value.errors["method"]
    assert status_of(app, third) == S.IN_REVIEW and count(app, Disclosure) == 0
    body = html.unescape(page(admin_client.get(f"/queue/requests/{third}")))
    assert "Records cannot leave now: There is no signed consent" in body
    assert 'value="fulfilled"' not in body


@pytest.mark.parametrize(("element", "changes"), ELEMENT_GAPS[:-1] + [("signer_authority", {})])
def test_a_paper_consent_missing_an_element_blocks_the_release(app, make_request, people, archive_patient,
                                                                admin_client, element, changes):
    overrides = dict(THIRD_PARTY)
    if element == "signer_authority":
        overrides.update(relationship_to_patient="personal_representative", requester_name="Casey Guardian",
                         attestation_name="Casey Guardian")
    ref = make_request(people["requester"], **overrides)
    paper(app, ref, people["admin"], **changes)
    pid = archive_patient()
    with pytest.raises(RequestInvalid) as refused:
        release(app, ref, people["admin"], pid)
    assert "lacks an element" in refused.value.errors["method"]
    body = html.unescape(page(admin_client.get(f"/queue/requests/{ref}")))
    assert "Records cannot leave now: The consent lacks an element 42 CFR §2.31 requires" in body
    assert str(consents.ELEMENT_LABELS[element]) in body.split('id="consent-missing"')[1].split("</ul>")[0]
    assert count(app, Disclosure) == 0


def test_a_valid_consent_lets_the_release_happen_and_logs_one_disclosure(app, third, people, archive_patient,
                                                                         requester_client, admin_client):
    assert sign_online(requester_client, third).status_code == 303
    pid = archive_patient()
    body = html.unescape(page(admin_client.get(f"/queue/requests/{third}")))
    assert "The notice that goes with the records" in body
    assert consents.REDISCLOSURE_NOTICE.split("\n")[0] in body
    release(app, third, people["admin"], pid)
    assert status_of(app, third) == S.FULFILLED
    with app.app_context():
        req = _load(third)
        consent = db.session.execute(select(Consent)).scalar_one()
        disclosure = db.session.execute(select(Disclosure)).scalar_one()
        assert consent.signed_on == TODAY and consent.created_by_id == people["requester"].id
        assert (disclosure.request_id, disclosure.consent_id, disclosure.archived_patient_id) == (req.id, consent.id,
                                                                                               pid)
        assert disclosure.redisclosure_notice is True and disclosure.disclosed_by_id == people["admin"].id
        assert disclosure.recipient_name == "Dr. Ana Ruiz" and disclosure.purpose == "Continuing treatment"
        assert disclosure.description == "Everything you hold about the patient"
        assert disclosure.disclosed_at == NOON
        assert (disclosure.basis, disclosure.channel, disclosure.notice_version, disclosure.notice_language) == (
            "consent", "mail", "2024", "en")
    body = html.unescape(page(admin_client.get(f"/queue/requests/{third}")))
    assert "Disclosure logged" in body and "notice 2024 included (en)" in body


def test_cfr2_25_a_partial_release_keeps_the_one_disclosure_made_when_the_records_left(
        app, third, people, archive_patient, requester_client):
    """The disclosure is logged when the records leave; closing the request as partly completed later
    neither adds another nor removes it (42 CFR 2.25; 45 CFR 164.528)."""
    sign_online(requester_client, third)
    release(app, third, people["admin"], archive_patient(), target=S.PARTIALLY_FULFILLED)
    with app.app_context():
        disclosure = db.session.execute(select(Disclosure)).scalar_one()
        assert disclosure.description == "Everything you hold about the patient" and disclosure.channel == "mail"


def test_an_expired_consent_blocks_the_release(app, third, people, archive_patient, requester_client,
                                               admin_client):
    """Valid through its last day; the day after, the gate refuses to let the records leave under it
    (42 CFR 2.31(a)(7)). Nothing was sent, so nothing is logged."""
    assert sign_online(requester_client, third, expires_on=TODAY + timedelta(days=3)).status_code == 303
    pid = archive_patient()
    act(app, third, lambda req: services.transition(req, S.VERIFYING, _user(people["admin"])))
    act(app, third, lambda req: services.transition(req, S.IN_REVIEW, _user(people["admin"]), MoveInput(
        verification_method="photo_id", archived_patient_id=pid)))
    with time_machine.travel(NOON + timedelta(days=3), tick=False):
        assert act(app, third, consents.release_problem) is None  # still good on its last day
    with time_machine.travel(NOON + timedelta(days=4), tick=False):
        assert act(app, third, consents.release_problem) == consents.EXPIRED
        with pytest.raises(RequestInvalid) as refused:
            act(app, third, lambda req: services.record_delivery(req, _user(people["admin"]), "mail",
                                                                 consent_confirmed=True))
        assert "expired" in refused.value.errors["method"]
        fresh = app.test_client()  # the earlier session has timed out
        assert login(fresh, people["admin"].email).status_code == 302
        body = html.unescape(page(fresh.get(f"/queue/requests/{third}")))
        assert "Records cannot leave now: The consent has expired" in body
    assert count(app, Disclosure) == 0


def test_the_requester_revokes_and_a_new_consent_supersedes(app, third, people, archive_patient,
                                                            requester_client, admin_client):
    sign_online(requester_client, third)
    path = f"/my/requests/{third}"
    # The box must be ticked.
    response = requester_client.post(f"{path}/consent/revoke", data={"csrf_token": csrf_token(requester_client, path)})
    assert response.status_code == 400 and "Tick the box" in page(response)
    assert act(app, third, consents.release_problem) is None
    response = requester_client.post(f"{path}/consent/revoke",
                                     data={"csrf_token": csrf_token(requester_client, path), "confirm": "y"})
    assert response.status_code == 303
    assert act(app, third, consents.release_problem) == consents.REVOKED
    body = page(requester_client.get(path))
    assert "Revoked" in body and "Revoke this consent" not in body
    assert "The requester revoked the consent" in html.unescape(page(admin_client.get(f"/queue/requests/{third}")))
    # Revoking again: nothing in force.
    response = requester_client.post(f"{path}/consent/revoke",
                                     data={"csrf_token": csrf_token(requester_client, path), "confirm": "y"})
    assert response.status_code == 400 and "no consent in force" in page(response)
    # A new consent supersedes the revoked one; then an incomplete paper one supersedes that.
    assert sign_online(requester_client, third).status_code == 303
    assert act(app, third, consents.release_problem) is None
    paper(app, third, people["admin"], purpose=None)
    assert act(app, third, consents.release_problem) == consents.INCOMPLETE
    assert count(app, Consent) == 3


def test_the_portal_shows_the_consent_and_the_sign_form_is_prefilled(app, third, requester_client):
    body = page(requester_client.get(f"/my/requests/{third}"))
    assert "No consent has been signed yet." in body and f"/my/requests/{third}/consent" in body
    form = page(requester_client.get(f"/my/requests/{third}/consent"))
    assert "Dr. Ana Ruiz" in form and "The Canyon at Peace Park" in form and "Continuing treatment" in form
    assert 'name="signer_authority"' not in form  # the patient signs for themself
    sign_online(requester_client, third)
    body = page(requester_client.get(f"/my/requests/{third}"))
    assert "In force" in body and "Revoke this consent" in body and "Sign a new consent" in body


# Accounting of disclosures ---------------------------------------------------------------------------

def _disclose(app, patient_id: int, when: datetime, recipient: str) -> None:
    with app.app_context():
        db.session.add(Disclosure(archived_patient_id=patient_id, disclosed_at=when, recipient_name=recipient,
                                  description=f"records for {recipient}", purpose="Care", redisclosure_notice=True))
        db.session.commit()


def test_the_accounting_lists_only_that_patients_disclosures_of_three_years(app, make_request, people,
                                                                            archive_patient, admin_client,
                                                                            requester_client):
    pid = archive_patient()
    stranger = archive_patient(last_name="Other", first_name="Pat", dob=date(1970, 1, 1))
    ref = make_request(people["requester"], request_type="accounting")
    received = NOON
    _disclose(app, pid, received - timedelta(days=3 * 365 + 5), "Too Old Clinic")
    _disclose(app, pid, received - timedelta(days=1000), "Older Clinic")
    _disclose(app, pid, received - timedelta(days=10), "Newer Clinic")
    _disclose(app, stranger, received - timedelta(days=20), "Stranger Clinic")
    _disclose(app, pid, received + timedelta(hours=1), "After The Request Clinic")
    queue_page = page(admin_client.get(f"/queue/requests/{ref}"))
    assert "not matched to an archive record yet" in queue_page and "Older Clinic" not in queue_page
    act(app, ref, lambda req: services.transition(req, S.VERIFYING, _user(people["admin"])))
    act(app, ref, lambda req: services.transition(req, S.IN_REVIEW, _user(people["admin"]), MoveInput(
        verification_method="photo_id", archived_patient_id=pid)))
    queue_page = page(admin_client.get(f"/queue/requests/{ref}"))
    table = queue_page.split('id="accounting-table"')[1].split("</table>")[0]
    assert table.index("Newer Clinic") < table.index("Older Clinic")
    for absent in ("Too Old Clinic", "Stranger Clinic", "After The Request Clinic"):
        assert absent not in table
    # The requester sees the list only once the request is closed.
    mine = page(requester_client.get(f"/my/requests/{ref}"))
    assert "appears here when your request is completed" in mine and "Newer Clinic" not in mine
    act(app, ref, lambda req: services.record_delivery(req, _user(people["admin"]), "mail"))
    act(app, ref, lambda req: services.transition(req, S.FULFILLED, _user(people["admin"])))
    mine = page(requester_client.get(f"/my/requests/{ref}"))
    table = mine.split('id="accounting-table"')[1].split("</table>")[0]
    assert "Newer Clinic" in table and "Older Clinic" in table and "Stranger Clinic" not in table


def test_the_accounting_is_one_query(app, make_request, people, archive_patient):
    pid = archive_patient()
    ref = make_request(people["requester"], request_type="accounting")
    for n in range(5):
        _disclose(app, pid, NOON - timedelta(days=n + 1), f"Clinic {n}")
    statements = []
    with app.app_context():
        req = _load(ref)
        req.archived_patient_id = pid
        from sqlalchemy import event

        def count_it(*args):
            statements.append(args[2])

        event.listen(db.engine, "before_cursor_execute", count_it)
        try:
            rows = consents.accounting(req)
        finally:
            event.remove(db.engine, "before_cursor_execute", count_it)
        assert [d.recipient_name for d in rows] == [f"Clinic {n}" for n in range(5)]
        db.session.rollback()
    assert len([s for s in statements if "disclosures" in s]) == 1


# Access ------------------------------------------------------------------------------------------

def test_another_requester_gets_404_and_an_operator_403(app, third, people, make_request):
    other = app.test_client()
    login(other, people["other"].email)
    path = f"/my/requests/{third}/consent"
    assert other.get(path).status_code == 404
    token = csrf_token(other, "/account")
    assert other.post(path, data=form_post(COMPLETE, token)).status_code == 404
    assert other.post(f"{path}/revoke", data={"csrf_token": token, "confirm": "y"}).status_code == 404
    operator = app.test_client()
    login(operator, people["operator"].email)
    assert operator.get(path).status_code == 403
    token = csrf_token(operator, "/account")
    assert operator.post(f"/queue/requests/{third}/consent", data={"csrf_token": token}).status_code == 403
    assert count(app, Consent) == 0


def test_a_request_of_another_type_has_no_consent(app, make_request, people, requester_client, admin_client):
    ref = make_request(people["requester"])
    assert requester_client.get(f"/my/requests/{ref}/consent").status_code == 404
    token = csrf_token(admin_client, "/account")
    assert admin_client.post(f"/queue/requests/{ref}/consent",
                             data=form_post(COMPLETE, token, "consent-")).status_code == 404
    assert 'id="consent"' not in page(requester_client.get(f"/my/requests/{ref}"))


def test_a_closed_request_takes_no_new_consent(app, third, people, requester_client):
    act(app, third, lambda req: services.transition(req, S.WITHDRAWN, _user(people["requester"])))
    response = sign_online(requester_client, third)
    assert response.status_code == 400 and "This request is closed" in page(response)
    assert count(app, Consent) == 0


# Hostile and bad input ---------------------------------------------------------------------------

HOSTILE = "<script>alert(1)</script>'; DROP TABLE disclosure_consents; --"


def test_html_and_sql_in_every_field_are_stored_as_text_and_escaped(app, third, requester_client, admin_client):
    fields = ("patient_name", "disclosing_program", "information", "recipient_name", "recipient_address",
              "purpose", "expiry_event", "signed_name")
    response = sign_online(requester_client, third, **{name: f"{name} {HOSTILE}" for name in fields})
    assert response.status_code == 303
    with app.app_context():
        consent = db.session.execute(select(Consent)).scalar_one()
        for name in fields:
            assert getattr(consent, name) == f"{name} {HOSTILE}"
    for body in (page(requester_client.get(f"/my/requests/{third}")),
                 page(admin_client.get(f"/queue/requests/{third}"))):
        assert "<script>alert(1)</script>" not in body and "&lt;script&gt;alert(1)&lt;/script&gt;" in body


@pytest.mark.parametrize("field", ["patient_name", "information", "recipient_address", "purpose", "signed_name",
                                   "expiry_event"])
def test_50_kb_of_text_is_refused_and_nothing_is_stored(app, third, requester_client, field):
    response = sign_online(requester_client, third, **{field: "x" * 50_000})
    assert response.status_code == 400 and "Please keep this under" in page(response)
    assert count(app, Consent) == 0


@pytest.mark.parametrize(("expires_on", "message"), [
    ("2026-06-14", "has not passed"), ("1999-01-01", "has not passed"), ("2040-01-01", "at most ten years"),
    ("99999-01-01", "Enter a date like"), ("2026-13-45", "Enter a date like"), ("tomorrow", "Enter a date like"),
    ("' OR 1=1 --", "Enter a date like"),
])
def test_a_forged_expiry_date_is_refused(app, third, requester_client, expires_on, message):
    response = sign_online(requester_client, third, expires_on=expires_on)
    assert response.status_code == 400 and message in page(response)
    assert count(app, Consent) == 0


def test_missing_fields_each_get_a_message(app, third, requester_client):
    path = f"/my/requests/{third}/consent"
    response = requester_client.post(path, data={"csrf_token": csrf_token(requester_client, path)})
    body = html.unescape(page(response))
    assert response.status_code == 400
    for message in ("Enter the patient's full name.", "Say who may disclose", "Say how much and what kind",
                    "Enter the name of the person or organisation", "Enter the recipient's address.",
                    "Say what the records will be used for.", "Tick the box to confirm you understand",
                    "Give an expiration date or an event", "Type your full name as your signature."):
        assert message in body
    assert count(app, Consent) == 0


def test_a_representative_must_give_their_authority(app, make_request, people, requester_client):
    ref = make_request(people["requester"], relationship_to_patient="personal_representative",
                       requester_name="Casey Guardian", attestation_name="Casey Guardian", **THIRD_PARTY)
    assert 'name="signer_authority"' in page(requester_client.get(f"/my/requests/{ref}/consent"))
    response = sign_online(requester_client, ref)
    assert response.status_code == 400 and "what gives you the authority" in page(response)
    assert sign_online(requester_client, ref, signer_authority="Durable power of attorney").status_code == 303
    assert act(app, ref, consents.release_problem) is None


def test_missing_csrf_and_control_characters(app, third, requester_client):
    path = f"/my/requests/{third}/consent"
    data = form_post({k: v for k, v in COMPLETE.items() if k != "signed_on"}, "")
    del data["csrf_token"]
    assert requester_client.post(path, data=data).status_code == 400
    response = sign_online(requester_client, third, purpose="care\x00")
    assert response.status_code == 400 and "invisible control characters" in page(response)
    assert requester_client.post(f"{path}/revoke", data={"confirm": "y"}).status_code == 400
    assert count(app, Consent) == 0


def test_staff_enter_a_paper_consent_with_its_checks(app, third, people, admin_client):
    path = f"/queue/requests/{third}"
    version = lambda: act(app, third, lambda req: req.version)  # noqa: E731
    data = {**COMPLETE, "signed_on": TODAY - timedelta(days=20), "version": version()}
    token = csrf_token(admin_client, path)
    # Signed in the future, expiring before it was signed: refused, nothing stored, the form kept open.
    bad = admin_client.post(f"{path}/consent", data=form_post(
        {**data, "signed_on": TODAY + timedelta(days=1)}, token, "consent-"))
    assert bad.status_code == 400 and "cannot be in the future" in page(bad)
    assert '<details class="mt-3" open' in page(bad)
    bad = admin_client.post(f"{path}/consent", data=form_post(
        {**data, "expires_on": TODAY - timedelta(days=30)}, token, "consent-"))
    assert bad.status_code == 400 and "cannot expire before it was signed" in page(bad)
    bad = admin_client.post(f"{path}/consent", data=form_post({**data, "information": "x" * 50_000}, token,
                                                              "consent-"))
    assert bad.status_code == 400 and count(app, Consent) == 0
    # A stale version: 409 with the typed text kept.
    stale = admin_client.post(f"{path}/consent", data=form_post({**data, "version": version() + 5}, token,
                                                                "consent-"))
    assert stale.status_code == 409 and "Someone else changed this request" in page(stale)
    assert "All records of the 2017 stay" in page(stale) and count(app, Consent) == 0
    ok = admin_client.post(f"{path}/consent", data=form_post(data, token, "consent-"))
    assert ok.status_code == 302 and count(app, Consent) == 1
    with app.app_context():
        consent = db.session.execute(select(Consent)).scalar_one()
        assert consent.signed_on == TODAY - timedelta(days=20) and consent.created_by_id == people["admin"].id
    assert act(app, third, consents.release_problem) is None


def test_nothing_confidential_in_audit_details_or_flash(app, third, requester_client):
    from intake.audit.models import AuditEvent

    response = sign_online(requester_client, third, purpose="Canary purpose 7731")
    flash_page = page(requester_client.get(response.headers["Location"]))
    assert "Your consent for request" in flash_page
    with app.app_context():
        audits = db.session.execute(select(AuditEvent).where(AuditEvent.action == "consent.signed")).scalars().all()
        assert len(audits) == 1 and "Canary" not in str(audits[0].details) and "Ruiz" not in str(audits[0].details)


def test_demo_third_party_releases_carry_a_consent_and_a_disclosure(app, runner):
    from intake.records.models import RequestType

    result = runner.invoke(args=["demo", "seed", "--calls", "0", "--resources", "0", "--requests", "80",
                                 "--with-staff", "--seed", "5"])
    assert result.exit_code == 0, result.output
    with app.app_context():
        released = db.session.execute(select(RecordsRequest).where(
            RecordsRequest.request_type == RequestType.THIRD_PARTY,
            RecordsRequest.status.in_([S.FULFILLED, S.PARTIALLY_FULFILLED]))).scalars().all()
        assert released, "the seed should release some third-party requests"
        for req in released:
            disclosures = db.session.execute(select(Disclosure).where(Disclosure.request_id == req.id)).scalars().all()
            assert len(disclosures) == 1 and disclosures[0].redisclosure_notice
            assert disclosures[0].consent_id is not None and disclosures[0].notice_version == "2024"
