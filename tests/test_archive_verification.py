"""The verification step in the queue: the candidate archive records shown as a table, and an MRN
lookup (POSTed and audited, the MRN never in a URL) that adds a record to the choices."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from sqlalchemy import select

from intake.extensions import db
from intake.records import services
from intake.records.models import RecordsRequest, RequestStatus
from intake.users.models import Role, User
from tests.conftest import FULL_ADMIN, csrf_token, login
from tests.test_account import audit, flashes


@pytest.fixture()
def setup(app, client, make_user, make_request):
    admin = make_user(FULL_ADMIN)
    requester = make_user(Role.REQUESTER)
    ref = make_request(requester)
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
        services.transition(req, RequestStatus.VERIFYING, db.session.get(User, admin.id))
        db.session.commit()
    assert login(client, admin.email).status_code == 302
    return {"ref": ref, "admin": admin}


def page_of(client, ref: str, **args) -> str:
    return client.get(f"/queue/requests/{ref}", query_string=args).get_data(as_text=True)


def offered(page: str) -> list[str]:
    select_html = page[page.index('name="move-in_review-archived_patient_id"'):]
    select_html = select_html[:select_html.index("</select>")]
    return re.findall(r'<option value="(\d+)"', select_html)


def lookup(client, ref: str, mrn: str, token: bool = True):
    data = {"lookup-mrn": mrn}
    if token:
        data["lookup-csrf_token"] = csrf_token(client, "/account")
    return client.post(f"/admin/archive/lookup/{ref}", data=data)


def version(app, ref: str) -> int:
    with app.app_context():
        return db.session.execute(select(RecordsRequest.version).where(RecordsRequest.reference == ref)).scalar_one()


def test_candidates_are_shown_as_a_table(app, client, setup, archive_patient):
    match = archive_patient(mrn="C-1", former_names="Stone, Jordan", record_location="Box 5")
    archive_patient(mrn="ELSEWHERE-0002", last_name="Else", dob=date(1960, 1, 1))
    page = page_of(client, setup["ref"])
    table = page[page.index("Archive records that may be this patient"):page.index("</table>", page.index(
        "Archive records that may be this patient"))]
    assert "C-1" in table and "Example, Jordan" in table and "Stone, Jordan" in table and "1980-05-17" in table
    assert "2017-03-01 – 2017-04-15" in table and "Box 5 (Records office)" in table
    assert "ELSEWHERE-0002" not in page  # (a random token on the page could hold a short MRN)
    assert offered(page) == [str(match)]
    assert 'name="lookup-mrn"' in page


def test_mrn_lookup_adds_the_record_to_the_choices_and_verification_works(app, client, setup, archive_patient):
    other = archive_patient(mrn="LOOKUP-0009", last_name="Differentname", dob=date(1979, 1, 1))
    ref = setup["ref"]
    assert offered(page_of(client, ref)) == []
    response = lookup(client, ref, " lookup-0009 ")
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location == f"/queue/requests/{ref}?archive={other}#move-in_review-heading"
    assert "LOOKUP-0009" not in location and "lookup-0009" not in location
    page = client.get(location).get_data(as_text=True)
    assert ("success", f"Archive record #{other} is now among the choices below.") in flashes(page)
    assert offered(page) == [str(other)] and "MRN lookup" in page and "Differentname" in page
    searched = audit(app, "archive.searched")
    assert [json.loads(e.details) for e in searched] == [{"by": "mrn", "found": 1}]
    assert searched[0].object_type == "records_request" and "LOOKUP-0009" not in searched[0].details
    # The looked-up record can be chosen; the move keeps it valid without the query string.
    data = {"target": "in_review", "move-in_review-version": str(version(app, ref)),
            "move-in_review-csrf_token": csrf_token(client, "/account"),
            "move-in_review-verification_method": "photo_id", "move-in_review-archived_patient_id": str(other)}
    response = client.post(f"/queue/requests/{ref}/move", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == ref)).scalar_one()
        assert (req.status, req.archived_patient_id) == (RequestStatus.IN_REVIEW, other)


def test_lookup_of_an_unknown_mrn(app, client, setup, archive_patient):
    archive_patient(mrn="K-1")
    response = lookup(client, setup["ref"], "K-2")
    assert response.status_code == 302 and response.headers["Location"] == f"/queue/requests/{setup['ref']}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert ("warning", "No record in the archive index has that MRN.") in flashes(page)
    assert [json.loads(e.details) for e in audit(app, "archive.searched")] == [{"by": "mrn", "found": 0}]


@pytest.mark.parametrize("mrn", ["", "M" * 33, "A\x00B"])
def test_bad_lookups_are_refused_without_echo(app, client, setup, mrn):
    response = lookup(client, setup["ref"], mrn)
    assert response.status_code == 302
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert ("warning", "Enter the whole medical record number (at most 32 characters) to look it up.") in flashes(page)
    assert audit(app, "archive.searched") == []


def test_lookup_needs_csrf_a_known_request_and_the_verifying_status(app, client, setup, archive_patient):
    archive_patient(mrn="V-1")
    assert lookup(client, setup["ref"], "V-1", token=False).status_code == 400
    assert lookup(client, "B" * 22, "V-1").status_code == 404
    assert lookup(client, "../../etc", "V-1").status_code == 404
    with app.app_context():
        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == setup["ref"])).scalar_one()
        services.transition(req, RequestStatus.WITHDRAWN, db.session.get(User, setup["admin"].id),
                            services.MoveInput(withdraw_reason="duplicate", withdraw_confirmed=True))
        db.session.commit()
    response = lookup(client, setup["ref"], "V-1")
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert any("is not waiting for verification" in text for _, text in flashes(page))
    assert audit(app, "archive.searched") == []


def test_guessed_archive_ids_in_the_query_string_are_harmless(app, client, setup, archive_patient):
    archive_patient()
    for value in ("999999", "abc", "1" * 40, "-1"):
        response = client.get(f"/queue/requests/{setup['ref']}", query_string={"archive": value})
        assert response.status_code == 200


def test_operators_cannot_look_up(app, make_user, setup, archive_patient):
    archive_patient(mrn="O-1")
    other = app.test_client()
    operator = make_user(Role.OPERATOR)
    assert login(other, operator.email).status_code == 302
    response = other.post(f"/admin/archive/lookup/{setup['ref']}", data={
        "lookup-mrn": "O-1", "lookup-csrf_token": csrf_token(other, "/account")})
    assert response.status_code == 403
