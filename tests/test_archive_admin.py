"""Archive admin pages: search by exact MRN or by last name + date of birth (POSTed, audited
without the terms), a patient's page with the linked requests, edits and additions with the
import's checks, hostile input, admins only."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from sqlalchemy import func, select

from intake.archive.models import ArchivedPatient, ArchiveMatchKey
from intake.archive.services import candidates, find_by_mrn
from intake.extensions import db
from intake.users.models import Role
from tests.conftest import csrf_token, login
from tests.test_account import audit, field_error, flashes


def search(client, **terms):
    data = {"mrn": "", "last_name": "", "dob": "", **terms, "csrf_token": csrf_token(client, "/admin/archive/")}
    return client.post("/admin/archive/", data=data)


FORM = {"mrn": "N-1", "last_name": "Okafor", "first_name": "Ada", "former_names": "Stone, Ada", "dob": "1970-01-02",
        "admitted_on": "2015-06-01", "discharged_on": "2015-07-01", "record_location": "Box 7",
        "custodian": "Records office", "retention_until": "2035-01-01"}


def post_new(client, **overrides):
    data = {**FORM, **overrides, "csrf_token": csrf_token(client, "/admin/archive/new")}
    return client.post("/admin/archive/new", data=data)


def edit_data(client, patient_id: int, **overrides) -> dict:
    page = client.get(f"/admin/archive/{patient_id}").get_data(as_text=True)
    loaded = re.search(r'id="loaded" name="loaded" type="hidden" value="([0-9]+)"', page).group(1)
    return {**FORM, "loaded": loaded, "csrf_token": csrf_token(client, f"/admin/archive/{patient_id}"), **overrides}


def patient_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(ArchivedPatient)).scalar()


def details(app, action: str) -> list[dict]:
    return [json.loads(event.details) for event in audit(app, action)]


# --- search ----------------------------------------------------------------------------------

def test_index_lists_nobody_and_search_by_mrn(app, admin_client, archive_patient):
    archive_patient(mrn="X-77")
    page = admin_client.get("/admin/archive/").get_data(as_text=True)
    assert "Archive index" in page and "X-77" not in page and "Example" not in page
    response = search(admin_client, mrn=" x-77 ")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "X-77" in page and "Example, Jordan" in page and "1980-05-17" in page and "Box 12, shelf 3" in page
    assert details(app, "archive.searched") == [{"by": "mrn", "found": 1}]
    assert "X-77" not in audit(app, "archive.searched")[0].details
    page = search(admin_client, mrn="X-78").get_data(as_text=True)
    assert "No patient in the index matches." in page
    assert details(app, "archive.searched")[-1] == {"by": "mrn", "found": 0}


def test_search_by_last_name_and_date_of_birth_includes_former_names(app, admin_client, archive_patient):
    first = archive_patient(mrn="Y-1", former_names="Stone, Jordan")
    archive_patient(mrn="Y-2", dob=date(1980, 5, 18))
    archive_patient(mrn="Y-3", last_name="Other")
    page = search(admin_client, last_name="EXAMPLE", dob="1980-05-17").get_data(as_text=True)
    assert "Y-1" in page and "Y-2" not in page and "Y-3" not in page
    assert f'href="/admin/archive/{first}"' in page
    page = search(admin_client, last_name="stone", dob="1980-05-17").get_data(as_text=True)
    assert "Y-1" in page
    assert details(app, "archive.searched") == [{"by": "name_dob", "found": 1}, {"by": "name_dob", "found": 1}]


@pytest.mark.parametrize(("terms", "field", "message"), [
    ({}, "mrn", "Enter an MRN, or a last name and a date of birth."),
    ({"last_name": "Example"}, "dob", "Enter the date of birth too."),
    ({"dob": "1980-05-17"}, "last_name", "Enter the last name too."),
    ({"last_name": "Example", "dob": "17/05/1980"}, "dob", "Enter a date like 1980-05-17"),
    ({"mrn": "M" * 33}, "mrn", "Please keep this under 32 characters."),
    ({"mrn": "A\x00B"}, "mrn", "Remove the invisible control characters"),
])
def test_bad_searches_are_refused_and_not_audited(app, admin_client, terms, field, message):
    response = search(admin_client, **terms)
    assert response.status_code == 400
    assert message in field_error(response.get_data(as_text=True), field)
    assert audit(app, "archive.searched") == []


def test_search_needs_csrf_and_never_puts_terms_in_the_url(app, admin_client, archive_patient):
    archive_patient(mrn="Z-1")
    response = admin_client.post("/admin/archive/", data={"mrn": "Z-1"})
    assert response.status_code == 400 and "Z-1" not in response.get_data(as_text=True)
    page = admin_client.get("/admin/archive/").get_data(as_text=True)
    assert 'method="post" action="/admin/archive/"' in page
    # A GET with terms in the query string searches nothing.
    page = admin_client.get("/admin/archive/?mrn=Z-1").get_data(as_text=True)
    assert "Example, Jordan" not in page and audit(app, "archive.searched") == []


def test_hostile_search_text_is_harmless(app, admin_client, archive_patient):
    archive_patient(mrn="Q-1")
    for text in ("' OR 1=1 --", "<script>alert(1)</script>"):
        response = search(admin_client, mrn=text)
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and "No patient in the index matches." in page
        assert "<script>alert(1)</script>" not in page
        response = search(admin_client, last_name=text, dob="1980-05-17")
        assert response.status_code == 200 and "Q-1" not in response.get_data(as_text=True)


# --- patient page and edits ------------------------------------------------------------------

def test_patient_page_shows_the_record_and_its_requests_and_is_audited(
        app, admin_client, archive_patient, make_user, make_request):
    from tests.conftest import verify_and_deliver

    patient_id = archive_patient(mrn="P-1")
    requester = make_user(Role.REQUESTER)
    reference = make_request(requester)
    other = make_request(requester)
    with app.app_context():
        from intake.records.models import RecordsRequest
        from intake.users.models import User

        req = db.session.execute(select(RecordsRequest).where(RecordsRequest.reference == reference)).scalar_one()
        verify_and_deliver(req, db.session.get(User, admin_client.admin.id), patient_id)
        db.session.commit()
        human_ref = req.human_ref
    response = admin_client.get(f"/admin/archive/{patient_id}")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "P-1" in page and "Example, Jordan" in page and "Box 12, shelf 3" in page
    assert f'href="/queue/requests/{reference}"' in page and human_ref in page
    assert other not in page
    viewed = audit(app, "archive.viewed")
    assert [(e.object_type, e.object_id, e.actor_id) for e in viewed] == [
        ("archived_patient", str(patient_id), admin_client.admin.id)]
    assert admin_client.get("/admin/archive/999999").status_code == 404


def test_edit_updates_fields_and_recomputes_match_keys(app, admin_client, archive_patient):
    patient_id = archive_patient(mrn="E-1")
    data = edit_data(admin_client, patient_id, mrn="E-1", last_name="Okafor", first_name="Jordan",
                     former_names="Example, Jordan", dob="1980-05-17", record_location="Box 99")
    response = admin_client.post(f"/admin/archive/{patient_id}", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    assert ("success", f"Archive record #{patient_id} saved.") in flashes(page)
    with app.app_context():
        patient = db.session.get(ArchivedPatient, patient_id)
        assert (patient.last_name, patient.record_location, patient.retention_until) == (
            "Okafor", "Box 99", date(2035, 1, 1))
        dob = date(1980, 5, 17)
        assert [p.id for p in candidates(["Jordan Okafor"], dob)] == [patient_id]
        assert [p.id for p in candidates(["Jordan Example"], dob)] == [patient_id]
        keys = db.session.execute(select(func.count()).select_from(ArchiveMatchKey).where(
            ArchiveMatchKey.patient_id == patient_id)).scalar()
        assert keys == 2
    changed = details(app, "archive.updated")
    assert len(changed) == 1 and {"last_name", "former_names", "record_location"} <= set(changed[0]["fields"])
    assert "Okafor" not in audit(app, "archive.updated")[0].details
    # Saving the same values again changes nothing and audits nothing more.
    response = admin_client.post(f"/admin/archive/{patient_id}", data=edit_data(
        admin_client, patient_id, mrn="E-1", last_name="Okafor", first_name="Jordan",
        former_names="Example, Jordan", dob="1980-05-17", record_location="Box 99"))
    assert response.status_code == 302 and len(details(app, "archive.updated")) == 1


def test_edit_with_the_mrn_of_another_record_is_refused(app, admin_client, archive_patient):
    archive_patient(mrn="T-1")
    patient_id = archive_patient(mrn="T-2")
    response = admin_client.post(f"/admin/archive/{patient_id}", data=edit_data(admin_client, patient_id, mrn="t-1"))
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "mrn") == "Another record in the index has this MRN."
    with app.app_context():
        assert db.session.get(ArchivedPatient, patient_id).mrn == "T-2"


@pytest.mark.parametrize(("overrides", "field", "message"), [
    ({"mrn": ""}, "mrn", "Enter the medical record number."),
    ({"last_name": ""}, "last_name", "Enter the last name."),
    ({"dob": ""}, "dob", "Enter the date of birth."),
    ({"dob": "1970-02-30"}, "dob", "Enter a date like 1980-05-17"),
    ({"dob": "2999-01-01", "admitted_on": "", "discharged_on": ""}, "dob", "cannot be in the future"),
    ({"discharged_on": "2015-05-01"}, "discharged_on", "cannot be before the admission"),
    ({"admitted_on": "2019-01-01", "discharged_on": "2019-02-01"}, "discharged_on", "after the facility closed"),
    ({"first_name": "x" * 101}, "first_name", "Please keep this under 100 characters."),
    ({"former_names": "x" * 501}, "former_names", "Please keep this under 500 characters."),
    ({"custodian": "Bad\x1bvalue"}, "custodian", "Remove the invisible control characters"),
])
def test_bad_edits_change_nothing(app, admin_client, archive_patient, overrides, field, message):
    patient_id = archive_patient(mrn="B-1")
    response = admin_client.post(f"/admin/archive/{patient_id}", data=edit_data(admin_client, patient_id, **overrides))
    assert response.status_code == 400
    assert message in field_error(response.get_data(as_text=True), field)
    with app.app_context():
        patient = db.session.get(ArchivedPatient, patient_id)
        assert (patient.mrn, patient.last_name, patient.dob) == ("B-1", "Example", "1980-05-17")
    assert audit(app, "archive.updated") == []


def test_stale_edit_is_refused_with_the_typed_text_kept(app, admin_client, archive_patient):
    patient_id = archive_patient(mrn="S-1")
    stale = edit_data(admin_client, patient_id, mrn="S-1", record_location="Box from the stale copy")
    fresh = edit_data(admin_client, patient_id, mrn="S-1", record_location="Box 1")
    assert admin_client.post(f"/admin/archive/{patient_id}", data=fresh).status_code == 302
    response = admin_client.post(f"/admin/archive/{patient_id}", data=stale)
    page = response.get_data(as_text=True)
    assert response.status_code == 409
    assert "Someone changed this record while you were editing it." in page
    assert 'value="Box from the stale copy"' in page
    with app.app_context():
        assert db.session.get(ArchivedPatient, patient_id).record_location == "Box 1"


def test_edit_without_csrf_or_with_html_is_safe(app, admin_client, archive_patient):
    patient_id = archive_patient(mrn="H-1")
    data = edit_data(admin_client, patient_id, mrn="H-1")
    del data["csrf_token"]
    assert admin_client.post(f"/admin/archive/{patient_id}", data=data).status_code == 400
    hostile = "<b>bold</b>'); DROP TABLE archived_patients;--"
    response = admin_client.post(f"/admin/archive/{patient_id}",
                                 data=edit_data(admin_client, patient_id, mrn="H-1", record_location=hostile))
    assert response.status_code == 302
    page = admin_client.get(f"/admin/archive/{patient_id}").get_data(as_text=True)
    assert "<b>bold</b>" not in page and "&lt;b&gt;bold&lt;/b&gt;" in page
    assert patient_count(app) == 1


# --- adding by hand --------------------------------------------------------------------------

def test_add_a_patient_by_hand(app, admin_client):
    assert admin_client.get("/admin/archive/new").status_code == 200
    response = post_new(admin_client)
    assert response.status_code == 302, response.get_data(as_text=True)
    with app.app_context():
        patient = find_by_mrn("N-1")
        assert (patient.last_name, patient.former_names, patient.discharged_on) == (
            "Okafor", "Stone, Ada", "2015-07-01")
        assert [p.id for p in candidates(["Ada Stone"], date(1970, 1, 2))] == [patient.id]
        assert response.headers["Location"] == f"/admin/archive/{patient.id}"
    created = audit(app, "archive.created")
    assert len(created) == 1 and "Okafor" not in created[0].details
    # The same MRN again is refused next to the field.
    response = post_new(admin_client, mrn="n-1")
    assert response.status_code == 400
    assert field_error(response.get_data(as_text=True), "mrn") == "Another record in the index has this MRN."
    assert patient_count(app) == 1


def test_bad_additions_store_nothing(app, admin_client):
    for overrides in ({"last_name": ""}, {"dob": "tomorrow"}, {"discharged_on": "2014-01-01"},
                      {"mrn": "M" * 40}, {"last_name": "!!!"}):
        response = post_new(admin_client, **overrides)
        assert response.status_code == 400, overrides
    assert admin_client.post("/admin/archive/new", data=FORM).status_code == 400  # no CSRF token
    assert patient_count(app) == 0 and audit(app, "archive.created") == []


def test_only_admins_reach_the_archive(app, client, make_user, archive_patient):
    patient_id = archive_patient()
    operator = make_user(Role.OPERATOR)
    assert login(client, operator.email).status_code == 302
    for path in ("/admin/archive/", "/admin/archive/new", f"/admin/archive/{patient_id}"):
        assert client.get(path).status_code == 403
    page = client.get("/account").get_data(as_text=True)
    assert 'href="/admin/archive/"' not in page


def test_admins_see_the_navbar_link(admin_client):
    assert 'href="/admin/archive/"' in admin_client.get("/account").get_data(as_text=True)
