"""Admin users pages: the staff list with keyset pages, exact-address lookup, the account page,
unlock and MFA reset (audited, refused for bad targets), hostile input, admins only."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.auth.mfa import new_recovery_codes
from intake.db_types import utcnow
from intake.extensions import db
from intake.users.models import RecoveryCode, Role, User
from intake.users.services import email_index
from tests.conftest import csrf_token, login
from tests.test_account import audit, fetch_user, flashes

ROW_RE = re.compile(r'<tr>\s*<td><a href="/admin/users/(\d+)">')


def listed_ids(page: str) -> list[int]:
    return [int(n) for n in ROW_RE.findall(page)]


def add_staff(app, n: int, role: Role = Role.OPERATOR) -> list[int]:
    """Many accounts at once, straight into the database (no password needed to be listed)."""
    with app.app_context():
        emails = [f"bulk{i}.{role.value}@example.org" for i in range(n)]
        users = [User(email=e, email_index=email_index(e), roles=[role]) for e in emails]
        db.session.add_all(users)
        db.session.commit()
        return [u.id for u in users]


def post_action(client, path):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/users/")})


def audit_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


# --- list and lookup -------------------------------------------------------------------------

def test_the_list_shows_staff_and_never_requesters(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    requester = make_user(Role.REQUESTER, email="former.patient@example.org")
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    assert listed_ids(page) == [admin_client.admin.id, operator.id]
    assert operator.email in page and admin_client.admin.email in page  # decrypted for the admin
    assert "former.patient" not in page and f'/admin/users/{requester.id}"' not in page
    assert "Helpline operator" in page and "Administrator" in page


def test_the_list_shows_mfa_lock_and_last_sign_in(app, admin_client, make_user):
    fresh = make_user(Role.OPERATOR, mfa=False)
    with app.app_context():
        user = db.session.get(User, fresh.id)
        user.locked_until = utcnow() + timedelta(minutes=30)
        db.session.commit()
        # Shown in the facility's zone (America/Los_Angeles in the tests), not UTC.
        zone = ZoneInfo(app.config["FACILITY_TIMEZONE"])
        locked_text = user.locked_until.astimezone(zone).strftime("%Y-%m-%d %H:%M")
    page = admin_client.get("/admin/users/").get_data(as_text=True)
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)[1:]
    mine, theirs = rows
    assert "set up" in mine and "never" not in mine  # the admin signed in just now
    assert "not set up" in theirs and f"locked until {locked_text}" in theirs and "never" in theirs
    assert 'badge text-bg-warning' in theirs and 'badge text-bg-warning' not in mine


def test_keyset_pages_of_fifty(app, admin_client):
    ids = [admin_client.admin.id] + add_staff(app, 60)
    first = admin_client.get("/admin/users/").get_data(as_text=True)
    assert listed_ids(first) == ids[:50]
    match = re.search(r'href="/admin/users/\?after=(\d+)">Next page</a>', first)
    assert match and int(match.group(1)) == ids[49]
    second = admin_client.get(f"/admin/users/?after={ids[49]}").get_data(as_text=True)
    assert listed_ids(second) == ids[50:]
    assert "Next page" not in second and 'href="/admin/users/">First page</a>' in second
    assert listed_ids(admin_client.get(f"/admin/users/?after={ids[-1]}").get_data(as_text=True)) == []


def test_requesters_do_not_fill_the_pages(app, admin_client):
    add_staff(app, 30, Role.REQUESTER)
    staff = add_staff(app, 55)
    first = listed_ids(admin_client.get("/admin/users/").get_data(as_text=True))
    assert len(first) == 50 and set(first) <= {admin_client.admin.id, *staff}


@pytest.mark.parametrize("after", ["abc", "-1", "1.5", "99999999999", "1 OR 1=1", "%00", "9" * 5000])
def test_a_bad_cursor_is_a_400(admin_client, after):
    assert admin_client.get("/admin/users/", query_string={"after": after}).status_code == 400


def test_lookup_by_exact_address_finds_a_requester_and_is_audited(app, admin_client, make_user):
    requester = make_user(Role.REQUESTER, email="Former.Patient@example.org")
    before = audit_count(app)
    page = admin_client.get("/admin/users/", query_string={"email": "former.patient@EXAMPLE.org"})
    body = page.get_data(as_text=True)
    assert page.status_code == 200
    assert f'<a href="/admin/users/{requester.id}">Account #{requester.id}</a>' in body
    assert "Records requester" in body
    [row] = audit(app, "user.looked_up")
    assert row.actor_id == admin_client.admin.id and row.object_id == str(requester.id)
    assert json.loads(row.details) == {"found": True} and "patient" not in row.details.lower()
    assert audit_count(app) == before + 1


def test_lookup_of_an_unknown_or_partial_address_finds_nothing(app, admin_client, make_user):
    make_user(Role.REQUESTER, email="someone.specific@example.org")
    for typed in ("someone@example.org", "specific@example.org"):
        body = admin_client.get("/admin/users/", query_string={"email": typed}).get_data(as_text=True)
        assert "No account has that address." in body and "Account #" not in body
    assert [json.loads(r.details) for r in audit(app, "user.looked_up")] == [{"found": False}] * 2


@pytest.mark.parametrize("typed,message", [
    ("<script>alert(1)</script>", "Enter an e-mail address like name@example.org."),
    ("a\x00b@example.org", "Enter an e-mail address like name@example.org."),
    ("x" * 300 + "@example.org", "That is too long for an e-mail address."),
    ("", "Enter an e-mail address."),
])
def test_hostile_lookups_are_a_400(app, admin_client, typed, message):
    response = admin_client.get("/admin/users/", query_string={"email": typed})
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and message in body
    assert "<script>alert(1)</script>" not in body
    assert audit(app, "user.looked_up") == []


@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
def test_non_admins_get_403_everywhere(app, client, make_user, role):
    target = make_user(Role.OPERATOR)
    login(client, make_user(role).email)
    token = csrf_token(client, "/account")
    for path in ("/admin/users/", "/admin/users/?email=x@example.org", "/admin/users/invite",
                 f"/admin/users/{target.id}"):
        assert client.get(path).status_code == 403, path
    for path in (f"/admin/users/{target.id}/unlock", f"/admin/users/{target.id}/reset-mfa", "/admin/users/invite"):
        assert client.post(path, data={"csrf_token": token}).status_code == 403, path
    assert fetch_user(app, target.id).mfa_secret == target.mfa_secret
    assert audit(app, "user.looked_up") == []


def test_the_admin_link_and_hub_are_only_for_admins(client, app, admin_client, login_as):
    assert 'href="/admin/" id="nav-admin">Admin</a>' in admin_client.get("/account").get_data(as_text=True)
    hub = admin_client.get("/admin/").get_data(as_text=True)
    for href in ("/admin/users/", "/admin/audit/", "/admin/exports/", "/admin/archive/"):
        assert f'href="{href}"' in hub, href
    login_as(Role.OPERATOR)
    assert 'href="/admin/"' not in client.get("/account").get_data(as_text=True)
    assert client.get("/admin/").status_code == 403
    assert 'href="/admin/"' not in app.test_client().get("/").get_data(as_text=True)


# --- account page ----------------------------------------------------------------------------

def test_the_account_page_of_a_requester_is_audited_staff_pages_are_not(app, admin_client, make_user):
    requester = make_user(Role.REQUESTER)
    operator = make_user(Role.OPERATOR)
    page = admin_client.get(f"/admin/users/{requester.id}").get_data(as_text=True)
    assert requester.email in page and "Reset second factor" not in page
    assert admin_client.get(f"/admin/users/{operator.id}").status_code == 200
    assert [r.object_id for r in audit(app, "user.viewed")] == [str(requester.id)]


@pytest.mark.parametrize("path", ["/admin/users/999", "/admin/users/99999999999999999999", "/admin/users/abc",
                                  "/admin/users/999/unlock", "/admin/users/99999999999999999999/reset-mfa"])
def test_unknown_accounts_are_404(admin_client, path):
    response = admin_client.post(path, data={"csrf_token": csrf_token(admin_client, "/admin/users/")}) \
        if path.endswith(("unlock", "reset-mfa")) else admin_client.get(path)
    assert response.status_code == 404


# --- unlock ----------------------------------------------------------------------------------

def test_unlock_lifts_the_lock_and_is_audited(app, admin_client, make_user):
    target = make_user(Role.OPERATOR)
    with app.app_context():
        user = db.session.get(User, target.id)
        user.locked_until, user.failed_logins, user.lockouts = utcnow() + timedelta(hours=1), 3, 2
        db.session.commit()
    assert login(app.test_client(), target.email).status_code == 200  # locked: refused
    page = admin_client.get(f"/admin/users/{target.id}").get_data(as_text=True)
    assert "Unlock sign-in" in page and "locked until" in page

    response = post_action(admin_client, f"/admin/users/{target.id}/unlock")
    assert response.status_code == 302 and response.headers["Location"] == f"/admin/users/{target.id}"
    messages = flashes(admin_client.get(response.headers["Location"]).get_data(as_text=True))
    assert messages == [("success", f"Account #{target.id} unlocked.")]
    stored = fetch_user(app, target.id)
    assert stored.locked_until is None and stored.failed_logins == 0 and stored.lockouts == 0
    [row] = audit(app, "account.unlocked")
    assert row.actor_id == admin_client.admin.id and row.object_id == str(target.id)
    assert login(app.test_client(), target.email).status_code == 302


def test_unlocking_an_unlocked_account_changes_nothing(app, admin_client, make_user):
    target = make_user(Role.REQUESTER)
    before = audit_count(app)
    response = post_action(admin_client, f"/admin/users/{target.id}/unlock")
    messages = flashes(admin_client.get(response.headers["Location"]).get_data(as_text=True))
    assert messages == [("info", f"Account #{target.id} is not locked; nothing changed.")]
    assert audit(app, "account.unlocked") == []
    assert audit_count(app) == before + 1  # only the audited view of the requester's page


# --- reset MFA -------------------------------------------------------------------------------

def test_reset_mfa_forgets_the_factor_ends_sessions_and_is_audited(app, admin_client, make_user):
    target = make_user(Role.OPERATOR)
    with app.app_context():
        new_recovery_codes(db.session.get(User, target.id))
        db.session.commit()
    victim = app.test_client()
    login(victim, target.email)
    assert victim.get("/account").status_code == 200

    response = post_action(admin_client, f"/admin/users/{target.id}/reset-mfa")
    assert response.headers["Location"] == f"/admin/users/{target.id}"
    page = admin_client.get(response.headers["Location"]).get_data(as_text=True)
    [(category, message)] = flashes(page)
    assert category == "success" and message.startswith(f"Second factor reset for account #{target.id};")
    assert target.email not in message

    stored = fetch_user(app, target.id)
    assert stored.mfa_secret is None and stored.mfa_enrolled_at is None
    assert stored.session_version == target.session_version + 1
    with app.app_context():
        assert db.session.execute(select(RecoveryCode).where(RecoveryCode.user_id == target.id)).first() is None
    assert victim.get("/account").status_code == 302  # their session ended
    [row] = audit(app, "mfa.reset")
    assert row.actor_id == admin_client.admin.id and row.object_id == str(target.id)
    assert login(app.test_client(), target.email).headers["Location"] == "/mfa/setup"


def test_reset_mfa_refuses_ones_own_account(app, admin_client):
    admin = admin_client.admin
    page = admin_client.get(f"/admin/users/{admin.id}").get_data(as_text=True)
    assert "Reset second factor" not in page
    response = post_action(admin_client, f"/admin/users/{admin.id}/reset-mfa")
    messages = flashes(admin_client.get(response.headers["Location"]).get_data(as_text=True))
    assert messages == [("warning", "You cannot reset your own second factor here. Ask another administrator.")]
    stored = fetch_user(app, admin.id)
    assert stored.mfa_secret == admin.mfa_secret and stored.session_version == admin.session_version
    assert audit(app, "mfa.reset") == []


def test_reset_mfa_refuses_requesters(app, admin_client, make_user):
    requester = make_user(Role.REQUESTER)
    response = post_action(admin_client, f"/admin/users/{requester.id}/reset-mfa")
    messages = flashes(admin_client.get(response.headers["Location"]).get_data(as_text=True))
    assert messages == [("warning", f"Account #{requester.id} is not a staff account and has no second factor.")]
    assert fetch_user(app, requester.id).session_version == requester.session_version
    assert audit(app, "mfa.reset") == []


def test_actions_need_post_and_csrf(app, admin_client, make_user):
    target = make_user(Role.OPERATOR)
    with app.app_context():
        db.session.get(User, target.id).locked_until = utcnow() + timedelta(hours=1)
        db.session.commit()
    for action in ("unlock", "reset-mfa"):
        assert admin_client.get(f"/admin/users/{target.id}/{action}").status_code == 405
        assert admin_client.post(f"/admin/users/{target.id}/{action}").status_code == 400
        assert admin_client.post(f"/admin/users/{target.id}/{action}", data={"csrf_token": "forged"}).status_code == 400
    stored = fetch_user(app, target.id)
    assert stored.locked_until is not None and stored.mfa_secret == target.mfa_secret
    assert audit(app, "account.unlocked") == [] and audit(app, "mfa.reset") == []
