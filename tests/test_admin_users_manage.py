"""Admin user management: role changes, disable and re-enable (sessions end at once), the rules
(not oneself, never the last active administrator, also from the CLI and under a race), the
staff list's filters, and hostile input."""

from __future__ import annotations

import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from intake.audit.models import AuditEvent
from intake.db_types import utcnow
from intake.extensions import db
from intake.users.models import Role, User
from intake.users.services import AccountError, disable_user, enable_user, set_roles
from tests.conftest import FULL_ADMIN, csrf_token, login
from tests.test_account import audit, fetch_user, field_error, flashes
from tests.test_admin_users import add_staff, listed_ids

LAST_ADMIN = "is the last active administrator"


def post(client, path, **data):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/users/"), **data})


def signed_in(app, user) -> object:
    """A separate browser signed in as ``user``, already past the sign-in."""
    browser = app.test_client()
    assert login(browser, user.email).status_code == 302
    assert browser.get("/account").status_code == 200
    return browser


def page_of(client, response) -> str:
    assert response.status_code == 302, response.status_code
    return client.get(response.headers["Location"]).get_data(as_text=True)


def events(app, action) -> list[tuple[str | None, str, dict]]:
    return [(str(r.actor_id) if r.actor_id else None, r.object_id, json.loads(r.details)) for r in audit(app, action)]


def count_events(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(AuditEvent)).scalar_one()


def call(app, service, target_id, actor_id=None, *args):
    """Run a service in its own transaction, as a view would: commit on success, roll back on refusal."""
    with app.app_context():
        target = db.session.get(User, target_id)
        actor = db.session.get(User, actor_id) if actor_id else None
        try:
            if service is set_roles:
                service(target, *args, actor)
            else:
                service(target, actor)
        except AccountError:
            db.session.rollback()
            raise
        db.session.commit()


# --- roles ------------------------------------------------------------------------------------

def post_roles(client, user_id, *roles):
    return client.post(f"/admin/users/{user_id}/roles",
                       data={"csrf_token": csrf_token(client, "/admin/users/"), "roles": list(roles)})


def test_giving_roles_ends_their_sessions_and_is_audited(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    browser = signed_in(app, operator)
    assert browser.get("/calls/urgent").status_code == 403

    response = post_roles(admin_client, operator.id, "operator", "supervisor")
    assert response.headers["Location"] == f"/admin/users/{operator.id}"
    [(category, message)] = flashes(page_of(admin_client, response))
    assert category == "success" and message.startswith(
        f"Account #{operator.id} now holds these roles: Helpline operator, Helpline supervisor.")
    assert operator.email not in message

    stored = fetch_user(app, operator.id)
    assert stored.ordered_roles == [Role.OPERATOR, Role.SUPERVISOR]
    assert stored.session_version == operator.session_version + 1
    assert events(app, "user.roles_changed") == [
        (str(admin_client.admin.id), str(operator.id), {"from": ["operator"], "to": ["operator", "supervisor"]})]
    # Their open session has ended: the next request goes to the sign-in page.
    response = browser.get("/calls/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    # Signed in again, the new role applies.
    assert signed_in(app, operator).get("/calls/urgent").status_code == 200


def test_several_roles_are_given_and_taken_at_once(app, admin_client, make_user):
    clerk = make_user([Role.OPERATOR, Role.RECORDS_CLERK])
    page = admin_client.get(f"/admin/users/{clerk.id}").get_data(as_text=True)
    ticked = {value: "checked" in tag for tag, value in
              re.findall(r'(<input[^>]*name="roles"[^>]*value="([a-z_]+)">)', page)}
    assert ticked == {"operator": True, "supervisor": False, "records_clerk": True, "privacy_officer": False,
                      "admin": False}
    assert 'required' not in "".join(re.findall(r'<input[^>]*name="roles"[^>]*>', page))

    post_roles(admin_client, clerk.id, "records_clerk", "privacy_officer")
    assert fetch_user(app, clerk.id).ordered_roles == [Role.RECORDS_CLERK, Role.PRIVACY_OFFICER]
    assert events(app, "user.roles_changed")[0][2] == {"from": ["operator", "records_clerk"],
                                                       "to": ["records_clerk", "privacy_officer"]}
    again = signed_in(app, clerk)
    assert again.get("/calls/").status_code == 403  # the call log went with the operator role
    assert again.get("/admin/audit/").status_code == 200 and again.get("/queue/requests/").status_code == 200


def test_taking_admin_away_takes_the_admin_pages_away(app, admin_client, make_user):
    other = make_user(Role.ADMIN)
    browser = signed_in(app, other)
    assert browser.get("/admin/users/").status_code == 200
    response = post_roles(admin_client, other.id, "operator")
    assert flashes(page_of(admin_client, response))[0][1].startswith(
        f"Account #{other.id} now holds these roles: Helpline operator.")
    assert browser.get("/admin/users/").headers["Location"].startswith("/login")
    again = signed_in(app, other)
    assert again.get("/admin/users/").status_code == 403
    assert events(app, "user.roles_changed")[0][2] == {"from": ["admin"], "to": ["operator"]}


def test_an_admin_cannot_change_their_own_roles(app, admin_client, make_user):
    make_user(Role.ADMIN)  # another admin exists, so only the self rule can refuse
    me = admin_client.admin
    page = admin_client.get(f"/admin/users/{me.id}").get_data(as_text=True)
    assert "This is your own account" in page
    assert 'name="roles"' not in page and "Save roles</button>" not in page
    assert re.search(r'class="btn btn-outline-danger" aria-describedby="disable-hint" disabled>Disable account', page)

    response = post_roles(admin_client, me.id, "operator")
    assert flashes(page_of(admin_client, response)) == [
        ("warning", "You cannot change your own roles. Ask another administrator.")]
    stored = fetch_user(app, me.id)
    assert stored.roles == set(FULL_ADMIN) and stored.session_version == me.session_version
    assert events(app, "user.roles_changed") == []
    assert admin_client.get("/admin/users/").status_code == 200  # still signed in, still an admin


def test_setting_the_same_roles_changes_nothing(app, admin_client, make_user):
    operator = make_user([Role.OPERATOR, Role.SUPERVISOR])
    response = post_roles(admin_client, operator.id, "supervisor", "operator")
    assert flashes(page_of(admin_client, response)) == [
        ("warning", f"Account #{operator.id} already has these roles; nothing changed.")]
    assert fetch_user(app, operator.id).session_version == operator.session_version
    assert events(app, "user.roles_changed") == []


def test_a_requester_never_becomes_staff(app, admin_client, make_user):
    requester = make_user(Role.REQUESTER)
    page = admin_client.get(f"/admin/users/{requester.id}").get_data(as_text=True)
    assert "Save roles" not in page and 'name="roles"' not in page and "Save name and licence" not in page
    for roles in (["admin"], ["operator", "records_clerk"], ["requester"]):
        response = post_roles(admin_client, requester.id, *roles)
        assert flashes(page_of(admin_client, response)) == [
            ("warning", f"Account #{requester.id} is a records requester's account; its roles cannot change.")]
    assert fetch_user(app, requester.id).roles == {Role.REQUESTER}
    assert events(app, "user.roles_changed") == []


@pytest.mark.parametrize("roles,message", [
    (["requester"], "Choose roles from the list."),
    (["superuser"], "Choose roles from the list."),
    (["operator", "superuser"], "Choose roles from the list."),
    (["<script>alert(1)</script>"], "Choose roles from the list."),
    (["admin" * 1000], "Choose roles from the list."),
    (["operator\x00"], "Choose roles from the list."),
    ([], "Choose at least one role."),
    ([""], "Choose roles from the list."),
])
def test_hostile_roles_are_a_400_next_to_the_field(app, admin_client, make_user, roles, message):
    operator = make_user(Role.OPERATOR)
    response = post_roles(admin_client, operator.id, *roles)
    body = response.get_data(as_text=True)
    assert response.status_code == 400 and field_error(body, "roles") == message
    assert "<script>alert(1)</script>" not in body
    assert fetch_user(app, operator.id).roles == {Role.OPERATOR}
    assert events(app, "user.roles_changed") == []


def test_the_service_refuses_requester_unknown_and_no_roles(app, make_user):
    admin, operator = make_user(Role.ADMIN), make_user(Role.OPERATOR)
    for roles, match in ((["requester"], "Choose staff roles only"), (["operator", "requester"], "staff roles only"),
                         (["root"], "Unknown role"), ([], "Choose at least one role"),
                         ([""], "Choose at least one role")):
        with pytest.raises(AccountError, match=match):
            call(app, set_roles, operator.id, admin.id, roles)
    assert fetch_user(app, operator.id).roles == {Role.OPERATOR}


# --- the last active administrator -------------------------------------------------------------

def test_the_last_admin_can_be_neither_demoted_nor_disabled(app, make_user):
    first, second = make_user(Role.ADMIN), make_user(Role.ADMIN)
    make_user(Role.ADMIN, active=False)  # a disabled admin does not count
    call(app, disable_user, second.id, first.id)  # two active admins: one may go
    assert fetch_user(app, second.id).active is False
    # Now ``first`` is the only active admin: with no actor (the command line), so no "self" rule.
    before = count_events(app)
    with pytest.raises(AccountError, match=f"Account #{first.id} {LAST_ADMIN}"):
        call(app, disable_user, first.id)
    with pytest.raises(AccountError, match=LAST_ADMIN):
        call(app, set_roles, first.id, None, ["operator"])
    stored = fetch_user(app, first.id)
    assert stored.active and stored.roles == {Role.ADMIN} and stored.session_version == first.session_version
    assert count_events(app) == before
    # Once another admin exists again, the first may be demoted.
    call(app, enable_user, second.id, first.id)
    call(app, set_roles, first.id, second.id, ["operator"])
    assert fetch_user(app, first.id).roles == {Role.OPERATOR}


def test_with_two_admins_one_is_disabled_then_the_other_is_refused(app, admin_client, make_user):
    other = make_user(Role.ADMIN)
    response = post(admin_client, f"/admin/users/{other.id}/disable", confirm="y")
    assert flashes(page_of(admin_client, response))[0][0] == "success"
    assert fetch_user(app, other.id).active is False
    me = admin_client.admin
    page = admin_client.get(f"/admin/users/{me.id}").get_data(as_text=True)
    assert "This is your own account" in page  # the page says why there is no button
    # Someone else (here the command line) trying to remove the remaining admin is refused.
    with pytest.raises(AccountError, match=LAST_ADMIN):
        call(app, disable_user, me.id)
    with pytest.raises(AccountError, match=LAST_ADMIN):
        call(app, set_roles, me.id, other.id, ["operator"])
    assert admin_client.get("/admin/users/").status_code == 200


def test_a_user_manager_who_is_not_an_admin_meets_the_last_admin_rule(app, client, make_user, monkeypatch):
    """Permissions are data: were another role given USERS_MANAGE (a records clerk, say), the
    page would explain why the only admin's buttons are off, and the service would still refuse."""
    from intake import permissions

    monkeypatch.setitem(permissions.ROLE_PERMISSIONS, Role.OPERATOR,
                        permissions.ROLE_PERMISSIONS[Role.OPERATOR] | {permissions.Permission.USERS_MANAGE})
    only_admin = make_user(Role.ADMIN)
    login(client, make_user(Role.OPERATOR).email)
    page = client.get(f"/admin/users/{only_admin.id}").get_data(as_text=True)
    assert "This is the last active administrator" in page
    assert 'name="confirm"' not in page and "Save roles</button>" in page
    for action, data in (("disable", {"confirm": "y"}), ("roles", {"roles": "operator"})):
        response = post(client, f"/admin/users/{only_admin.id}/{action}", **data)
        [(category, message)] = flashes(page_of(client, response))
        assert category == "warning" and f"Account #{only_admin.id} {LAST_ADMIN}" in message
    stored = fetch_user(app, only_admin.id)
    assert stored.active is True and stored.roles == {Role.ADMIN}
    # With a second admin, the same page offers the actions again.
    make_user(Role.ADMIN)
    page = client.get(f"/admin/users/{only_admin.id}").get_data(as_text=True)
    assert "last active administrator" not in page and 'name="confirm"' in page


def test_cli_disable_refuses_the_last_admin(app, runner, make_user):
    admin = make_user(Role.ADMIN, email="only.admin@example.org")
    result = runner.invoke(args=["users", "disable", "--email", "only.admin@example.org"])
    assert result.exit_code == 1 and f"Account #{admin.id} {LAST_ADMIN}" in result.output
    assert fetch_user(app, admin.id).active is True
    assert audit(app, "user.disabled") == []
    second = make_user(Role.ADMIN, email="second.admin@example.org")
    result = runner.invoke(args=["users", "disable", "--email", "only.admin@example.org"])
    assert result.exit_code == 0, result.output
    assert fetch_user(app, admin.id).active is False and fetch_user(app, second.id).active is True
    result = runner.invoke(args=["users", "disable", "--email", "second.admin@example.org"])
    assert result.exit_code == 1 and LAST_ADMIN in result.output


def test_two_admins_disabling_each_other_at_once_leave_one(app, make_user):
    """The check runs with the admin rows locked (PostgreSQL) or the write lock held (SQLite):
    the second transaction waits for the first and then sees that only its target is left."""
    a, b = make_user(Role.ADMIN), make_user(Role.ADMIN)
    outcome: dict[str, str] = {}

    def second() -> None:
        with app.app_context():
            target, actor = db.session.get(User, a.id), db.session.get(User, b.id)
            try:
                disable_user(target, actor)
                db.session.commit()
                outcome["second"] = "disabled"
            except AccountError as exc:
                db.session.rollback()
                outcome["second"] = str(exc)

    with app.app_context():
        disable_user(db.session.get(User, b.id), db.session.get(User, a.id))  # not committed yet
        thread = threading.Thread(target=second)
        thread.start()
        thread.join(1.0)
        assert thread.is_alive(), "the second transaction should wait for the first"
        db.session.commit()
    thread.join(10)
    assert not thread.is_alive()
    assert LAST_ADMIN in outcome["second"]
    assert fetch_user(app, a.id).active is True and fetch_user(app, b.id).active is False
    assert len(audit(app, "user.disabled")) == 1


# --- disable and re-enable -------------------------------------------------------------------

def test_disabling_ends_their_sessions_at_once(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    browser = signed_in(app, operator)
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert "Disabling ends their sessions at once" in page

    response = post(admin_client, f"/admin/users/{operator.id}/disable", confirm="y")
    assert response.headers["Location"] == f"/admin/users/{operator.id}"
    assert flashes(page_of(admin_client, response)) == [
        ("success", f"Account #{operator.id} disabled. Its sessions have ended and it cannot sign in.")]
    stored = fetch_user(app, operator.id)
    assert stored.active is False and stored.session_version == operator.session_version + 1
    assert events(app, "user.disabled") == [(str(admin_client.admin.id), str(operator.id), {})]
    for path in ("/calls/", "/account"):
        response = browser.get(path)
        assert response.status_code == 302 and response.headers["Location"].startswith("/login"), path
    assert login(app.test_client(), operator.email).status_code == 200  # the sign-in is refused


def test_disable_needs_the_ticked_box(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    for data in ({}, {"confirm": ""}):
        response = post(admin_client, f"/admin/users/{operator.id}/disable", **data)
        body = response.get_data(as_text=True)
        assert response.status_code == 400
        assert field_error(body, "confirm") == "Tick the box to confirm that their sessions end now."
    assert fetch_user(app, operator.id).active is True
    assert audit(app, "user.disabled") == []


def test_an_admin_cannot_disable_themself(app, admin_client, make_user):
    make_user(Role.ADMIN)
    me = admin_client.admin
    response = post(admin_client, f"/admin/users/{me.id}/disable", confirm="y")
    assert flashes(page_of(admin_client, response)) == [
        ("warning", "You cannot disable your own account. Ask another administrator.")]
    assert fetch_user(app, me.id).active is True and audit(app, "user.disabled") == []


def test_disabling_twice_is_refused(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR, active=False)
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert "Re-enable account" in page and "Disable account" not in page
    response = post(admin_client, f"/admin/users/{operator.id}/disable", confirm="y")
    assert flashes(page_of(admin_client, response)) == [("warning", f"Account #{operator.id} is already disabled.")]
    assert audit(app, "user.disabled") == []


def test_a_requester_can_be_disabled(app, admin_client, make_user):
    requester = make_user(Role.REQUESTER)
    browser = signed_in(app, requester)
    post(admin_client, f"/admin/users/{requester.id}/disable", confirm="y")
    assert fetch_user(app, requester.id).active is False
    assert browser.get("/my/requests/").headers["Location"].startswith("/login")


def test_re_enabling_lets_them_sign_in_again_but_old_sessions_stay_ended(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    browser = signed_in(app, operator)
    post(admin_client, f"/admin/users/{operator.id}/disable", confirm="y")
    assert login(app.test_client(), operator.email).status_code == 200  # refused while disabled

    response = post(admin_client, f"/admin/users/{operator.id}/enable")
    assert flashes(page_of(admin_client, response)) == [
        ("success", f"Account #{operator.id} re-enabled. It can sign in again.")]
    assert fetch_user(app, operator.id).active is True
    assert events(app, "user.enabled") == [(str(admin_client.admin.id), str(operator.id), {})]
    assert browser.get("/calls/").headers["Location"].startswith("/login")  # the old cookie stays dead
    assert signed_in(app, operator).get("/calls/").status_code == 200


def test_re_enabling_keeps_a_sign_in_lock(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR, active=False)
    until = utcnow() + timedelta(hours=1)
    with app.app_context():
        db.session.get(User, operator.id).locked_until = until
        db.session.commit()
    page = admin_client.get(f"/admin/users/{operator.id}").get_data(as_text=True)
    assert "The sign-in lock stays until it runs out or you unlock it." in page
    post(admin_client, f"/admin/users/{operator.id}/enable")
    stored = fetch_user(app, operator.id)
    assert stored.active is True and stored.locked_until is not None
    assert login(app.test_client(), operator.email).status_code == 200  # still locked


def test_enabling_an_active_account_changes_nothing(app, admin_client, make_user):
    operator = make_user(Role.OPERATOR)
    response = post(admin_client, f"/admin/users/{operator.id}/enable")
    assert flashes(page_of(admin_client, response)) == [
        ("warning", f"Account #{operator.id} is not disabled; nothing changed.")]
    assert audit(app, "user.enabled") == []


# --- access and hostile requests ---------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
def test_non_admins_get_403(app, client, make_user, role):
    target = make_user(Role.OPERATOR)
    login(client, make_user(role).email)
    token = csrf_token(client, "/account")
    for action, data in (("roles", {"roles": "admin"}), ("disable", {"confirm": "y"}), ("enable", {}),
                         ("identity", {"display_name": "Mallory"})):
        response = client.post(f"/admin/users/{target.id}/{action}", data={"csrf_token": token, **data})
        assert response.status_code == 403, action
    stored = fetch_user(app, target.id)
    assert stored.roles == {Role.OPERATOR} and stored.active is True and stored.display_name != "Mallory"
    assert audit(app, "user.roles_changed") == audit(app, "user.disabled") == []


def test_anonymous_visitors_are_sent_to_sign_in(app, client, make_user):
    target = make_user(Role.OPERATOR)
    token = csrf_token(client, "/login")
    response = client.post(f"/admin/users/{target.id}/disable", data={"csrf_token": token, "confirm": "y"})
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")
    assert fetch_user(app, target.id).active is True


def test_actions_need_post_and_a_csrf_token(app, admin_client, make_user):
    target = make_user(Role.OPERATOR, active=True)
    for action, data in (("roles", {"roles": "admin"}), ("disable", {"confirm": "y"}), ("enable", {}),
                         ("identity", {"display_name": "Mallory"})):
        path = f"/admin/users/{target.id}/{action}"
        assert admin_client.get(path).status_code == 405
        assert admin_client.post(path, data=data).status_code == 400
        assert admin_client.post(path, data={"csrf_token": "forged", **data}).status_code == 400
    stored = fetch_user(app, target.id)
    assert stored.roles == {Role.OPERATOR} and stored.active is True and stored.display_name != "Mallory"


@pytest.mark.parametrize("user_id", ["999", "2147483647", "2147483648", "99999999999999999999", "-1", "abc"])
def test_unknown_or_huge_ids_are_404(admin_client, user_id):
    for action, data in (("roles", {"roles": "admin"}), ("disable", {"confirm": "y"}), ("enable", {}),
                         ("identity", {"display_name": "Mallory"})):
        assert post(admin_client, f"/admin/users/{user_id}/{action}", **data).status_code == 404


# --- list filters ------------------------------------------------------------------------------

@pytest.fixture()
def roster(app, admin_client, make_user):
    """One account in each state; returns their ids by name."""
    ids = {"me": admin_client.admin.id}
    ids["operator"] = make_user(Role.OPERATOR).id
    ids["admin2"] = make_user(Role.ADMIN).id
    ids["disabled"] = make_user(Role.OPERATOR, active=False).id
    ids["locked"] = make_user(Role.OPERATOR).id
    ids["invited"] = add_staff(app, 1, Role.ADMIN)[0]
    ids["requester"] = make_user(Role.REQUESTER).id
    ids["clerk"] = make_user([Role.RECORDS_CLERK, Role.SUPERVISOR]).id
    with app.app_context():
        db.session.get(User, ids["locked"]).locked_until = utcnow() + timedelta(minutes=20)
        # An old lock that ran out is not a lock.
        db.session.get(User, ids["operator"]).locked_until = utcnow() - timedelta(minutes=1)
        db.session.commit()
    return ids


@pytest.mark.parametrize("query,expected", [
    ({}, ["me", "operator", "admin2", "disabled", "locked", "invited", "clerk"]),
    ({"role": "operator"}, ["me", "operator", "disabled", "locked"]),
    ({"role": "records_clerk"}, ["me", "clerk"]),
    ({"role": "admin"}, ["me", "admin2", "invited"]),
    ({"state": "active"}, ["me", "operator", "admin2", "locked", "clerk"]),
    ({"state": "disabled"}, ["disabled"]),
    ({"state": "locked"}, ["locked"]),
    ({"state": "invited"}, ["invited"]),
    ({"role": "admin", "state": "invited"}, ["invited"]),
    ({"role": "operator", "state": "invited"}, []),
    ({"role": "", "state": ""}, ["me", "operator", "admin2", "disabled", "locked", "invited", "clerk"]),
])
def test_filters_show_the_right_accounts(admin_client, roster, query, expected):
    response = admin_client.get("/admin/users/", query_string=query)
    body = response.get_data(as_text=True)
    assert response.status_code == 200
    assert listed_ids(body) == [roster[name] for name in expected]
    assert f'/admin/users/{roster["requester"]}"' not in body
    if not expected:
        assert "No staff account matches." in body


def test_the_rows_carry_badges_and_facility_time(app, admin_client, roster):
    when = datetime(2026, 1, 15, 18, 30, tzinfo=UTC)  # 10:30 in Los Angeles
    with app.app_context():
        db.session.get(User, roster["operator"]).last_login_at = when
        db.session.commit()
    body = admin_client.get("/admin/users/").get_data(as_text=True)
    rows = dict(zip(listed_ids(body), re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:], strict=True))
    assert "2026-01-15 10:30 PST" in rows[roster["operator"]] and ">active<" in rows[roster["operator"]]
    assert ">disabled<" in rows[roster["disabled"]] and ">active<" not in rows[roster["disabled"]]
    assert ">invited<" in rows[roster["invited"]] and "never" in rows[roster["invited"]]
    assert "locked until" in rows[roster["locked"]] and "locked until" not in rows[roster["operator"]]


def test_pages_keep_the_filters(app, admin_client):
    ids = add_staff(app, 55, Role.ADMIN)
    add_staff(app, 10, Role.OPERATOR)
    first = admin_client.get("/admin/users/?role=admin&state=invited").get_data(as_text=True)
    assert listed_ids(first) == ids[:50]
    match = re.search(r'href="/admin/users/\?after=(\d+)&amp;role=admin&amp;state=invited">Next page</a>', first)
    assert match and int(match.group(1)) == ids[49]
    second = admin_client.get(f"/admin/users/?after={ids[49]}&role=admin&state=invited").get_data(as_text=True)
    assert listed_ids(second) == ids[50:]
    assert 'href="/admin/users/?role=admin&amp;state=invited">First page</a>' in second


@pytest.mark.parametrize("query,field,message", [
    ({"role": "requester"}, "role", "Choose a role from the list."),
    ({"role": "superuser"}, "role", "Choose a role from the list."),
    ({"role": "<script>alert(1)</script>"}, "role", "Choose a role from the list."),
    ({"state": "deleted"}, "state", "Choose a state from the list."),
    ({"state": "x" * 5000}, "state", "Choose a state from the list."),
    ({"state": "active\x00"}, "state", "Choose a state from the list."),
])
def test_bad_filters_are_a_400_with_a_message(admin_client, roster, query, field, message):
    response = admin_client.get("/admin/users/", query_string=query)
    body = response.get_data(as_text=True)
    assert response.status_code == 400
    assert field_error(body, field) == message
    assert "Some filters are not valid." in body and listed_ids(body) == []
    assert "<script>alert(1)</script>" not in body


def test_a_bad_cursor_with_filters_is_a_400(admin_client):
    assert admin_client.get("/admin/users/?role=admin&after=x").status_code == 400
