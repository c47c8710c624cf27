"""The archive's retention floor (California Health & Safety Code §123145; HIPAA documentation, 45 CFR
164.530(j)): computed from discharge and date of birth, never typed; a typed "keep until" below it is
refused with the rule named; nothing is offered for destruction before it; a legal hold always wins."""

from __future__ import annotations

import html
import re
from datetime import UTC, date, datetime

import pytest
from sqlalchemy import select

from intake.archive.models import ArchivedPatient
from intake.archive.services import retention_floor
from intake.extensions import db
from intake.records.models import Disclosure
from tests.conftest import csrf_token

CLOSED = date(2018, 11, 10)
NOW = datetime(2026, 6, 15, 19, 0, tzinfo=UTC)


@pytest.mark.parametrize("discharged, dob, documented, floor", [
    (date(2018, 11, 10), date(1980, 5, 17), None, date(2025, 11, 10)),  # an adult: seven years after discharge
    (date(2018, 6, 1), date(2010, 3, 1), None, date(2029, 3, 1)),  # a minor: until age 19, here past seven years
    (date(2015, 6, 1), date(1997, 9, 1), None, date(2022, 6, 1)),  # 17 at discharge: age 19 comes before 7 years
    (None, date(1980, 5, 17), None, date(2025, 11, 10)),  # end of stay unknown: the closure at the latest
    (date(2015, 6, 1), date(1980, 5, 17), date(2024, 2, 29), date(2030, 2, 28)),  # six years after a disclosure
])
def test_hsc_123145_retention_floor(discharged, dob, documented, floor):
    assert retention_floor(discharged, dob, CLOSED, documented) == floor


def edit(client, patient_id: int, **fields):
    page = client.get(f"/admin/archive/{patient_id}").get_data(as_text=True)
    loaded = re.search(r'id="loaded" name="loaded" type="hidden" value="([0-9]+)"', page).group(1)
    data = {"mrn": "F-1", "last_name": "Example", "first_name": "Jordan", "dob": "1980-05-17",
            "admitted_on": "2018-10-01", "discharged_on": "2018-11-10", "loaded": loaded,
            "csrf_token": csrf_token(client, f"/admin/archive/{patient_id}"), **fields}
    return client.post(f"/admin/archive/{patient_id}", data={k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize("dob, admitted, discharged, typed, floor", [
    ("1980-05-17", "2018-10-01", "2018-11-10", "2019-01-01", "2025-11-10"),  # the reviewer's adult
    ("2010-01-15", "2018-01-01", "2018-03-01", "2025-01-02", "2029-01-15"),  # the reviewer's minor
])
def test_hsc_123145_a_typed_date_before_the_floor_is_refused(app, admin_client, archive_patient, dob, admitted,
                                                             discharged, typed, floor):
    patient_id = archive_patient(mrn="F-1")
    response = edit(admin_client, patient_id, dob=dob, admitted_on=admitted, discharged_on=discharged,
                    retention_until=typed)
    body = html.unescape(response.get_data(as_text=True))
    assert response.status_code == 400 and f"kept until at least {floor}" in body and "123145" in body
    with app.app_context():
        assert db.session.get(ArchivedPatient, patient_id).retention_until is None
    ok = edit(admin_client, patient_id, dob=dob, admitted_on=admitted, discharged_on=discharged, retention_until=floor)
    assert ok.status_code == 302
    with app.app_context():
        patient = db.session.get(ArchivedPatient, patient_id)
        assert patient.retention_floor == date.fromisoformat(floor)
    assert f"{date.fromisoformat(floor):%b} " in admin_client.get(f"/admin/archive/{patient_id}").get_data(
        as_text=True)


def _listed(admin_client) -> list[str]:
    return re.findall(r'data-patient="(\d+)"', admin_client.get("/admin/retention/archive").get_data(as_text=True))


def test_hsc_123145_nothing_is_past_retention_before_its_floor_and_a_hold_wins(app, admin_client, archive_patient,
                                                                              runner, monkeypatch):
    # On 15 June 2025, before the adult's floor (10 November 2025).
    monkeypatch.setattr("intake.admin.retention_views._today", lambda: date(2025, 6, 15))
    adult = archive_patient(mrn="A-1", dob=date(1980, 5, 17), admitted_on=date(2018, 10, 1),
                            discharged_on=date(2018, 11, 10))
    minor = archive_patient(mrn="M-1", dob=date(2010, 1, 15), admitted_on=date(2018, 1, 1),
                            discharged_on=date(2018, 3, 1))
    old = archive_patient(mrn="O-1", dob=date(1960, 1, 1), admitted_on=date(2010, 1, 1),
                          discharged_on=date(2010, 2, 1))
    held = archive_patient(mrn="H-1", dob=date(1960, 1, 1), admitted_on=date(2010, 1, 1),
                           discharged_on=date(2010, 2, 1))
    legacy = archive_patient(mrn="L-1", dob=date(1960, 1, 1), admitted_on=date(2010, 1, 1),
                             discharged_on=date(2010, 2, 1))
    with app.app_context():
        # Typed before the floor existed (the reviewer's cases), an old record, a held one, and one
        # imported before any floor was computed.
        db.session.get(ArchivedPatient, adult).retention_until = date(2019, 1, 1)
        db.session.get(ArchivedPatient, minor).retention_until = date(2025, 1, 2)
        for pid in (old, held, legacy):
            db.session.get(ArchivedPatient, pid).retention_until = date(2018, 1, 1)
        db.session.get(ArchivedPatient, held).legal_hold = True
        db.session.get(ArchivedPatient, legacy).retention_floor = None
        db.session.commit()
    assert _listed(admin_client) == [str(old)]
    # A disclosure of the old record in 2024 keeps it six more years (45 CFR 164.530(j)).
    with app.app_context():
        db.session.add(Disclosure(archived_patient_id=old, basis="consent",
                                  disclosed_at=datetime(2024, 3, 1, 19, 0, tzinfo=UTC), recipient_name="Clinic",
                                  description="records", purpose="care"))
        db.session.commit()
    result = runner.invoke(args=["archive", "retention-floors", "--all"])
    assert result.exit_code == 0 and "5 retention floors computed" in result.output
    with app.app_context():
        assert db.session.get(ArchivedPatient, old).retention_floor == date(2030, 3, 1)
        assert db.session.get(ArchivedPatient, legacy).retention_floor == date(2017, 2, 1)
    assert _listed(admin_client) == [str(legacy)]  # the held one never, whatever its dates


def test_a_legal_hold_is_set_on_the_record_page(app, admin_client, archive_patient):
    patient_id = archive_patient(mrn="F-1", dob=date(1980, 5, 17), admitted_on=date(2018, 10, 1),
                                 discharged_on=date(2018, 11, 10))
    assert edit(admin_client, patient_id, legal_hold="y", hold_reason="Litigation hold, case 42").status_code == 302
    page = admin_client.get(f"/admin/archive/{patient_id}").get_data(as_text=True)
    assert 'id="legal-hold"' in page and "Litigation hold" in page
    with app.app_context():
        patient = db.session.execute(select(ArchivedPatient).where(ArchivedPatient.id == patient_id)).scalar_one()
        assert patient.legal_hold and patient.hold_reason == "Litigation hold, case 42"
