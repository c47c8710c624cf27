"""Every route x every role has an expected outcome; a route without one fails this file.

This is the guard that keeps a future route from shipping without an access policy: add the
route, and this test fails until its row below says who may reach it.

The columns: an anonymous visitor, two requesters (A owns the request the matrix creates, B does
not), one account per staff role, and one account holding two roles (operator and records clerk:
the union of both, nothing more). Account #1 is an active administrator created first.
"""

from __future__ import annotations

import pytest
from flask import Flask

from intake.permissions import (
    LANDING,
    PUBLIC_ENDPOINTS,
    ROLE_PERMISSIONS,
    Permission,
    can,
    landing_endpoint,
    permissions_of,
    require,
    roles_with,
)
from intake.users.models import STAFF_ROLES, Role
from tests.conftest import csrf_token, login

ROLES = ("anonymous", "requester", "requester_b", "operator", "supervisor", "records_clerk", "privacy_officer",
         "admin", "multi")
# The roles each column's account holds.
ACCOUNTS: dict[str, list[Role]] = {
    "requester": [Role.REQUESTER], "requester_b": [Role.REQUESTER], "operator": [Role.OPERATOR],
    "supervisor": [Role.SUPERVISOR], "records_clerk": [Role.RECORDS_CLERK], "privacy_officer": [Role.PRIVACY_OFFICER],
    "admin": [Role.ADMIN], "multi": [Role.OPERATOR, Role.RECORDS_CLERK],
}
LOGIN = "login"  # anonymous visitor sent to the sign-in page

# Who is who, for the rows below.
REQUESTERS = ("requester", "requester_b")
STAFF = ("operator", "supervisor", "records_clerk", "privacy_officer", "admin", "multi")
SIGNED_IN = REQUESTERS + STAFF
HELPLINE = ("operator", "supervisor", "multi")  # operators' rights
SUPERVISORS = ("supervisor",)
RECORDS_WORK = ("records_clerk", "multi")  # work the records queue
RECORDS_READ = ("records_clerk", "privacy_officer", "multi")  # read it (the privacy officer only reads)
ARCHIVE = ("records_clerk", "multi")
PRIVACY = ("privacy_officer",)
ADMINS = ("admin",)
HUB = ("supervisor", "records_clerk", "privacy_officer", "admin", "multi")
DASHBOARD = ("supervisor", "records_clerk", "privacy_officer", "multi")
RESOURCES_READ = ("operator", "supervisor", "admin", "multi")
# After signing in, or at /login when signed in already: each role's work (intake.permissions.LANDING).
LANDS = {"requester": "/my/requests/", "requester_b": "/my/requests/", "operator": "/calls/new",
         "supervisor": "/calls/urgent", "records_clerk": "/queue/requests/", "privacy_officer": "/admin/audit/",
         "admin": "/admin/", "multi": "/calls/new"}


def row(*grants: tuple[tuple[str, ...], int | str], anonymous: int | str = LOGIN, others: int | str = 403
        ) -> dict[str, int | str]:
    """A row: ``others`` for every signed-in column, ``anonymous`` for the visitor, and each
    ``(columns, outcome)`` of ``grants`` on top."""
    cells = {role: others for role in ROLES}
    cells["anonymous"] = anonymous
    for columns, outcome in grants:
        for column in columns:
            cells[column] = outcome
    return cells


def same(outcome: int | str) -> dict[str, int | str]:
    return {role: outcome for role in ROLES}


ALL = same(200)
TO_ACCOUNT = row((SIGNED_IN, "/account"))

# (endpoint, method) -> {column: expected}; an int is a status, LOGIN a redirect to /login,
# a string starting with "/" a redirect to that path. "REF" in a path is the matrix's request.
EXPECTED: dict[tuple[str, str], dict[str, int | str]] = {
    ("static", "GET"): ALL,
    ("bootstrap.static", "GET"): ALL,
    ("public.index", "GET"): ALL,
    ("public.records_guide", "GET"): ALL,
    ("public.healthz", "GET"): ALL,
    ("public.readyz", "GET"): ALL,
    ("metrics.metrics", "GET"): same(404),  # off unless METRICS_TOKEN is set (tests/test_metrics.py)
    # The language switch (intake/i18n.py) is for everyone; a POST naming no language of the site is
    # refused with the 400 page (a real switch always sends one and goes back to its page).
    ("language.switch", "POST"): same(400),
    # Signed in already: sent to where their work starts.
    ("auth.login", "GET"): {"anonymous": 200, **LANDS},
    # A POST with a valid CSRF token but no credentials: the form answers 400 to a visitor.
    ("auth.login", "POST"): {"anonymous": 400, **LANDS},
    # Without a sign-in waiting for its second step, both are sent back to /login.
    ("auth.mfa", "GET"): same(LOGIN),
    ("auth.mfa", "POST"): same(LOGIN),
    ("auth.mfa_setup", "GET"): same(LOGIN),
    ("auth.mfa_setup", "POST"): same(LOGIN),
    ("auth.logout", "POST"): row((SIGNED_IN, "/")),
    ("auth.account", "GET"): row((SIGNED_IN, 200)),
    # "Stay signed in" in the idle-timeout dialog (js/session.js): anyone signed in.
    ("session.keepalive", "POST"): row((SIGNED_IN, 200)),
    # Registration is for visitors; a signed-in user is sent to their account.
    ("registration.register", "GET"): {**TO_ACCOUNT, "anonymous": 200},
    ("registration.register", "POST"): {**TO_ACCOUNT, "anonymous": 400},
    # A link that is not valid (forged, used or expired) answers 400 with a page saying so, for everyone.
    ("registration.verify_email", "GET"): same(400),
    ("registration.verify_email", "POST"): same(400),
    # Every test account is verified already: told so on the account page.
    ("registration.resend_verification", "POST"): TO_ACCOUNT,
    # Anyone may ask for a reset link (a signed-in user may have forgotten the password too).
    ("reset.request_link", "GET"): ALL,
    ("reset.request_link", "POST"): same(400),
    ("reset.choose_password", "GET"): same(400),
    ("reset.choose_password", "POST"): same(400),
    # The signed-in user's own security pages; a POST without its fields answers 400.
    ("account.change_password", "GET"): row((SIGNED_IN, 200)),
    ("account.change_password", "POST"): row((SIGNED_IN, 400)),
    # Recovery codes belong to the staff second factor; requesters have neither.
    ("account.recovery_codes", "GET"): row((STAFF, 200)),
    ("account.recovery_codes", "POST"): row((STAFF, 400)),
    # An invitation link that is not valid answers 400 with a page saying so, for everyone.
    ("invitations.accept", "GET"): same(400),
    ("invitations.accept", "POST"): same(400),
    # The administration hub: every role with an area there (not operators, not requesters).
    ("admin.index", "GET"): row((HUB, 200)),
    # Accounts: admins only. Account #1 (the matrix's first account) is an active admin: roles
    # without a role, a name and licence without a name, and a disable without the ticked
    # confirmation are 400; re-enabling it, not disabled, is refused with a message on its page.
    ("admin_users.index", "GET"): row((ADMINS, 200)),
    ("admin_users.detail", "GET"): row((ADMINS, 200)),
    ("admin_users.invite", "GET"): row((ADMINS, 200)),
    ("admin_users.invite", "POST"): row((ADMINS, 400)),
    ("admin_users.set_roles", "POST"): row((ADMINS, 400)),
    ("admin_users.set_identity", "POST"): row((ADMINS, 400)),
    ("admin_users.disable", "POST"): row((ADMINS, 400)),
    ("admin_users.enable", "POST"): row((ADMINS, "/admin/users/1")),
    # Unlocking #1 (not locked) is refused with a message; resetting its MFA works. Its page either way.
    ("admin_users.unlock_account", "POST"): row((ADMINS, "/admin/users/1")),
    ("admin_users.reset_second_factor", "POST"): row((ADMINS, "/admin/users/1")),
    # The dashboard: the helpline's figures (supervisors), the records office's (clerks), both
    # (the privacy officer, read-only). Not for operators, nor for an admin without those roles.
    ("admin_dashboard.index", "GET"): row((DASHBOARD, 200)),
    # Site notices: admins (NOTICES_EDIT). A form POST with only a token has no kind, title or text (400);
    # the matrix creates no notice, so #1 is unknown: 404.
    ("admin_notices.index", "GET"): row((ADMINS, 200)),
    ("admin_notices.new", "GET"): row((ADMINS, 200)),
    ("admin_notices.new", "POST"): row((ADMINS, 400)),
    ("admin_notices.edit", "GET"): row((ADMINS, 404)),
    ("admin_notices.edit", "POST"): row((ADMINS, 404)),
    ("admin_notices.end", "POST"): row((ADMINS, 404)),
    ("admin_notices.delete", "POST"): row((ADMINS, 404)),
    # Quality review: supervisors (QUALITY_REVIEW). The sample button's only input is its token (a
    # redirect back to the queue); the matrix creates no review, so #1 is unknown: 404.
    ("admin_review.index", "GET"): row((SUPERVISORS, 200)),
    ("admin_review.sample", "POST"): row((SUPERVISORS, "/admin/review/")),
    ("admin_review.detail", "GET"): row((SUPERVISORS, 404)),
    ("admin_review.detail", "POST"): row((SUPERVISORS, 404)),
    # Retention: admins only. A policy POST without fields is a 400; the preview's only input is its token.
    ("admin_retention.index", "GET"): row((ADMINS, 200)),
    ("admin_retention.preview", "POST"): row((ADMINS, 200)),
    ("admin_retention.edit", "GET"): row((ADMINS, 200)),
    ("admin_retention.edit", "POST"): row((ADMINS, 400)),
    ("admin_retention.archive", "GET"): row((ADMINS, 200)),
    # The audit review and its export: the privacy officer.
    ("admin_audit.index", "GET"): row((PRIVACY, 200)),
    ("admin_audit.verify", "POST"): row((PRIVACY, "/admin/audit/")),
    ("admin_audit.export", "GET"): row((PRIVACY, 200)),
    # Exports (EXPORT, the privacy officer): without dates a download is a 400 with the exports page.
    # Never a records clerk (no call exports), never an operator.
    ("admin_exports.index", "GET"): row((PRIVACY, 200)),
    ("admin_exports.calls_csv", "GET"): row((PRIVACY, 400)),
    ("admin_exports.requests_csv", "GET"): row((PRIVACY, 400)),
    # The archive index: the records office. A search POST with only a CSRF token has no terms (400);
    # the matrix adds no archive patient, so #1 is unknown (404); an empty new patient is a 400.
    ("archive_admin.index", "GET"): row((ARCHIVE, 200)),
    ("archive_admin.index", "POST"): row((ARCHIVE, 400)),
    ("archive_admin.new", "GET"): row((ARCHIVE, 200)),
    ("archive_admin.new", "POST"): row((ARCHIVE, 400)),
    ("archive_admin.detail", "GET"): row((ARCHIVE, 404)),
    ("archive_admin.detail", "POST"): row((ARCHIVE, 404)),
    # A medical-emergency disclosure of an archived patient's records (42 CFR 2.51); #1 does not exist.
    ("archive_admin.emergency_disclosure", "POST"): row((ARCHIVE, 404)),
    # An MRN lookup for the request's verification step, without an MRN: back to the request's page.
    ("archive_admin.lookup_for_request", "POST"): row((ARCHIVE, "/queue/requests/REF")),
    # The intake form (operators' rights). A POST with only a CSRF token lacks the channel or call
    # type: 400. The matrix creates no call, so #1 is unknown: 404 to those allowed to ask.
    ("calls_intake.start", "GET"): row((HELPLINE, 200)),
    ("calls_intake.start", "POST"): row((HELPLINE, 400)),
    ("calls_intake.log_non_data", "POST"): row((HELPLINE, 400)),
    ("calls_intake.edit", "GET"): row((HELPLINE, 404)),
    ("calls_intake.edit", "POST"): row((HELPLINE, 404)),
    ("calls_intake.autosave", "POST"): row((HELPLINE, 404)),
    # Resource directory: the helpline searches and reads it, admins change it. The matrix creates no
    # resource, so #1 is unknown: 404 to those allowed to ask, 403 to the others.
    ("resources.index", "GET"): row((RESOURCES_READ, 200)),
    ("resources.search_json", "GET"): row((RESOURCES_READ, 200)),
    ("resources.detail", "GET"): row((RESOURCES_READ, 404)),
    ("resources.create", "GET"): row((ADMINS, 200)),
    ("resources.create", "POST"): row((ADMINS, 400)),
    ("resources.edit", "GET"): row((ADMINS, 404)),
    ("resources.edit", "POST"): row((ADMINS, 404)),
    ("resources.retire", "POST"): row((ADMINS, 404)),
    ("resources.reactivate", "POST"): row((ADMINS, 404)),
    ("resources.verified", "POST"): row((ADMINS, 404)),
    # The call log's reading pages: operators' rights; not the records office, not the privacy
    # officer (who answers for who read a call from the audit trail, never its content or the
    # caller's number). #1 is unknown: 404 (authorization before lookup). The urgent queue: supervisors.
    ("calls.index", "GET"): row((HELPLINE, 200)),
    ("calls.detail", "GET"): row((HELPLINE, 404)),
    ("calls.reveal", "POST"): row((HELPLINE, 404)),
    ("calls.lookup", "GET"): row((HELPLINE, 200)),
    ("calls.lookup", "POST"): row((HELPLINE, 400)),
    ("calls.urgent", "GET"): row((SUPERVISORS, 200)),
    ("calls.urgent_reviewed", "POST"): row((SUPERVISORS, 404)),
    # The follow-up queue: operators' rights. Follow-up #1 does not exist in the matrix: 404.
    ("followups.index", "GET"): row((HELPLINE, 200)),
    ("followups.detail", "GET"): row((HELPLINE, 404)),
    ("followups.assign", "POST"): row((HELPLINE, 404)),
    ("followups.attempt", "POST"): row((HELPLINE, 404)),
    ("followups.close", "POST"): row((HELPLINE, 404)),
    # The requester portal: the matrix's request is requester A's; B gets 404 for it, as for any
    # reference that is not theirs. Staff hold no requests of their own: 403. A form posted with
    # only a token: 400.
    ("my_requests.index", "GET"): row((REQUESTERS, 200)),
    ("my_requests.new", "GET"): row((REQUESTERS, 200)),
    ("my_requests.new", "POST"): row((REQUESTERS, 400)),
    ("my_requests.detail", "GET"): row((("requester",), 200), (("requester_b",), 404)),
    ("my_requests.message", "POST"): row((("requester",), 400), (("requester_b",), 404)),
    ("my_requests.withdraw", "POST"): row((("requester",), 400), (("requester_b",), 404)),
    # The answer to a cost estimate: only a token, no answer (400); someone else's request is 404.
    ("my_requests.fee_decision", "POST"): row((("requester",), 400), (("requester_b",), 404)),
    # A review is asked for after a denial; the matrix's request was not denied: 409, "not now".
    ("my_requests.review", "POST"): row((("requester",), 409), (("requester_b",), 404)),
    # The records queue: the records office reads and works it, the privacy officer reads it.
    # A change posted with only a token (no version, no fields): 400.
    ("request_queue.index", "GET"): row((RECORDS_READ, 200)),
    ("request_queue.detail", "GET"): row((RECORDS_READ, 200)),
    ("request_queue.move", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.message", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.note", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.claim", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.assign", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.extend", "POST"): row((RECORDS_WORK, 400)),
    # Requests received on paper, by fax or in person: records staff enter them (a form posted with only
    # a token: 400), and link a requester's account to one later (the matrix's request has one: 400).
    ("request_queue.new", "GET"): row((RECORDS_WORK, 200)),
    ("request_queue.new", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.link_account", "POST"): row((RECORDS_WORK, 400)),
    # Cost estimates and letters (intake/records/page/fees.py). The sample letter does not exist: 404
    # to those who may read the request's letters.
    ("request_queue.fee_estimate", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.letter", "GET"): row((RECORDS_READ, 404)),
    ("my_requests.letter", "GET"): row((REQUESTERS, 404)),
    ("request_queue.letter_pdf", "GET"): row((RECORDS_READ, 404)),
    ("my_requests.letter_pdf", "GET"): row((REQUESTERS, 404)),
    # Documents: the requester's own on their own request (B: 404), the records office's on the
    # queue's. The sample document does not exist (404). The privacy officer reads the request but
    # does not download its documents (the records themselves, the requester's ID).
    ("my_requests.upload", "POST"): row((("requester",), 400), (("requester_b",), 404)),
    ("my_requests.download", "GET"): row((REQUESTERS, 404)),
    ("request_queue.upload", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.download", "GET"): row((RECORDS_WORK, 404)),
    ("request_queue.release", "POST"): row((RECORDS_WORK, 404)),
    ("request_queue.revoke_document", "POST"): row((RECORDS_WORK, 404)),
    ("request_queue.delivery", "POST"): row((RECORDS_WORK, 400)),
    # A third party's copy: the recipient's public page (the link and the code are the credentials: an
    # unknown token is 404 for everyone), and staff sending, withdrawing and re-sending the link.
    ("recipient_copy.open_link", "GET"): same(404),
    ("recipient_copy.enter_code", "POST"): same(404),
    ("recipient_copy.download", "GET"): same(404),
    ("request_queue.send_recipient_link", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.revoke_recipient_link", "POST"): row((RECORDS_WORK, 404)),
    ("request_queue.resend_recipient_link", "POST"): row((RECORDS_WORK, 404)),
    # Consent to disclose: the requester signs and revokes on their own request to send records to
    # a third party (the matrix's is a copy for the patient, so 404 for everyone); staff enter a
    # paper consent from the queue, for such a request only (so 404 here too, to those who may).
    ("my_requests.sign_consent", "GET"): row((REQUESTERS, 404)),
    ("my_requests.sign_consent", "POST"): row((REQUESTERS, 404)),
    ("my_requests.revoke_consent", "POST"): row((REQUESTERS, 404)),
    ("request_queue.enter_consent", "POST"): row((RECORDS_WORK, 404)),
    # A revocation received in writing, recorded by staff: a third-party request only (404 here too).
    ("request_queue.revoke_consent", "POST"): row((RECORDS_WORK, 404)),
    # Licensed professionals: staff record an outside professional's clinical denial (a form posted with
    # only a token: 400) or the patient's designation (400); the patient designates one on their own
    # request (the page: 200; an empty form: 400; B: 404).
    ("request_queue.record_decision", "POST"): row((RECORDS_WORK, 400)),
    ("request_queue.designate", "POST"): row((RECORDS_WORK, 400)),
    ("my_requests.designate", "GET"): row((("requester",), 200), (("requester_b",), 404)),
    ("my_requests.designate", "POST"): row((("requester",), 400), (("requester_b",), 404)),
    # Helpline safety: the call form's poll for supervisors' notes (call #1 does not exist: 404); the
    # repeat-caller check (a POST without a number: 400); a supervisor's note on a live call.
    ("calls_intake.live", "GET"): row((HELPLINE, 404)),
    ("calls.repeat_check", "POST"): row((HELPLINE, 400)),
    ("calls.note", "POST"): row((SUPERVISORS, 404)),
    # Every emergency disclosure made (42 CFR 2.51), a page and a CSV: the privacy officer.
    ("disclosures.index", "GET"): row((PRIVACY, 200)),
    ("disclosures.export", "GET"): row((PRIVACY, 200)),
    # A callback in one step: the number's reveal (reason preset) and the attempt-and-close form.
    ("followups.reveal", "POST"): row((HELPLINE, 404)),
    ("followups.callback", "POST"): row((HELPLINE, 404)),
}

# Values for the URL arguments of rules that have them.
SAMPLE_ARGS = {
    "static": {"filename": "css/intake.css"},
    "bootstrap.static": {"filename": "css/bootstrap.min.css"},
    "registration.verify_email": {"token": "not-a-valid-link"},
    "reset.choose_password": {"token": "not-a-valid-link"},
    "invitations.accept": {"token": "not-a-valid-link"},
    "admin_users.detail": {"user_id": 1},
    "admin_users.unlock_account": {"user_id": 1},
    "admin_users.reset_second_factor": {"user_id": 1},
    "admin_notices.edit": {"notice_id": 1},
    "admin_notices.end": {"notice_id": 1},
    "admin_notices.delete": {"notice_id": 1},
    "admin_users.set_roles": {"user_id": 1},
    "admin_users.set_identity": {"user_id": 1},
    "admin_users.disable": {"user_id": 1},
    "admin_users.enable": {"user_id": 1},
    "archive_admin.detail": {"patient_id": 1},
    "archive_admin.emergency_disclosure": {"patient_id": 1},
    "archive_admin.lookup_for_request": {"reference": "REF"},
    "admin_retention.edit": {"kind": "call_text"},
    "admin_review.detail": {"review_id": 1},
    "calls_intake.edit": {"call_id": 1},
    "calls_intake.autosave": {"call_id": 1},
    "calls.detail": {"call_id": 1},
    "calls.reveal": {"call_id": 1},
    "calls.urgent_reviewed": {"call_id": 1},
    "calls.note": {"call_id": 1},
    "calls_intake.live": {"call_id": 1},
    "followups.detail": {"followup_id": 1},
    "followups.assign": {"followup_id": 1},
    "followups.attempt": {"followup_id": 1},
    "followups.close": {"followup_id": 1},
    "my_requests.detail": {"reference": "REF"},
    "my_requests.message": {"reference": "REF"},
    "my_requests.withdraw": {"reference": "REF"},
    "my_requests.fee_decision": {"reference": "REF"},
    "my_requests.review": {"reference": "REF"},
    "request_queue.detail": {"reference": "REF"},
    "request_queue.move": {"reference": "REF"},
    "request_queue.message": {"reference": "REF"},
    "request_queue.note": {"reference": "REF"},
    "request_queue.claim": {"reference": "REF"},
    "request_queue.assign": {"reference": "REF"},
    "request_queue.extend": {"reference": "REF"},
    "request_queue.link_account": {"reference": "REF"},
    "request_queue.fee_estimate": {"reference": "REF"},
    "request_queue.letter": {"reference": "REF", "doc_uid": "BBBBBBBBBBBBBBBBBBBBBB"},
    "my_requests.letter": {"reference": "REF", "doc_uid": "BBBBBBBBBBBBBBBBBBBBBB"},
    "request_queue.letter_pdf": {"reference": "REF", "doc_uid": "BBBBBBBBBBBBBBBBBBBBBB"},
    "my_requests.letter_pdf": {"reference": "REF", "doc_uid": "BBBBBBBBBBBBBBBBBBBBBB"},
    "my_requests.upload": {"reference": "REF"},
    "my_requests.download": {"reference": "REF", "doc_uid": "0" * 32},
    "request_queue.upload": {"reference": "REF"},
    "request_queue.download": {"reference": "REF", "doc_uid": "0" * 32},
    "request_queue.release": {"reference": "REF", "doc_uid": "0" * 32},
    "request_queue.revoke_document": {"reference": "REF", "doc_uid": "0" * 32},
    "request_queue.delivery": {"reference": "REF"},
    "recipient_copy.open_link": {"token": "A" * 43},
    "recipient_copy.enter_code": {"token": "A" * 43},
    "recipient_copy.download": {"token": "A" * 43, "doc_uid": "0" * 32},
    "request_queue.send_recipient_link": {"reference": "REF"},
    "request_queue.revoke_recipient_link": {"reference": "REF", "link_uid": "0" * 32},
    "request_queue.resend_recipient_link": {"reference": "REF", "link_uid": "0" * 32},
    "my_requests.sign_consent": {"reference": "REF"},
    "my_requests.revoke_consent": {"reference": "REF"},
    "request_queue.enter_consent": {"reference": "REF"},
    "request_queue.revoke_consent": {"reference": "REF"},
    "request_queue.record_decision": {"reference": "REF", "role": "denial"},
    "request_queue.designate": {"reference": "REF"},
    "my_requests.designate": {"reference": "REF"},
    "followups.reveal": {"followup_id": 1},
    "followups.callback": {"followup_id": 1},
    "resources.detail": {"resource_id": 1},
    "resources.edit": {"resource_id": 1},
    "resources.retire": {"resource_id": 1},
    "resources.reactivate": {"resource_id": 1},
    "resources.verified": {"resource_id": 1},
}


def all_rules(app: Flask, reference: str = "REF") -> list[tuple[str, str, str]]:
    cells = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                if rule.arguments and rule.endpoint not in SAMPLE_ARGS:
                    pytest.fail(f"add sample arguments for {rule.endpoint} to SAMPLE_ARGS")
                args = {key: reference if value == "REF" else value
                        for key, value in SAMPLE_ARGS.get(rule.endpoint, {}).items()}
                cells.append((rule.endpoint, method, app.url_for(rule.endpoint, **args)))
    return cells


def test_every_route_has_an_expectation(app):
    found = {(endpoint, method) for endpoint, method, _ in all_rules(app)}
    missing = found - EXPECTED.keys()
    stale = EXPECTED.keys() - found
    assert not missing, f"routes without an authorization expectation: {sorted(missing)}"
    assert not stale, f"expectations for routes that no longer exist: {sorted(stale)}"
    assert all(set(cells) == set(ROLES) for cells in EXPECTED.values()), "every row has a cell per column"


def test_the_columns_cover_every_role():
    covered = {role for roles in ACCOUNTS.values() for role in roles}
    assert covered == set(Role)
    assert any(len(roles) > 1 for roles in ACCOUNTS.values()), "a column holds several roles"


@pytest.mark.parametrize("column", ROLES)
def test_route_matrix(app, make_user, make_request, column):
    """Walk every rule and method as this column's account and compare with EXPECTED."""
    make_user(Role.ADMIN)  # account #1
    owner = make_user(Role.REQUESTER)  # requester A
    reference = make_request(owner)
    failures = []
    for endpoint, method, path in all_rules(app, reference):
        fresh = app.test_client()
        if column == "requester":
            assert login(fresh, owner.email).status_code == 302
        elif column != "anonymous":
            assert login(fresh, make_user(ACCOUNTS[column]).email).status_code == 302
        expected = EXPECTED[(endpoint, method)][column]
        if isinstance(expected, str):
            expected = expected.replace("REF", reference)
        if method == "GET":
            response = fresh.get(path)
        else:
            token = csrf_token(fresh, "/login" if column == "anonymous" else "/account")
            response = fresh.open(path, method=method, data={"csrf_token": token})
        response.close()  # a streamed download keeps its request context until closed
        got: int | str = response.status_code
        if response.status_code in (301, 302, 303):
            location = response.headers["Location"]
            got = LOGIN if location.startswith("/login") else location
        if got != expected:
            failures.append(f"{method} {path} ({endpoint}) as {column}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)


def test_route_without_policy_is_refused(app, client, make_user):
    """Deny by default: a view nobody declared a policy for answers 403, even to an admin."""
    app.add_url_rule("/forgotten", "forgotten", lambda: "should never be served")
    assert client.get("/forgotten").status_code == 403
    admin = make_user(list(STAFF_ROLES))
    login(client, admin.email)
    response = client.get("/forgotten")
    assert response.status_code == 403
    assert b"should never be served" not in response.data


def test_require_refuses_a_role_without_the_permission(app, client, make_user):
    @require(Permission.USERS_MANAGE)
    def admin_only():
        return "admin area"

    app.add_url_rule("/admin-only-probe", "admin_only_probe", admin_only)
    operator = make_user([Role.OPERATOR, Role.SUPERVISOR, Role.RECORDS_CLERK, Role.PRIVACY_OFFICER])
    login(client, operator.email)
    assert client.get("/admin-only-probe").status_code == 403
    other = app.test_client()
    admin = make_user(Role.ADMIN)
    login(other, admin.email)
    assert other.get("/admin-only-probe").get_data(as_text=True) == "admin area"


def test_require_with_several_permissions_lets_any_of_them_in(app, make_user):
    @require(Permission.DASHBOARD_HELPLINE, Permission.DASHBOARD_RECORDS)
    def figures():
        return "figures"

    app.add_url_rule("/figures-probe", "figures_probe", figures)
    for roles, status in (([Role.SUPERVISOR], 200), ([Role.RECORDS_CLERK], 200), ([Role.OPERATOR], 403),
                          ([Role.ADMIN], 403)):
        browser = app.test_client()
        login(browser, make_user(roles).email)
        assert browser.get("/figures-probe").status_code == status, roles
    with pytest.raises(TypeError):
        require()


def test_public_endpoints_all_exist(app):
    """The explicit public list names only real endpoints (a stale name could hide a typo)."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert PUBLIC_ENDPOINTS <= endpoints, sorted(PUBLIC_ENDPOINTS - endpoints)


class FakeUser:
    def __init__(self, *roles, active=True, uid=1, verified=True):
        self.roles, self.active, self.id = frozenset(roles), active, uid
        self.email_verified_at = "2026-01-01" if verified else None
        self.is_authenticated = True

    @property
    def is_active(self):
        return self.active


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_can_follows_the_role_table(role, permission):
    assert can(FakeUser(role), permission) is (permission in ROLE_PERMISSIONS[role])


def test_several_roles_have_the_union_of_their_permissions_and_nothing_more():
    both = FakeUser(Role.OPERATOR, Role.RECORDS_CLERK)
    for permission in Permission:
        expected = permission in ROLE_PERMISSIONS[Role.OPERATOR] | ROLE_PERMISSIONS[Role.RECORDS_CLERK]
        assert can(both, permission) is expected, permission
    assert permissions_of(frozenset()) == frozenset()
    assert not can(FakeUser(), Permission.SIGNED_IN)  # an account holding no role may do nothing


def test_can_refuses_inactive_anonymous_and_unknown_roles():
    assert not can(FakeUser(Role.ADMIN, active=False), Permission.SIGNED_IN)
    assert not can(None, Permission.SIGNED_IN)
    assert not can(FakeUser("superuser"), Permission.SIGNED_IN)
    assert can(FakeUser("superuser", Role.OPERATOR), Permission.CALLS_LOG)  # the unknown one adds nothing
    assert not can(FakeUser("superuser", Role.OPERATOR), Permission.USERS_MANAGE)


def test_an_unverified_requester_cannot_submit_a_request():
    assert can(FakeUser(Role.REQUESTER), Permission.REQUESTS_SUBMIT)
    assert not can(FakeUser(Role.REQUESTER, verified=False), Permission.REQUESTS_SUBMIT)
    assert can(FakeUser(Role.REQUESTER, verified=False), Permission.REQUESTS_OWN)


def test_operators_never_reach_records_requests():
    for permission in (Permission.REQUESTS_QUEUE, Permission.REQUESTS_VIEW, Permission.REQUESTS_OWN):
        assert permission not in ROLE_PERMISSIONS[Role.OPERATOR]
        assert permission not in ROLE_PERMISSIONS[Role.SUPERVISOR]


def test_records_clerk_has_no_call_log_no_user_admin_and_no_exports():
    clerk = ROLE_PERMISSIONS[Role.RECORDS_CLERK]
    assert {Permission.REQUESTS_VIEW, Permission.REQUESTS_QUEUE, Permission.ARCHIVE_MANAGE,
            Permission.DASHBOARD_RECORDS} <= clerk
    assert not {p for p in clerk if p.value.startswith(("calls.", "followups."))}
    assert Permission.USERS_MANAGE not in clerk and Permission.EXPORT not in clerk
    assert Permission.DASHBOARD_HELPLINE not in clerk


def test_supervisor_has_the_operators_rights_and_the_helplines_oversight():
    assert ROLE_PERMISSIONS[Role.OPERATOR] < ROLE_PERMISSIONS[Role.SUPERVISOR]
    assert {Permission.CALLS_URGENT_QUEUE, Permission.CALLS_EDIT_ANY, Permission.QUALITY_REVIEW,
            Permission.DASHBOARD_HELPLINE} <= ROLE_PERMISSIONS[Role.SUPERVISOR]


# What changes something, or shows a caller's identity: none of it is the privacy officer's.
WRITES = {Permission.CALLS_LOG, Permission.CALLS_EDIT_ANY, Permission.CALLER_CONTACT_REVEAL, Permission.FOLLOWUPS_WORK,
          Permission.RESOURCES_EDIT, Permission.REQUESTS_QUEUE, Permission.ARCHIVE_MANAGE, Permission.USERS_MANAGE,
          Permission.SETTINGS_EDIT, Permission.NOTICES_EDIT, Permission.QUALITY_REVIEW, Permission.RETENTION_MANAGE,
          Permission.REQUESTS_SUBMIT, Permission.REQUESTS_OWN}


def test_privacy_officer_reviews_and_reports_and_is_read_only_elsewhere():
    officer = ROLE_PERMISSIONS[Role.PRIVACY_OFFICER]
    assert {Permission.AUDIT_VIEW, Permission.DISCLOSURES_REPORT, Permission.EXPORT, Permission.REQUESTS_VIEW,
            Permission.DASHBOARD_HELPLINE, Permission.DASHBOARD_RECORDS} <= officer
    assert not officer & WRITES
    # Not the call log: neither its pages nor a caller's contact details.
    assert Permission.CALLS_VIEW not in officer and Permission.CALLER_CONTACT_REVEAL not in officer


def test_admin_runs_accounts_settings_notices_directory_and_retention_only():
    assert ROLE_PERMISSIONS[Role.ADMIN] == {
        Permission.SIGNED_IN, Permission.OWN_SECOND_FACTOR, Permission.ADMIN_HUB, Permission.USERS_MANAGE,
        Permission.SETTINGS_EDIT, Permission.NOTICES_EDIT, Permission.RESOURCES_USE, Permission.RESOURCES_EDIT,
        Permission.RETENTION_MANAGE}


def test_the_disclosure_report_permission_has_its_agreed_name():
    """Another part of the app declares its routes with this exact permission."""
    assert Permission.DISCLOSURES_REPORT.value == "disclosures.report"
    assert roles_with([Permission.DISCLOSURES_REPORT]) == [Role.PRIVACY_OFFICER]


def test_every_role_has_a_landing_and_several_roles_land_on_the_first():
    assert [role for role, _ in LANDING] == list(Role)
    assert landing_endpoint(FakeUser(Role.PRIVACY_OFFICER, Role.SUPERVISOR)) == "calls.urgent"
    assert landing_endpoint(FakeUser(Role.ADMIN, Role.RECORDS_CLERK)) == "request_queue.index"
    assert landing_endpoint(FakeUser()) == "auth.account"


def test_requesters_get_only_their_own_objects():
    class Request:
        def __init__(self, owner_id):
            self.owner_id = owner_id

    me = FakeUser(Role.REQUESTER, uid=7)
    assert can(me, Permission.REQUESTS_OWN, Request(owner_id=7))
    assert not can(me, Permission.REQUESTS_OWN, Request(owner_id=8))
    assert not can(me, Permission.CALLS_VIEW)


# --- the 403 page ------------------------------------------------------------------------------

def _refusal_page(app, make_user, roles, path) -> str:
    browser = app.test_client()
    assert login(browser, make_user(roles).email).status_code == 302
    response = browser.get(path)
    assert response.status_code == 403
    return response.get_data(as_text=True)


def test_a_refusal_names_the_role_needed_and_the_admins_to_ask(app, make_user):
    make_user(Role.ADMIN, display_name="Test Administrator One")
    make_user([Role.ADMIN, Role.SUPERVISOR], display_name="Test Administrator Two")
    make_user(Role.ADMIN, display_name="Disabled Admin", active=False)
    page = _refusal_page(app, make_user, Role.OPERATOR, "/queue/requests/")
    assert "This page needs one of these roles: Records clerk or Privacy officer." in page
    assert "ask an administrator: Test Administrator One, Test Administrator Two." in page
    assert "Disabled Admin" not in page
    page = _refusal_page(app, make_user, Role.RECORDS_CLERK, "/admin/users/")
    assert "This page needs the role Administrator." in page
    # The admin asking is not told to ask themself.
    page = _refusal_page(app, make_user, Role.ADMIN, "/calls/")
    assert "This page needs one of these roles: Helpline operator or Helpline supervisor." in page


def test_a_refusal_to_a_requester_or_visitor_says_only_that_the_page_is_for_staff(app, client, make_user):
    app.add_url_rule("/undeclared-probe", "undeclared_probe", lambda: "x")
    make_user(Role.ADMIN, display_name="Test Administrator One")
    for path in ("/calls/", "/admin/users/"):
        page = _refusal_page(app, make_user, Role.REQUESTER, path)
        assert "This page is for the facility&#39;s staff." in page
        assert "Test Administrator One" not in page and "Administrator" not in page and "needs the role" not in page
    page = client.get("/undeclared-probe").get_data(as_text=True)
    assert "facility" in page and "Test Administrator One" not in page


def test_the_requesters_refusal_is_in_spanish(app, make_user):
    browser = app.test_client()
    login(browser, make_user(Role.REQUESTER).email)
    page = browser.get("/calls/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "Esta página es para el personal del centro." in page


def test_a_staff_member_on_a_requesters_page_is_told_it_is_for_requesters(app, make_user):
    page = _refusal_page(app, make_user, Role.RECORDS_CLERK, "/my/requests/")
    assert "This page is for people requesting their own records." in page
    assert "ask an administrator" not in page


def test_a_refusal_for_another_reason_stays_generic(app, make_user):
    """A 403 that is not about a missing role (here: a service refusing) names no role."""
    from werkzeug.exceptions import Forbidden

    @require(Permission.SIGNED_IN)
    def refused():
        raise Forbidden()

    app.add_url_rule("/refused-probe", "refused_probe", refused)
    page = _refusal_page(app, make_user, Role.OPERATOR, "/refused-probe")
    assert "needs the role" not in page and "If you think you should, ask an administrator." in page


def test_refusal_advice_looks_up_admins_only_for_staff(app, make_user, monkeypatch):
    """A requester's 403 never looks up who the administrators are (it is not a way to learn staff
    names); a staff member's does."""
    asked = []
    monkeypatch.setattr("intake.errors.active_admins", lambda: asked.append(1) or [])
    _refusal_page(app, make_user, Role.REQUESTER, "/admin/users/")
    assert asked == []
    _refusal_page(app, make_user, Role.OPERATOR, "/admin/users/")
    assert asked == [1]


def test_the_roles_come_with_the_user_in_one_statement(app, client, make_user):
    """The session's user loader reads the account and its roles together (a join): checking the
    roles on a page costs no query of its own."""
    from tests.conftest import sql_statements

    login(client, make_user([Role.OPERATOR, Role.RECORDS_CLERK]).email)
    with sql_statements(app) as seen:
        assert client.get("/account").status_code == 200
    about_users = [s for s in seen if "FROM users" in s or "FROM user_roles" in s]
    assert len(about_users) == 1, about_users
    assert "JOIN user_roles" in about_users[0]
