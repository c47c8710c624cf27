"""The one disclosure gate (intake/records/gate.py) and the accounting it feeds, through the pages staff
and requesters use: no disclosure without a matching consent (42 CFR 2.31), logged when the records
leave and never removed (2.25; 45 CFR 164.528), the §2.32 notice of 2024 in the recipient's language
with the consent's scope, emergency disclosures (2.51) in the accounting, and the accounting shown to
the patient whatever the closing state."""

from __future__ import annotations

import html
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from sqlalchemy import func, select

from intake.extensions import db
from intake.records import consents, gate, services
from intake.records.disclosures import check
from intake.records.documents import content_of
from intake.records.models import (
    DeliveryMethod,
    Disclosure,
    FileKind,
    RecordsRequest,
    RequestDocument,
    RequestStatus,
    RequestType,
)
from intake.records.services import MoveInput
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, LICENCE, csrf_token, login
from .test_records_consents import COMPLETE, THIRD_PARTY

S = RequestStatus
TODAY = date(2026, 6, 15)
NOON = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)
CONSENT = COMPLETE  # the complete consent the consent tests use, matching THIRD_PARTY


@pytest.fixture(autouse=True)
def frozen():
    with time_machine.travel(NOON, tick=False):
        yield


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "admin": make_user(FULL_ADMIN, licence=LICENCE)}


def signed_in(app, user: User):
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    return browser


def _load(ref: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()


def act(app, ref: str, fn):
    with app.app_context():
        result = fn(_load(ref))
        db.session.commit()
        return result


def staff(user: User) -> User:
    return db.session.get(User, user.id)


def disclosures(app) -> list[Disclosure]:
    with app.app_context():
        rows = db.session.execute(select(Disclosure).order_by(Disclosure.id)).scalars().all()
        for row in rows:
            db.session.expunge(row)
        return rows


def verified(app, ref: str, admin: User, patient_id: int) -> None:
    act(app, ref, lambda req: services.transition(req, S.VERIFYING, staff(admin)))
    act(app, ref, lambda req: services.transition(req, S.IN_REVIEW, staff(admin), MoveInput(
        verification_method="photo_id", archived_patient_id=patient_id)))


def paper_consent(app, ref: str, admin: User, **changes) -> None:
    act(app, ref, lambda req: consents.enter_paper(req, staff(admin), {**CONSENT, **changes}))


def deliver(browser, app, ref: str, method: str = "mail", confirmed: bool = True):
    version = act(app, ref, lambda req: req.version)
    data = {"delivery-method": method, "delivery-version": str(version),
            "delivery-csrf_token": csrf_token(browser, "/account")}
    if confirmed:
        data["delivery-consent_confirmed"] = "y"
    return browser.post(f"/queue/requests/{ref}/delivery", data=data)


def cover_letter(app, ref: str) -> str:
    """The letter the records travelled with (file names are encrypted: found by reading them)."""
    with app.app_context():
        req = _load(ref)
        letters = [d for d in db.session.execute(select(RequestDocument).where(
            RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.LETTER)).scalars()
            if d.filename.startswith("disclosure")]
        assert len(letters) == 1
        return content_of(letters[0]).decode()


# --- The pure rule ---------------------------------------------------------------------------------

def test_cfr2_31_the_gate_allows_only_the_lawful_grounds():
    third = dict(request_type=RequestType.THIRD_PARTY, method=DeliveryMethod.MAIL, verified=True)
    assert gate.rule(gate.Case(**third, match_confirmed=True)).basis == "consent"
    assert gate.rule(gate.Case(**third, consent_problem="consent_missing")).problem == "consent_missing"
    assert gate.rule(gate.Case(**third, differences=("recipient_name",), match_confirmed=True)).problem == \
        "consent_mismatch"
    assert gate.rule(gate.Case(**third)).problem == "consent_unconfirmed"
    assert gate.rule(gate.Case(**{**third, "method": DeliveryMethod.DOWNLOAD}, match_confirmed=True)).problem == \
        "to_recipient_only"
    assert gate.rule(gate.Case(**{**third, "verified": False}, match_confirmed=True)).problem == "not_verified"
    copy = dict(request_type=RequestType.COPY, method=DeliveryMethod.DOWNLOAD, verified=True)
    assert gate.rule(gate.Case(**copy)).basis == gate.PATIENT_ACCESS and not gate.rule(gate.Case(**copy)).logged
    assert gate.rule(gate.Case(**copy, clinical_denial=True)).problem == "clinical_denial"
    assert gate.rule(gate.Case(**copy, clinical_denial=True, designated=True)).problem == "to_designated_only"
    mailed = {**copy, "method": DeliveryMethod.MAIL}
    assert gate.rule(gate.Case(**mailed, clinical_denial=True, designated=True)).basis == "designated"
    assert gate.rule(gate.Case(None, None, emergency_missing=("affiliation",))).problem == "emergency_incomplete"
    assert gate.rule(gate.Case(None, None, emergency_missing=())).basis == "emergency"


# --- Finding 1: no disclosure without a consent, and withdrawal removes nothing ----------------------

def test_cfr2_31_no_third_party_disclosure_without_a_consent(app, make_request, people, archive_patient):
    ref = make_request(people["requester"], **THIRD_PARTY)
    verified(app, ref, people["admin"], archive_patient())
    admin = signed_in(app, people["admin"])
    response = deliver(admin, app, ref)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and "There is no signed consent" in body
    assert disclosures(app) == [] and act(app, ref, lambda req: req.delivered_at) is None
    # A download released to the requester is not a way round it.
    assert act(app, ref, lambda req: check(req, DeliveryMethod.DOWNLOAD, True)).problem == "to_recipient_only"


def test_cfr2_25_a_logged_disclosure_survives_withdrawal(app, make_request, people, archive_patient):
    ref = make_request(people["requester"], **THIRD_PARTY)
    pid = archive_patient()
    verified(app, ref, people["admin"], pid)
    paper_consent(app, ref, people["admin"])
    assert deliver(signed_in(app, people["admin"]), app, ref).status_code == 302
    requester = signed_in(app, people["requester"])
    path = f"/my/requests/{ref}"
    assert requester.post(f"{path}/withdraw", data={"csrf_token": csrf_token(requester, path),
                                                    "confirm": "y"}).status_code == 303
    assert act(app, ref, lambda req: req.status) == S.WITHDRAWN
    [logged] = disclosures(app)
    assert (logged.basis, logged.archived_patient_id, logged.disclosed_at, logged.channel) == (
        "consent", pid, NOON, "mail")


# --- Finding 2: the consent is compared with the request ------------------------------------------

def test_cfr2_31_consent_must_match_request(app, make_request, people, archive_patient):
    ref = make_request(people["requester"], **THIRD_PARTY)
    verified(app, ref, people["admin"], archive_patient())
    paper_consent(app, ref, people["admin"], patient_name="Someone Else", recipient_name="Acme Insurance",
                  purpose="Underwriting")
    admin = signed_in(app, people["admin"])
    page = html.unescape(admin.get(f"/queue/requests/{ref}").get_data(as_text=True))
    table = page.split('id="consent-comparison"')[1].split("</table>")[0]
    assert table.count('data-differs="yes"') == 3 and 'data-differs="check"' in table
    assert "Dr. Ana Ruiz" in table and "Acme Insurance" in table
    assert "They differ in: the patient's name, the recipient's name, the purpose of the disclosure" in page
    response = deliver(admin, app, ref)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400
    assert "differ in: the patient's name, the recipient's name, the purpose of the disclosure" in body
    assert disclosures(app) == []
    # Wording aside (case, commas, line breaks), a matching consent goes through, once staff confirm.
    paper_consent(app, ref, people["admin"], recipient_name="DR. ANA RUIZ", purpose="continuing treatment.")
    unconfirmed = deliver(admin, app, ref, confirmed=False)
    assert unconfirmed.status_code == 400 and "side by side" in unconfirmed.get_data(as_text=True)
    assert deliver(admin, app, ref).status_code == 302
    [logged] = disclosures(app)
    # The log and the letter name the same recipient: the consent's.
    assert logged.recipient_name == "DR. ANA RUIZ" and logged.purpose == "continuing treatment."
    assert "Dear DR. ANA RUIZ," in cover_letter(app, ref)


# --- Finding 3: a revocation after the records left removes nothing -------------------------------

def test_cfr2_25_hipaa_164_528_revocation_never_removes_a_logged_disclosure(app, make_request, people,
                                                                          archive_patient):
    pid = archive_patient()
    ref = make_request(people["requester"], **THIRD_PARTY)
    verified(app, ref, people["admin"], pid)
    requester = signed_in(app, people["requester"])
    path = f"/my/requests/{ref}/consent"
    data = {k: ("y" if v is True else v.isoformat() if isinstance(v, date) else v)
            for k, v in CONSENT.items() if v is not None and k != "signed_on"}
    assert requester.post(path, data={**data, "csrf_token": csrf_token(requester, path)}).status_code == 303
    assert deliver(signed_in(app, people["admin"]), app, ref).status_code == 302
    revoke = requester.post(f"{path}/revoke", data={"csrf_token": csrf_token(requester, f"/my/requests/{ref}"),
                                                    "confirm": "y"})
    assert revoke.status_code == 303
    act(app, ref, lambda req: services.transition(req, S.FULFILLED, staff(people["admin"])))
    assert [d.basis for d in disclosures(app)] == ["consent"]
    # The patient's accounting lists it.
    later = NOON + timedelta(days=2)
    with time_machine.travel(later, tick=False):
        accounting = make_request(people["requester"], request_type="accounting")
    with time_machine.travel(later, tick=False):
        verified(app, accounting, people["admin"], pid)
        act(app, accounting, lambda req: services.record_delivery(req, staff(people["admin"]), "mail"))
        act(app, accounting, lambda req: services.transition(req, S.FULFILLED, staff(people["admin"])))
        mine = signed_in(app, people["requester"]).get(f"/my/requests/{accounting}").get_data(as_text=True)
    table = mine.split('id="accounting-table"')[1].split("</table>")[0]
    assert "Dr. Ana Ruiz" in table and "Continuing treatment" in table


# --- Finding 5: the 2024 §2.32 notice, its scope, in the recipient's language -----------------------

def test_cfr2_32_notice_is_the_2024_text_in_force():
    assert consents.notice_in_force(date(2026, 6, 15)).code == "2024"
    assert consents.notice_in_force(date(2023, 1, 1)).code == "2018"
    statement = consents.NOTICE_2024.text["en"]
    assert statement.startswith("This record which has been disclosed to you is protected by Federal "
                                "confidentiality rules (42 CFR part 2).")
    assert "civil, criminal, administrative, or legislative proceedings" in statement
    assert "covered entity or business associate" in statement
    assert "NOT sufficient to meet the required elements of written consent" in statement
    assert [lang for lang, _text in consents.notice_text(consents.NOTICE_2024, "es")] == ["es", "en"]
    assert [lang for lang, _text in consents.notice_text(consents.NOTICE_2024, "en")] == ["en"]


@pytest.mark.parametrize("recipient_language", ["en", "es"])
def test_cfr2_32_notice_reaches_the_recipient_in_their_language(app, make_request, make_user, archive_patient,
                                                                recipient_language):
    """A Spanish-reading patient sends records to an English-speaking doctor: the letter and notice are in
    English; a recipient who reads Spanish gets the Spanish statement with the official English after
    it. The disclosure records which notice went out, in which language, and how."""
    requester = make_user(Role.REQUESTER)
    admin = make_user(FULL_ADMIN)
    with app.app_context():
        owner = db.session.get(User, requester.id)
        owner.locale = "es"
        db.session.commit()
    ref = make_request(requester, **THIRD_PARTY, recipient_language=recipient_language)
    verified(app, ref, admin, archive_patient())
    paper_consent(app, ref, admin)
    assert deliver(signed_in(app, admin), app, ref, method="fax").status_code == 302
    [logged] = disclosures(app)
    assert (logged.notice_version, logged.notice_language, logged.channel, logged.redisclosure_notice) == (
        "2024", recipient_language, "fax", True)
    text = html.unescape(cover_letter(app, ref))
    assert f'<html lang="{recipient_language}">' in text
    assert consents.NOTICE_2024.text["en"].split("\n")[0] in text  # the official statement, always
    assert "All records of the 2017 stay" in text and "2027" in text  # the consent's scope (§2.32(b))
    if recipient_language == "en":
        assert "Dear Dr. Ana Ruiz," in text and "Este expediente" not in text
    else:
        assert consents.NOTICE_2024.text["es"].split("\n")[0] in text and "inglés" in text


def test_cfr2_32_no_notice_is_flagged_where_nothing_was_disclosed(app, make_request, people, archive_patient):
    """The patient's own copy is not a disclosure to anyone: no row, no notice flagged."""
    ref = make_request(people["requester"])
    verified(app, ref, people["admin"], archive_patient())
    assert deliver(signed_in(app, people["admin"]), app, ref, confirmed=False).status_code == 302
    assert disclosures(app) == []


# --- Emergencies (42 CFR 2.51) and the accounting ---------------------------------------------------

def emergency(browser, patient_id: int, **changes):
    data = {"emergency-recipient_name": "Dr. Triage", "emergency-affiliation": "County General ER",
            "emergency-disclosed_at": "2026-06-14T22:10", "emergency-information": "Medication list",
            "emergency-reason": "Unconscious patient, suspected overdose",
            "csrf_token": csrf_token(browser, "/account")}
    data.update({f"emergency-{k}": v for k, v in changes.items()})
    return browser.post(f"/admin/archive/{patient_id}/emergency-disclosure", data=data)


def test_cfr2_51_an_emergency_disclosure_is_documented_and_accounted_for(app, make_request, make_user, people,
                                                                         archive_patient):
    pid = archive_patient()
    clerk = signed_in(app, make_user(Role.RECORDS_CLERK))
    missing = emergency(clerk, pid, affiliation="", disclosed_at="2026-06-16T09:00")
    body = html.unescape(missing.get_data(as_text=True))
    assert missing.status_code == 400 and "2.51(c)(1)" in body and disclosures(app) == []
    future = emergency(clerk, pid, disclosed_at="2026-06-16T09:00")
    assert future.status_code == 400 and "cannot be in the future" in future.get_data(as_text=True)
    assert emergency(clerk, pid).status_code == 303
    [logged] = disclosures(app)
    assert (logged.basis, logged.affiliation, logged.request_id) == ("emergency", "County General ER", None)
    assert logged.disclosed_at == datetime(2026, 6, 15, 5, 10, tzinfo=UTC)  # 22:10 PDT on the 14th
    page = clerk.get(f"/admin/archive/{pid}").get_data(as_text=True)
    assert "Medical emergency (42 CFR 2.51)" in html.unescape(page) and "County General ER" in page
    # It is in the patient's accounting, with the other disclosures of six years (45 CFR 164.528).
    ref = make_request(people["requester"], request_type="accounting")
    verified(app, ref, people["admin"], pid)
    admin_page = signed_in(app, people["admin"]).get(f"/queue/requests/{ref}").get_data(as_text=True)
    table = admin_page.split('id="accounting-table"')[1].split("</table>")[0]
    assert "Dr. Triage" in table and "Unconscious patient" in table
    # An operator cannot record one.
    operator = signed_in(app, make_user(Role.OPERATOR))
    assert emergency(operator, pid).status_code == 403


def test_hipaa_164_528_the_accounting_spans_three_years_for_consents_and_six_for_the_rest(app, make_request,
                                                                                         people, archive_patient):
    pid = archive_patient()
    with app.app_context():
        for days, basis, name in ((4 * 365, "consent", "Old Consent Clinic"), (4 * 365, "emergency", "Old ER"),
                                  (7 * 365, "emergency", "Ancient ER"), (30, "consent", "Recent Clinic")):
            db.session.add(Disclosure(archived_patient_id=pid, basis=basis, disclosed_at=NOON - timedelta(days=days),
                                      recipient_name=name, description="records", purpose="care"))
        db.session.commit()
    ref = make_request(people["requester"], request_type="accounting")
    verified(app, ref, people["admin"], pid)
    names = act(app, ref, lambda req: [d.recipient_name for d in consents.accounting(req)])
    assert names == ["Recent Clinic", "Old ER"]


@pytest.mark.parametrize("closing", [S.FULFILLED, S.PARTIALLY_FULFILLED, S.WITHDRAWN])
def test_hipaa_164_528_the_accounting_is_shown_whatever_the_closing_state(app, make_request, people,
                                                                         archive_patient, closing):
    pid = archive_patient()
    with app.app_context():
        db.session.add(Disclosure(archived_patient_id=pid, basis="consent", disclosed_at=NOON - timedelta(days=9),
                                  recipient_name="Shown Clinic", description="records", purpose="care"))
        db.session.commit()
    ref = make_request(people["requester"], request_type="accounting")
    verified(app, ref, people["admin"], pid)
    if closing != S.WITHDRAWN:
        act(app, ref, lambda req: services.record_delivery(req, staff(people["admin"]), "mail"))
    reason = "some_records_lost" if closing == S.PARTIALLY_FULFILLED else None
    actor = people["requester"] if closing == S.WITHDRAWN else people["admin"]
    act(app, ref, lambda req: services.transition(req, closing, staff(actor), MoveInput(reason=reason)))
    page = signed_in(app, people["requester"]).get(f"/my/requests/{ref}").get_data(as_text=True)
    assert "Shown Clinic" in page


def test_hipaa_164_528_an_unverified_requester_never_sees_the_accounting(app, make_request, people,
                                                                        archive_patient):
    pid = archive_patient()
    with app.app_context():
        db.session.add(Disclosure(archived_patient_id=pid, basis="consent", disclosed_at=NOON - timedelta(days=9),
                                  recipient_name="Hidden Clinic", description="records", purpose="care"))
        db.session.commit()
    ref = make_request(people["requester"], request_type="accounting")
    act(app, ref, lambda req: services.transition(req, S.VERIFYING, staff(people["admin"])))
    act(app, ref, lambda req: services.transition(req, S.DENIED, staff(people["admin"]),
                                                  MoveInput(reason="identity_not_verified")))
    page = signed_in(app, people["requester"]).get(f"/my/requests/{ref}").get_data(as_text=True)
    assert "Hidden Clinic" not in page
    with app.app_context():
        assert db.session.execute(select(func.count()).select_from(Disclosure)).scalar_one() == 1


def test_cfr2_31_a6_staff_record_a_revocation_received_in_writing(app, make_request, people, archive_patient):
    """A patient without an account revokes by letter: staff record it (the box ticked), the next mailing
    is refused, and the disclosure already made stays in the log."""
    ref = make_request(people["requester"], **THIRD_PARTY)
    verified(app, ref, people["admin"], archive_patient())
    paper_consent(app, ref, people["admin"])
    admin = signed_in(app, people["admin"])
    assert deliver(admin, app, ref).status_code == 302
    version = act(app, ref, lambda req: req.version)
    path = f"/queue/requests/{ref}/consent/revoke"
    unticked = admin.post(path, data={"revoke-version": str(version), "csrf_token": csrf_token(admin, "/account")})
    assert unticked.status_code == 400 and "Tick the box" in unticked.get_data(as_text=True)
    assert admin.post(path, data={"revoke-version": str(version), "revoke-confirm": "y",
                                  "csrf_token": csrf_token(admin, "/account")}).status_code == 302
    again = deliver(admin, app, ref, method="fax")
    assert again.status_code == 400 and "revoked the consent" in html.unescape(again.get_data(as_text=True))
    assert [d.channel for d in disclosures(app)] == ["mail"]
