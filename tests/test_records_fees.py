"""Cost estimates: the pure computation for every basis and for bad input, the service (stored
estimate, timeline, audit, e-mail, version check), the staff form with hostile input, what the
requester sees, and that a fee never blocks a release."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import func, select

from config import load_environment, records_setting_problems
from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.notify.models import OutboxMessage
from intake.records import fees, services
from intake.records.common import RequestInvalid, RequestRefused, VersionConflict
from intake.records.fees import Breakdown, FeeInvalid, Schedule, estimate
from intake.records.models import EventKind, FeeBasis, FeeEstimate, RecordsRequest, RequestEvent, RequestStatus
from intake.records.services import MoveInput
from intake.records.timeline import describe
from intake.users.models import Role, User

from .conftest import FULL_ADMIN, csrf_token, login, verify_and_deliver

SCHEDULE = Schedule(page_cents=25, microfilm_page_cents=50, electronic_flat_cents=650, clerical_cents=0)
NEVER = "We never hold back your records because a bill is unpaid."


def _load(reference: str) -> RecordsRequest:
    return db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()


def _user(user: User) -> User:
    return db.session.get(User, user.id)


def _codes(breakdown: Breakdown) -> list[tuple[str, int]]:
    return [(line.code, line.cents) for line in breakdown.lines]


@pytest.fixture()
def people(make_user):
    return {"requester": make_user(Role.REQUESTER), "other": make_user(Role.REQUESTER),
            "admin": make_user(FULL_ADMIN)}


def _estimates(app) -> list[FeeEstimate]:
    with app.app_context():
        rows = list(db.session.execute(select(FeeEstimate).order_by(FeeEstimate.id)).scalars())
        for row in rows:
            db.session.expunge(row)
        return rows


# --- The pure computation ------------------------------------------------------------------------

def test_paper_is_pages_times_the_capped_rate_plus_postage(app):
    with app.test_request_context():
        result = estimate("paper", 120, 465, SCHEDULE)
        assert _codes(result) == [("copies", 3000), ("postage", 465)]
        assert result.total_cents == 3465 and result.per_page_cents == 25 and result.pages == 120
        assert result.lines[0].label == "120 pages at $0.25 a page"


def test_hipaa_164_524_c4_no_search_or_retrieval_fee_and_the_flat_fee_rule_at_start_up(app):
    """45 CFR 164.524(c)(4): no fee for locating or retrieving records, so the "clerical" setting must be
    0; OCR's guidance: a flat electronic fee above $6.50 only where the facility computed its actual or
    average cost. Each refusal names its rule, and the app refuses to start with it."""
    from intake import RefusedToStart, create_app

    locating = records_setting_problems({**app.config, "RECORDS_FEE_CLERICAL_CENTS": 2000})
    assert locating and "164.524(c)(4)" in locating[0] and "locating or retrieving" in locating[0]
    flat = records_setting_problems({**app.config, "RECORDS_FEE_ELECTRONIC_FLAT_CENTS": 5000})
    assert flat and "$6.50" in flat[0] and "actual or average" in flat[0]
    assert records_setting_problems({**app.config, "RECORDS_FEE_ELECTRONIC_FLAT_CENTS": 5000,
                                     "RECORDS_FEE_ELECTRONIC_COST_BASIS": "actual"}) == []
    assert records_setting_problems({**app.config, "RECORDS_FEE_ELECTRONIC_COST_BASIS": "guess"})
    with pytest.raises(RefusedToStart) as refused:
        create_app("testing", {**app.config, "RECORDS_FEE_CLERICAL_CENTS": 2000})
    assert "164.524(c)(4)" in str(refused.value)


def test_microfilm_uses_its_own_cap(app):
    with app.test_request_context():
        assert estimate("microfilm", 3, 0, SCHEDULE).total_cents == 150


def test_ocr_flat_fee_is_all_inclusive(app):
    """HHS OCR's guidance: the flat fee for an electronic copy includes everything; postage typed for a
    mailed disc is not added ($6.50, never $8.00)."""
    with app.test_request_context():
        result = estimate(FeeBasis.ELECTRONIC_FLAT, 999, 150, SCHEDULE)
        assert _codes(result) == [("flat", 650)] and result.total_cents == 650 and result.postage_cents == 0
        assert "all-inclusive" in result.lines[0].label


@pytest.mark.parametrize("basis", [FeeBasis.BENEFITS_APPEAL, FeeBasis.U_VISA, FeeBasis.VAWA_SELF_PETITION,
                                   FeeBasis.LEGAL_AID_BENEFITS, FeeBasis.WAIVED])
def test_free_and_waived_cost_nothing_whatever_the_pages_and_postage(app, basis):
    with app.test_request_context():
        result = estimate(basis, 900, 800, SCHEDULE)
        assert result.total_cents == 0 and result.postage_cents == 0
        assert _codes(result) == [("no_charge", 0)]
        if basis == FeeBasis.BENEFITS_APPEAL:
            assert "§123110" in result.lines[0].label


@pytest.mark.parametrize(("basis", "pages", "postage", "field"), [
    ("paper", -1, 0, "pages"),
    ("paper", 0, 0, "pages"),
    ("paper", None, 0, "pages"),
    ("paper", "", 0, "pages"),
    ("microfilm", 20_001, 0, "pages"),
    ("paper", 10**12, 0, "pages"),
    ("paper", "ten", 0, "pages"),
    ("paper", "1.5", 0, "pages"),
    ("paper", 1.5, 0, "pages"),
    ("paper", True, 0, "pages"),
    ("paper", "١٢", 0, "pages"),  # Arabic-Indic digits are digits to str.isdigit, not to us
    ("electronic_flat", -3, 0, "pages"),
    ("paper", 10, -1, "postage"),
    ("paper", 10, 10_001, "postage"),
    ("paper", 10, "abc", "postage"),
    ("paper", 10, 1.5, "postage"),
    ("gold", 10, 0, "basis"),
    (None, 10, 0, "basis"),
    ("PAPER' OR 1=1 --", 10, 0, "basis"),
])
def test_bad_input_is_refused_with_the_field_named(app, basis, pages, postage, field):
    with app.test_request_context(), pytest.raises(FeeInvalid) as caught:
        estimate(basis, pages, postage, SCHEDULE)
    assert field in caught.value.errors


def test_settings_default_to_the_california_caps_and_refuse_higher(app):
    assert fees.schedule_from(app.config) == SCHEDULE
    assert records_setting_problems({**app.config, "RECORDS_FEE_PAGE_CENTS": 30}) == [
        "RECORDS_FEE_PAGE_CENTS must be a whole number of cents between 0 and 25"]
    assert records_setting_problems({**app.config, "RECORDS_FEE_MICROFILM_PAGE_CENTS": "50"})
    assert records_setting_problems({**app.config, "RECORDS_FEE_CLERICAL_CENTS": -1})
    assert records_setting_problems(dict(app.config)) == []
    settings: dict = {}
    load_environment(settings, {"RECORDS_FEE_CLERICAL_CENTS": "0", "RECORDS_FEE_ELECTRONIC_FLAT_CENTS": "500",
                                "RECORDS_FEE_ELECTRONIC_COST_BASIS": "average"})
    assert settings == {"RECORDS_FEE_CLERICAL_CENTS": 0, "RECORDS_FEE_ELECTRONIC_FLAT_CENTS": 500,
                        "RECORDS_FEE_ELECTRONIC_COST_BASIS": "average"}


# --- The service -------------------------------------------------------------------------------

def test_give_estimate_stores_shows_audits_and_emails_without_the_amount(app, people, make_request):
    ref = make_request(people["requester"])
    with app.test_request_context():
        req = _load(ref)
        fees.give_estimate(req, _user(people["admin"]), "paper", 40, 150, expected_version=req.version)
        db.session.commit()
        fee = db.session.execute(select(FeeEstimate)).scalar_one()
        assert (fee.request_id, fee.basis, fee.pages, fee.per_page_cents, fee.postage_cents, fee.total_cents) == (
            req.id, FeeBasis.PAPER, 40, 25, 150, 1150)
        assert fee.created_by_id == people["admin"].id and fee.waiver_reason is None
        event = db.session.execute(select(RequestEvent).where(RequestEvent.kind == EventKind.FEE_ESTIMATE)).scalar_one()
        assert event.visibility == "requester"
        said = describe(event, "en")
        assert "$11.50" in said.text and NEVER in said.text and event.body is None
        assert "Paper copies" not in (event.params or "")  # stored as codes, worded when read
        audit = db.session.execute(select(AuditEvent).where(AuditEvent.action == "request.fee_estimate")).scalar_one()
        assert json.loads(audit.details) == {"basis": "paper", "total_cents": 1150}
        mail = db.session.execute(select(OutboxMessage).where(OutboxMessage.kind == "records_update")).scalar_one()
        assert "11.50" not in mail.body and "Jordan" not in mail.body and "11.50" not in mail.subject


def test_a_waiver_needs_a_reason_and_keeps_it(app, people, make_request):
    ref = make_request(people["requester"])
    with app.test_request_context():
        req = _load(ref)
        with pytest.raises(RequestInvalid) as caught:
            fees.give_estimate(req, _user(people["admin"]), "waived", None, None, waiver_reason="   ")
        assert "waiver_reason" in caught.value.errors
        with pytest.raises(RequestInvalid) as caught:
            fees.give_estimate(req, _user(people["admin"]), "waived", None, None, waiver_reason="x" * 2001)
        assert "waiver_reason" in caught.value.errors
        db.session.rollback()
        assert db.session.execute(select(func.count(FeeEstimate.id))).scalar() == 0
        req = _load(ref)
        fees.give_estimate(req, _user(people["admin"]), "waived", 12, 0, waiver_reason="Hardship, by the director")
        db.session.commit()
        fee = db.session.execute(select(FeeEstimate)).scalar_one()
        assert fee.total_cents == 0 and fee.waiver_reason == "Hardship, by the director"
        event = db.session.execute(select(RequestEvent).where(RequestEvent.kind == EventKind.FEE_ESTIMATE)).scalar_one()
        assert "Hardship" not in describe(event, "en").text  # the reason is internal


def test_a_reason_is_not_kept_unless_the_fee_is_waived(app, people, make_request):
    ref = make_request(people["requester"])
    with app.test_request_context():
        fees.give_estimate(_load(ref), _user(people["admin"]), "benefits_appeal", None, None, waiver_reason="stray")
        db.session.commit()
        assert db.session.execute(select(FeeEstimate.waiver_reason)).scalar_one() is None


def test_only_staff_on_an_open_request_with_the_current_version(app, people, make_request):
    ref = make_request(people["requester"])
    with app.test_request_context():
        req = _load(ref)
        with pytest.raises(RequestRefused):
            fees.give_estimate(req, _user(people["requester"]), "paper", 1, 0)
        with pytest.raises(VersionConflict):
            fees.give_estimate(req, _user(people["admin"]), "paper", 1, 0, expected_version=req.version + 1)
        services.transition(req, RequestStatus.WITHDRAWN, _user(people["requester"]))
        db.session.commit()
        with pytest.raises(RequestInvalid) as caught:
            fees.give_estimate(_load(ref), _user(people["admin"]), "paper", 1, 0)
        assert "closed" in caught.value.errors["basis"]
        db.session.rollback()
        assert db.session.execute(select(func.count(FeeEstimate.id))).scalar() == 0


def test_an_unpaid_fee_never_blocks_a_release(app, people, make_request, archive_patient):
    patient = archive_patient()
    ref = make_request(people["requester"], delivery="mail", record_format="paper", mail_address="1 Main St")
    with app.test_request_context():
        req = _load(ref)
        admin = _user(people["admin"])
        fees.give_estimate(req, admin, "paper", 300, 900)
        verify_and_deliver(req, admin, patient)
        services.transition(req, RequestStatus.FULFILLED, admin, MoveInput())
        db.session.commit()
        assert _load(ref).status == RequestStatus.FULFILLED


# --- Through HTTP ------------------------------------------------------------------------------

def _form(client, ref: str, **fields) -> dict:
    token = csrf_token(client, f"/queue/requests/{ref}")
    data = {"fee-csrf_token": token, "fee-version": "1", "fee-basis": "paper", "fee-pages": "10",
            "fee-postage": "", "fee-waiver_reason": ""}
    data.update({f"fee-{k}": v for k, v in fields.items()})
    return data


@pytest.fixture()
def admin_client(client, people):
    assert login(client, people["admin"].email).status_code == 302
    return client


def test_staff_give_an_estimate_and_the_requester_reads_it(app, client, people, make_request):
    ref = make_request(people["requester"])
    assert login(client, people["admin"].email).status_code == 302
    page = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert 'id="fees-heading"' in page and "Give an estimate" in page and "$0.25" in page
    response = client.post(f"/queue/requests/{ref}/fee-estimate", data=_form(client, ref, postage="4.65"))
    assert response.status_code == 302 and response.headers["Location"] == f"/queue/requests/{ref}"
    page = client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "cost estimate saved" in page and "$7.15" in page
    client.post("/logout", data={"csrf_token": csrf_token(client, "/account")})
    assert login(client, people["requester"].email).status_code == 302
    page = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    lines = re.search(r'<table class="table table-sm w-auto" id="fee-lines">(.*?)</table>', page, re.S).group(1)
    assert "10 pages at $0.25 a page" in lines and "Postage" in lines and "$7.15" in lines
    assert NEVER in page and "Give an estimate" not in page
    assert _estimates(app)[0].total_cents == 715


def test_the_requester_always_reads_that_records_are_never_held_back(app, client, people, make_request):
    ref = make_request(people["requester"])
    assert login(client, people["requester"].email).status_code == 302
    page = client.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert NEVER in page and "We have not given a cost estimate" in page


def test_the_newest_estimate_is_the_one_shown(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    admin_client.post(f"/queue/requests/{ref}/fee-estimate", data=_form(admin_client, ref, pages="10"))
    admin_client.post(f"/queue/requests/{ref}/fee-estimate",
                      data=_form(admin_client, ref, basis="electronic_flat", pages=""))
    page = admin_client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "Electronic copy, flat fee" in page and "$6.50" in page and "10 pages at" not in page
    assert [e.total_cents for e in _estimates(app)] == [250, 650]


@pytest.mark.parametrize(("fields", "message"), [
    ({"basis": ""}, "Choose how the fee is worked out."),
    ({"basis": "gold"}, "Not a valid choice"),
    ({"basis": "paper", "pages": ""}, "Enter the number of pages, from 1 to 20000."),
    ({"pages": "-5"}, "Enter a number of pages from 0 to 20000."),
    ({"pages": "abc"}, "Not a valid integer value."),
    ({"pages": "99999999999999999999999"}, "Enter a number of pages from 0 to 20000."),
    ({"pages": "9" * 400}, "Enter a number of pages from 0 to 20000."),  # an OverflowError before (the fuzz)
    ({"postage": "abc"}, "Not a valid decimal value."),
    ({"postage": "sNaN"}, "Enter the postage in dollars and cents, like 4.65."),
    ({"postage": "NaN"}, "Enter the postage in dollars and cents, like 4.65."),
    ({"postage": "-Infinity"}, "Enter the postage in dollars and cents, like 4.65."),
    ({"postage": "1e999999"}, "Enter the postage from $0 to $100."),
    ({"postage": "-1"}, "Enter the postage from $0 to $100."),
    ({"postage": "0.001"}, "Enter the postage in dollars and cents"),
    ({"basis": "waived", "pages": ""}, "Give the reason the fee is waived."),
    ({"basis": "waived", "waiver_reason": "x" * 2001}, "Please keep this under 2000 characters."),
])
def test_bad_input_is_a_clear_400_and_nothing_is_stored(app, admin_client, people, make_request, fields, message):
    ref = make_request(people["requester"])
    response = admin_client.post(f"/queue/requests/{ref}/fee-estimate", data=_form(admin_client, ref, **fields))
    assert response.status_code == 400
    page = response.get_data(as_text=True)
    assert message in page
    assert _estimates(app) == []


def test_hostile_text_is_escaped_and_sql_is_just_text(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    hostile = "<script>alert(1)</script>'; DROP TABLE fee_estimates; --"
    response = admin_client.post(f"/queue/requests/{ref}/fee-estimate",
                                 data=_form(admin_client, ref, basis="waived", waiver_reason=hostile))
    assert response.status_code == 302
    page = admin_client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert _estimates(app)[0].waiver_reason == hostile


def test_a_stale_version_is_409_with_the_typed_text_kept(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    with app.app_context():
        services.claim(_load(ref), _user(people["admin"]))  # someone saves the request meanwhile
        db.session.commit()
    response = admin_client.post(f"/queue/requests/{ref}/fee-estimate",
                                 data=_form(admin_client, ref, basis="waived", waiver_reason="Kept reason 123"))
    assert response.status_code == 409
    page = response.get_data(as_text=True)
    assert "Someone else changed this request" in page and "Kept reason 123" in page
    assert _estimates(app) == []


def test_missing_csrf_or_forged_version_is_refused(app, admin_client, people, make_request):
    ref = make_request(people["requester"])
    data = _form(admin_client, ref)
    del data["fee-csrf_token"]
    assert admin_client.post(f"/queue/requests/{ref}/fee-estimate", data=data).status_code == 400
    assert admin_client.post(f"/queue/requests/{ref}/fee-estimate",
                             data=_form(admin_client, ref, version="abc")).status_code == 400
    assert _estimates(app) == []


def test_unknown_or_guessed_references_are_404(app, admin_client, people, make_request):
    make_request(people["requester"])
    token = csrf_token(admin_client, "/account")
    for ref in ("AAAAAAAAAAAAAAAAAAAAAA", "../../etc", "x" * 300):
        response = admin_client.post(f"/queue/requests/{ref}/fee-estimate", data={"fee-csrf_token": token})
        assert response.status_code == 404
    assert _estimates(app) == []


def test_a_requester_cannot_give_an_estimate(app, client, people, make_request):
    ref = make_request(people["requester"])
    assert login(client, people["requester"].email).status_code == 302
    token = csrf_token(client, f"/my/requests/{ref}")
    response = client.post(f"/queue/requests/{ref}/fee-estimate",
                           data={"fee-csrf_token": token, "fee-version": "1", "fee-basis": "waived"})
    assert response.status_code == 403
    assert _estimates(app) == []


# --- What may cost anything (45 CFR 164.524(c)(4), 164.526, 164.528(c)(2); H&S 123110, 123111) ----------

@pytest.mark.parametrize("basis", ["benefits_appeal", "u_visa", "vawa_self_petition", "legal_aid_benefits"])
def test_ab_2520_free_copy_categories(app, admin_client, people, make_request, basis):
    """H&S 123110 as amended by AB 2520: a copy that supports a public-benefits claim or appeal, a U-visa
    petition, a VAWA self-petition, or a legal-aid representative's public-benefits claim is free; each is a
    reason of its own (not a manual waiver), and the requester reads why it costs nothing."""
    ref = make_request(people["requester"], record_format="paper", delivery="mail", mail_address="1 Main St")
    response = admin_client.post(f"/queue/requests/{ref}/fee-estimate",
                                 data=_form(admin_client, ref, basis=basis, pages="300", postage="9.00"))
    assert response.status_code == 302
    with app.app_context():
        fee = db.session.execute(select(FeeEstimate)).scalar_one()
        assert (fee.basis, fee.total_cents, fee.postage_cents, fee.waiver_reason) == (basis, 0, 0, None)
    requester = app.test_client()
    login(requester, people["requester"].email)
    page = requester.get(f"/my/requests/{ref}").get_data(as_text=True)
    assert "No charge" in page and "123110" in page


@pytest.mark.parametrize("request_type, message", [
    ("inspection", "An inspection is free"),
    ("addendum", "Adding a statement to the record is free"),
    ("accounting", "The first accounting of disclosures in any 12 months is free"),
])
def test_hipaa_164_524_c4_no_estimate_where_no_fee_is_allowed(app, admin_client, people, make_request,
                                                             request_type, message):
    extra = {"addendum_text": "My discharge date was wrong."} if request_type == "addendum" else {}
    ref = make_request(people["requester"], request_type=request_type,
                       delivery=None if request_type == "inspection" else "secure_download", **extra)
    assert message in admin_client.get(f"/queue/requests/{ref}").get_data(as_text=True)
    response = admin_client.post(f"/queue/requests/{ref}/fee-estimate", data=_form(admin_client, ref))
    assert response.status_code == 400 and message in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.execute(select(func.count(FeeEstimate.id))).scalar() == 0


def test_hipaa_164_528_c2_a_second_accounting_within_12_months_may_cost(app, people, make_request, archive_patient):
    """The first accounting in any 12 months is free; a second one about the same patient within them may
    carry a reasonable, cost-based fee the requester is told in advance."""
    pid = archive_patient()
    first = make_request(people["requester"], request_type="accounting")
    second = make_request(people["requester"], request_type="accounting")
    with app.test_request_context():
        admin = _user(people["admin"])
        for ref in (first, second):
            req = _load(ref)
            services.transition(req, RequestStatus.VERIFYING, admin)
            services.transition(req, RequestStatus.IN_REVIEW, admin, MoveInput(
                verification_method="photo_id", archived_patient_id=pid))
        with pytest.raises(RequestInvalid):
            fees.give_estimate(_load(first), admin, "paper", 2, 0)
        fee = fees.give_estimate(_load(second), admin, "paper", 2, 0)
        assert fee.total_cents == 50
        db.session.rollback()
