"""Staff identity on the users page: a display name (required for staff, encrypted at rest) and a
professional licence (type, number, two-letter state; all three or none), validated, audited by
field names only, shown wherever staff are named; ``licensed(user)`` for the records-law rules."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import text

from intake.extensions import db
from intake.users.models import LicenceType, Role, User
from intake.users.services import AccountError, IdentityError, licensed, set_identity, set_roles
from tests.conftest import csrf_token, login
from tests.test_account import audit, fetch_user, field_error, flashes
from tests.test_admin_users_manage import LAST_ADMIN, page_of

NAME_CHARACTERS = "A name has letters, spaces and the punctuation names use ( ' - . , ) only."


def post_identity(client, user_id, name="Dana Reyes", kind="", number="", state=""):
    return client.post(f"/admin/users/{user_id}/identity", data={
        "display_name": name, "licence_type": kind, "licence_number": number, "licence_state": state,
        "csrf_token": csrf_token(client, "/admin/users/")})


def test_an_admin_sets_the_name_and_licence_and_only_field_names_are_audited(app, admin_client, make_user):
    clerk = make_user(Role.RECORDS_CLERK, display_name="Dana R")
    page = admin_client.get(f"/admin/users/{clerk.id}").get_data(as_text=True)
    assert 'name="licence_number"' in page and "none on record" in page

    response = post_identity(admin_client, clerk.id, "Dana Reyes", "LCSW", " lcsw  12345 ", "CA")
    assert response.headers["Location"] == f"/admin/users/{clerk.id}"
    page = page_of(admin_client, response)
    assert flashes(page) == [("success", f"Name and licence of account #{clerk.id} saved.")]
    assert "Dana Reyes" in page and "LCSW (clinical social worker), number LCSW 12345, CA" in page
    stored = fetch_user(app, clerk.id)
    assert (stored.display_name, stored.licence_type, stored.licence_number, stored.licence_state) == (
        "Dana Reyes", LicenceType.LCSW, "LCSW 12345", "CA")
    [row] = audit(app, "user.identity_changed")
    assert row.actor_id == admin_client.admin.id and row.object_id == str(clerk.id)
    assert json.loads(row.details) == {"fields": ["display_name", "licence_type", "licence_number",
                                                  "licence_state"]}
    assert "Dana" not in row.details and "12345" not in row.details
    # Saving the same again changes nothing and writes nothing.
    response = post_identity(admin_client, clerk.id, "Dana Reyes", "LCSW", "LCSW 12345", "CA")
    assert flashes(page_of(admin_client, response)) == [("info", f"Nothing changed on account #{clerk.id}.")]
    assert len(audit(app, "user.identity_changed")) == 1
    # The staff list shows the name and the licence.
    listing = admin_client.get("/admin/users/").get_data(as_text=True)
    assert "Dana Reyes" in listing and "LCSW LCSW 12345 (CA)" in listing


def test_the_name_is_encrypted_at_rest(app, make_user):
    user = make_user(Role.OPERATOR, display_name="Quintessa Marlowe")
    with app.app_context():
        raw = db.session.execute(text("SELECT display_name, licence_number FROM users WHERE id = :i"),
                                 {"i": user.id}).one()
    assert "Quintessa" not in raw.display_name and ":" in raw.display_name  # "<key id>:<sealed>"
    assert fetch_user(app, user.id).display_name == "Quintessa Marlowe"


def test_a_licence_is_cleared_by_emptying_all_three(app, admin_client, make_user):
    nurse = make_user(Role.SUPERVISOR)
    post_identity(admin_client, nurse.id, "Nora Nurse", "RN", "RN 555", "OR")
    assert fetch_user(app, nurse.id).licence_state == "OR"
    post_identity(admin_client, nurse.id, "Nora Nurse", "", "", "")
    stored = fetch_user(app, nurse.id)
    assert (stored.licence_type, stored.licence_number, stored.licence_state) == (None, None, None)
    assert json.loads(audit(app, "user.identity_changed")[-1].details) == {
        "fields": ["licence_type", "licence_number", "licence_state"]}


@pytest.mark.parametrize("name,kind,number,state,field,message", [
    ("", "", "", "", "display_name", "Enter the name colleagues know them by."),
    ("   ", "", "", "", "display_name", "Enter the name colleagues know them by."),
    ("<script>alert(1)</script>", "", "", "", "display_name", NAME_CHARACTERS),
    ("Dana\x00Reyes", "", "", "", "display_name", NAME_CHARACTERS),
    ("Dana\u202eReyes", "", "", "", "display_name", NAME_CHARACTERS),
    ("Dana\nReyes", "", "", "", "display_name", NAME_CHARACTERS),
    ("Agent 007", "", "", "", "display_name", NAME_CHARACTERS),
    ("=HYPERLINK(1)", "", "", "", "display_name", NAME_CHARACTERS),
    ("D" * 81, "", "", "", "display_name", "Use at most 80 characters."),
    ("Dana Reyes", "Wizard", "1", "CA", "licence_type", "Choose a licence type from the list."),
    ("Dana Reyes", "<b>MD</b>", "1", "CA", "licence_type", "Choose a licence type from the list."),
    ("Dana Reyes", "", "A123", "CA", "licence_type",
     "Choose the licence type, or clear the number and state for no licence."),
    ("Dana Reyes", "MD", "", "CA", "licence_number",
     "Enter the licence number, or clear the type and state for no licence."),
    ("Dana Reyes", "MD", "A1<script>", "CA", "licence_number",
     "A licence number has letters, digits, spaces, dots and hyphens, at most 20 characters."),
    ("Dana Reyes", "MD", "-123", "CA", "licence_number",
     "A licence number has letters, digits, spaces, dots and hyphens, at most 20 characters."),
    ("Dana Reyes", "MD", "A1\x00", "CA", "licence_number",
     "A licence number has letters, digits, spaces, dots and hyphens, at most 20 characters."),
    ("Dana Reyes", "MD", "9" * 21, "CA", "licence_number", "Use at most 20 characters."),
    ("Dana Reyes", "MD", "A123", "", "licence_state",
     "Choose the state that issued the licence, or clear the type and number for no licence."),
    ("Dana Reyes", "MD", "A123", "ZZ", "licence_state", "Choose a state from the list."),
    ("Dana Reyes", "MD", "A123", "ca", "licence_state", "Choose a state from the list."),
    ("Dana Reyes", "MD", "A123", "California", "licence_state", "Choose a state from the list."),
    ("Dana Reyes", "MD", "A123", "C\x00", "licence_state", "Choose a state from the list."),
])
def test_bad_and_hostile_identity_is_a_400_next_to_the_field(app, admin_client, make_user, name, kind, number,
                                                             state, field, message):
    operator = make_user(Role.OPERATOR, display_name="Before Name")
    response = post_identity(admin_client, operator.id, name, kind, number, state)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and field_error(body, field) == message
    assert "<script>alert(1)</script>" not in body and "<b>MD</b>" not in body
    stored = fetch_user(app, operator.id)
    assert stored.display_name == "Before Name" and stored.licence_type is None
    assert audit(app, "user.identity_changed") == []


def test_names_in_any_script_with_their_punctuation_are_accepted(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    for name in ("Zoë Ødegaard-Ñúñez", "D'Arcy O’Neil Jr.", "李小龍", "Nguyễn Thị (Lan)", "Ana de la Cruz, MD"):
        response = post_identity(admin_client, operator.id, name)
        assert response.status_code == 302, name
        assert fetch_user(app, operator.id).display_name == name


def test_a_requester_has_no_staff_identity(app, admin_client, make_user):
    requester = make_user(Role.REQUESTER)
    response = post_identity(admin_client, requester.id, "Some Patient", "MD", "A1", "CA")
    assert flashes(page_of(admin_client, response)) == [
        ("warning", f"Account #{requester.id} is a records requester's account; it has no staff name or licence.")]
    stored = fetch_user(app, requester.id)
    assert stored.display_name is None and stored.licence_type is None
    with app.app_context(), pytest.raises(AccountError):
        set_identity(db.session.get(User, requester.id), None, "Some Patient")


def test_licensed_needs_a_complete_licence_on_an_active_staff_account(app, make_user):
    admin_id, doctor_id, requester_id = (make_user(Role.ADMIN).id, make_user(Role.RECORDS_CLERK).id,
                                         make_user(Role.REQUESTER).id)
    with app.app_context():
        admin, doctor = db.session.get(User, admin_id), db.session.get(User, doctor_id)
        assert not licensed(doctor)
        set_identity(doctor, admin, "Dr Who", "MD", "G 12345", "CA")
        assert licensed(doctor)
        doctor.active = False
        assert not licensed(doctor)
        requester = db.session.get(User, requester_id)
        requester.licence_type, requester.licence_number, requester.licence_state = LicenceType.MD, "1", "CA"
        assert not licensed(requester)  # never a requester, whatever is stored
        with pytest.raises(IdentityError) as refused:
            set_identity(doctor, admin, "Dr Who", "MD", "G 12345", "")
        assert refused.value.field == "licence_state"
        db.session.rollback()


def test_staff_are_named_by_their_name(app, admin_client, make_user, make_request):
    """The account page, the records queue's assignee list and the users list name staff by name."""
    clerk = make_user(Role.RECORDS_CLERK, display_name="Rita Records")
    browser = app.test_client()
    login(browser, clerk.email)
    assert "Rita Records" in browser.get("/account").get_data(as_text=True)
    reference = make_request(make_user(Role.REQUESTER))
    page = browser.get(f"/queue/requests/{reference}").get_data(as_text=True)
    assert ">Rita Records</option>" in page and clerk.email not in page.split('id="assign-assignee"')[1][:2000]


# --- the last-admin rule under a race, for roles -----------------------------------------------

def test_two_admins_taking_admin_from_each_other_at_once_leave_one(app, make_user):
    """The roles' check runs with the admin rows locked (PostgreSQL) or the write lock held
    (SQLite): the second transaction waits, then reads the roles as the first committed them."""
    a, b = make_user([Role.ADMIN, Role.OPERATOR]), make_user([Role.ADMIN, Role.OPERATOR])
    outcome: dict[str, str] = {}

    def second() -> None:
        with app.app_context():
            target, actor = db.session.get(User, a.id), db.session.get(User, b.id)
            try:
                set_roles(target, ["operator"], actor)
                db.session.commit()
                outcome["second"] = "changed"
            except AccountError as exc:
                db.session.rollback()
                outcome["second"] = str(exc)

    with app.app_context():
        set_roles(db.session.get(User, b.id), ["operator"], db.session.get(User, a.id))  # not committed yet
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the second transaction should wait for the first"
        db.session.commit()
    thread.join(10)
    assert not thread.is_alive()
    assert LAST_ADMIN in outcome["second"]
    assert fetch_user(app, a.id).roles == {Role.ADMIN, Role.OPERATOR}
    assert fetch_user(app, b.id).roles == {Role.OPERATOR}
    assert len(audit(app, "user.roles_changed")) == 1


def test_the_last_admin_may_gain_and_lose_other_roles(app, admin_client, make_user):
    only = make_user([Role.ADMIN, Role.SUPERVISOR])
    # admin_client's account is an admin too; disable it from the command line's point of view.
    with app.app_context():
        db.session.get(User, admin_client.admin.id).active = False
        db.session.commit()
    with app.app_context():
        user = db.session.get(User, only.id)
        set_roles(user, ["admin", "records_clerk"], None)
        db.session.commit()
        with pytest.raises(AccountError, match=LAST_ADMIN):
            set_roles(db.session.get(User, only.id), ["records_clerk"], None)
        db.session.rollback()
    assert fetch_user(app, only.id).roles == {Role.ADMIN, Role.RECORDS_CLERK}


def test_nobody_records_their_own_licence_but_may_correct_their_name(app, admin_client):
    me = admin_client.admin
    page = admin_client.get(f"/admin/users/{me.id}").get_data(as_text=True)
    assert "Another administrator records your own licence" in page
    response = post_identity(admin_client, me.id, "Me Myself", "MD", "A1", "CA")
    assert response.status_code == 400 and field_error(response.get_data(as_text=True), "licence_type") == (
        "Another administrator records your own licence, after checking it with the licensing board.")
    assert fetch_user(app, me.id).licence_type is None and audit(app, "user.identity_changed") == []
    response = post_identity(admin_client, me.id, "Me Myself")
    assert response.status_code == 302 and fetch_user(app, me.id).display_name == "Me Myself"
    assert json.loads(audit(app, "user.identity_changed")[0].details) == {"fields": ["display_name"]}
