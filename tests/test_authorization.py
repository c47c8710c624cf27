"""Every route x every role has an expected outcome; a route without one fails this file.

This is the guard that keeps a future route from shipping without an access policy: add the
route, and this test fails until its row below says who may reach it.
"""

from __future__ import annotations

import pytest
from flask import Flask

from intake.permissions import PUBLIC_ENDPOINTS, ROLE_PERMISSIONS, Permission, can, require
from intake.users.models import Role
from tests.conftest import csrf_token, login

ROLES = ("anonymous", "requester", "operator", "admin")
LOGIN = "login"  # anonymous visitor sent to the sign-in page
SIGNED_IN_TO_ACCOUNT = {"requester": "/account", "operator": "/account", "admin": "/account"}  # already signed in

ALL = {role: 200 for role in ROLES}

# (endpoint, method) -> {role: expected}; an int is a status, LOGIN a redirect to /login,
# a string starting with "/" a redirect to that path.
EXPECTED: dict[tuple[str, str], dict[str, int | str]] = {
    ("static", "GET"): ALL,
    ("bootstrap.static", "GET"): ALL,
    ("public.index", "GET"): ALL,
    ("public.records_guide", "GET"): ALL,
    ("public.healthz", "GET"): ALL,
    # The language switch (intake/i18n.py) is for everyone; a POST naming no language of the site is
    # refused with the 400 page (a real switch always sends one and goes back to its page).
    ("language.switch", "POST"): {role: 400 for role in ROLES},
    ("auth.login", "GET"): {"anonymous": 200, "requester": "/account", "operator": "/account", "admin": "/account"},
    # A POST with a valid CSRF token but no credentials: the form answers 400 to a visitor,
    # and a signed-in user is simply sent to their account.
    ("auth.login", "POST"): {"anonymous": 400, "requester": "/account", "operator": "/account", "admin": "/account"},
    # Without a sign-in waiting for its second step, both are sent back to /login.
    ("auth.mfa", "GET"): {role: LOGIN for role in ROLES},
    ("auth.mfa", "POST"): {role: LOGIN for role in ROLES},
    ("auth.mfa_setup", "GET"): {role: LOGIN for role in ROLES},
    ("auth.mfa_setup", "POST"): {role: LOGIN for role in ROLES},
    ("auth.logout", "POST"): {"anonymous": LOGIN, "requester": "/", "operator": "/", "admin": "/"},
    ("auth.account", "GET"): {"anonymous": LOGIN, "requester": 200, "operator": 200, "admin": 200},
    # "Stay signed in" in the idle-timeout dialog (js/session.js): anyone signed in.
    ("session.keepalive", "POST"): {"anonymous": LOGIN, "requester": 200, "operator": 200, "admin": 200},
    # Registration is for visitors; a signed-in user is sent to their account.
    ("registration.register", "GET"): {"anonymous": 200, **SIGNED_IN_TO_ACCOUNT},
    ("registration.register", "POST"): {"anonymous": 400, **SIGNED_IN_TO_ACCOUNT},
    # A link that is not valid (forged, used or expired) answers 400 with a page saying so, for everyone.
    ("registration.verify_email", "GET"): {role: 400 for role in ROLES},
    ("registration.verify_email", "POST"): {role: 400 for role in ROLES},
    # Every test account is verified already: told so on the account page.
    ("registration.resend_verification", "POST"): {"anonymous": LOGIN, **SIGNED_IN_TO_ACCOUNT},
    # Anyone may ask for a reset link (a signed-in user may have forgotten the password too).
    ("reset.request_link", "GET"): ALL,
    ("reset.request_link", "POST"): {role: 400 for role in ROLES},
    ("reset.choose_password", "GET"): {role: 400 for role in ROLES},
    ("reset.choose_password", "POST"): {role: 400 for role in ROLES},
    # The signed-in user's own security pages; a POST without its fields answers 400.
    ("account.change_password", "GET"): {"anonymous": LOGIN, "requester": 200, "operator": 200, "admin": 200},
    ("account.change_password", "POST"): {"anonymous": LOGIN, "requester": 400, "operator": 400, "admin": 400},
    # Recovery codes belong to the staff second factor; requesters have neither.
    ("account.recovery_codes", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 200, "admin": 200},
    ("account.recovery_codes", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 400, "admin": 400},
    # An invitation link that is not valid answers 400 with a page saying so, for everyone.
    ("invitations.accept", "GET"): {role: 400 for role in ROLES},
    ("invitations.accept", "POST"): {role: 400 for role in ROLES},
    # Account administration: admins only.
    ("admin.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    # Step 6 users rows:
    # Account #1 (the first user the matrix makes) is an active admin: a role change without a
    # role and a disable without the ticked confirmation are 400; re-enabling it, not disabled,
    # is refused with a message on its page.
    ("admin_users.set_role", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("admin_users.disable", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("admin_users.enable", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403,
                                     "admin": "/admin/users/1"},
    # Step 6 dashboard rows:
    ("admin_dashboard.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    # Step 6 notices rows:
    # Site notices: admins (NOTICES_EDIT). A form POST with only a token has no kind, title or text (400);
    # the matrix creates no notice, so #1 is unknown: 404.
    ("admin_notices.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_notices.new", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_notices.new", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("admin_notices.edit", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("admin_notices.edit", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("admin_notices.end", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("admin_notices.delete", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # Step 6 review rows:
    # Quality review: admins (QUALITY_REVIEW). The sample button's only input is its token (a redirect
    # back to the queue); the matrix creates no review, so #1 is unknown: 404.
    ("admin_review.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_review.sample", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403,
                                      "admin": "/admin/review/"},
    ("admin_review.detail", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("admin_review.detail", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # Step 6 retention rows:
    # Retention: admins only. A policy POST without fields is a 400; the preview's only input is its token.
    ("admin_retention.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_retention.preview", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_retention.edit", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_retention.edit", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("admin_retention.archive", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_users.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_audit.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_audit.verify", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403,
                                     "admin": "/admin/audit/"},
    ("admin_audit.export", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_users.invite", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_users.invite", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("admin_users.detail", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    # Account #1 is the first user the matrix creates. Unlocking it (it is not locked) is refused
    # with a message; resetting its MFA works, or is refused when it is the acting admin itself.
    # Either way the answer is its page.
    ("admin_users.unlock_account", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403,
                                             "admin": "/admin/users/1"},
    ("admin_users.reset_second_factor", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403,
                                                  "admin": "/admin/users/1"},
    # Exports (EXPORT, admins): without dates a download is a 400 with the exports page, not a CSV.
    ("admin_exports.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("admin_exports.calls_csv", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("admin_exports.requests_csv", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    # The archive index: admins only. A search POST with only a CSRF token has no terms (400); the
    # matrix adds no archive patient, so #1 is unknown (404); an empty new patient is a 400.
    ("archive_admin.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("archive_admin.index", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("archive_admin.new", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("archive_admin.new", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("archive_admin.detail", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("archive_admin.detail", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # An MRN lookup for a request's verification step: the sample request does not exist (404).
    ("archive_admin.lookup_for_request", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403,
                                                   "admin": 404},
    # The intake form (operators and admins). A POST with only a CSRF token lacks the channel or
    # call type: 400. The matrix creates no call, so #1 is unknown: 404 to those allowed to ask.
    ("calls_intake.start", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 200, "admin": 200},
    ("calls_intake.start", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 400, "admin": 400},
    ("calls_intake.log_non_data", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 400, "admin": 400},
    ("calls_intake.edit", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("calls_intake.edit", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("calls_intake.autosave", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    # Resource directory: staff search and read it, admins change it. The matrix creates no
    # resource, so #1 is unknown: 404 to those allowed to ask, 403 to the others.
    ("resources.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 200, "admin": 200},
    ("resources.search_json", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 200, "admin": 200},
    ("resources.detail", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("resources.create", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("resources.create", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 400},
    ("resources.edit", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("resources.edit", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("resources.retire", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("resources.reactivate", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("resources.verified", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # The call log's reading pages. The matrix creates no call, so #1 is unknown: 404 to those
    # allowed to ask, 403 to the others (authorization before lookup). A lookup POST without a
    # number is a 400; the urgent queue is for admins.
    ("calls.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 200, "admin": 200},
    ("calls.detail", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("calls.reveal", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("calls.lookup", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 200, "admin": 200},
    ("calls.lookup", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 400, "admin": 400},
    ("calls.urgent", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("calls.urgent_reviewed", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # Helpline safety (issue 16): the call form's poll for supervisors' notes (call #1 does not exist: 404);
    # the repeat-caller check (a POST without a number: 400); a supervisor's note on a live call (supervisors:
    # CALLS_URGENT_QUEUE, admins today; call #1 unknown: 404).
    ("calls_intake.live", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("calls.repeat_check", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 400, "admin": 400},
    ("calls.note", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # Every emergency disclosure made (42 CFR 2.51), a page and a CSV: DISCLOSURES_REPORT (admins here; the
    # privacy officer too once that role lands).
    ("disclosures.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("disclosures.export", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    # The follow-up queue: operators and admins. Follow-up #1 does not exist in the matrix: 404.
    ("followups.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 200, "admin": 200},
    ("followups.detail", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("followups.assign", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("followups.attempt", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("followups.close", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    # A callback in one step: the number's reveal (reason preset) and the attempt-and-close form.
    ("followups.reveal", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    ("followups.callback", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 404, "admin": 404},
    # The requester portal. Staff hold no requests of their own: 403. The sample reference does not
    # exist (and would not be the requester's anyway): 404; the form posted with only a token: 400.
    ("my_requests.index", "GET"): {"anonymous": LOGIN, "requester": 200, "operator": 403, "admin": 403},
    ("my_requests.new", "GET"): {"anonymous": LOGIN, "requester": 200, "operator": 403, "admin": 403},
    ("my_requests.new", "POST"): {"anonymous": LOGIN, "requester": 400, "operator": 403, "admin": 403},
    ("my_requests.detail", "GET"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("my_requests.message", "POST"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("my_requests.withdraw", "POST"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("my_requests.review", "POST"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    # The records queue: admins (REQUESTS_QUEUE) only. The sample reference has the right shape but
    # no request has it: 404 to admins (authorization before lookup, so 403 to the others).
    ("request_queue.index", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 200},
    ("request_queue.detail", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_queue.move", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_queue.message", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_queue.note", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_queue.claim", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_queue.assign", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_queue.extend", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # Cost estimates and letters (intake/records/views_fees.py).
    ("request_fees.estimate", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_fees.staff_letter", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_fees.my_letter", "GET"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    # Documents: the requester's on their own request (the sample one is nobody's: 404), staff's on
    # the queue's (admins); delivery is recorded from the queue page.
    ("request_documents.upload_mine", "POST"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("request_documents.download_mine", "GET"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("request_documents.upload_staff", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_documents.download_staff", "GET"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_documents.release", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_documents.revoke", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    ("request_documents.delivery", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
    # Consent to disclose: the requester signs and revokes on their own request (404 for any other),
    # staff enter a paper consent from the queue.
    ("request_consents.sign", "GET"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("request_consents.sign", "POST"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("request_consents.revoke", "POST"): {"anonymous": LOGIN, "requester": 404, "operator": 403, "admin": 403},
    ("request_consents.enter_paper", "POST"): {"anonymous": LOGIN, "requester": 403, "operator": 403, "admin": 404},
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
    "admin_users.set_role": {"user_id": 1},
    "admin_users.disable": {"user_id": 1},
    "admin_users.enable": {"user_id": 1},
    "archive_admin.detail": {"patient_id": 1},
    "archive_admin.lookup_for_request": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
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
    "followups.reveal": {"followup_id": 1},
    "followups.callback": {"followup_id": 1},
    "my_requests.detail": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "my_requests.message": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "my_requests.withdraw": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "my_requests.review": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_queue.detail": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_queue.move": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_queue.message": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_queue.note": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_queue.claim": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_queue.assign": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_queue.extend": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_fees.estimate": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_fees.staff_letter": {"reference": "AAAAAAAAAAAAAAAAAAAAAA", "doc_uid": "BBBBBBBBBBBBBBBBBBBBBB"},
    "request_fees.my_letter": {"reference": "AAAAAAAAAAAAAAAAAAAAAA", "doc_uid": "BBBBBBBBBBBBBBBBBBBBBB"},
    "request_documents.upload_mine": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_documents.download_mine": {"reference": "AAAAAAAAAAAAAAAAAAAAAA", "doc_uid": "0" * 32},
    "request_documents.upload_staff": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_documents.download_staff": {"reference": "AAAAAAAAAAAAAAAAAAAAAA", "doc_uid": "0" * 32},
    "request_documents.release": {"reference": "AAAAAAAAAAAAAAAAAAAAAA", "doc_uid": "0" * 32},
    "request_documents.revoke": {"reference": "AAAAAAAAAAAAAAAAAAAAAA", "doc_uid": "0" * 32},
    "request_documents.delivery": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_consents.sign": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_consents.revoke": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "request_consents.enter_paper": {"reference": "AAAAAAAAAAAAAAAAAAAAAA"},
    "resources.detail": {"resource_id": 1},
    "resources.edit": {"resource_id": 1},
    "resources.retire": {"resource_id": 1},
    "resources.reactivate": {"resource_id": 1},
    "resources.verified": {"resource_id": 1},
}


def all_rules(app: Flask) -> list[tuple[str, str, str]]:
    cells = []
    with app.test_request_context():
        for rule in app.url_map.iter_rules():
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                if rule.arguments and rule.endpoint not in SAMPLE_ARGS:
                    pytest.fail(f"add sample arguments for {rule.endpoint} to SAMPLE_ARGS")
                path = app.url_for(rule.endpoint, **SAMPLE_ARGS.get(rule.endpoint, {}))
                cells.append((rule.endpoint, method, path))
    return cells


def test_every_route_has_an_expectation(app):
    found = {(endpoint, method) for endpoint, method, _ in all_rules(app)}
    missing = found - EXPECTED.keys()
    stale = EXPECTED.keys() - found
    assert not missing, f"routes without an authorization expectation: {sorted(missing)}"
    assert not stale, f"expectations for routes that no longer exist: {sorted(stale)}"


@pytest.mark.parametrize("role", ROLES)
def test_route_matrix(app, make_user, role):
    """Walk every rule and method as this role and compare with EXPECTED."""
    failures = []
    for endpoint, method, path in all_rules(app):
        fresh = app.test_client()
        if role != "anonymous":
            user = make_user(role)
            assert login(fresh, user.email).status_code == 302
        expected = EXPECTED[(endpoint, method)][role]
        if method == "GET":
            response = fresh.get(path)
        else:
            token = csrf_token(fresh, "/login" if role == "anonymous" else "/account")
            response = fresh.open(path, method=method, data={"csrf_token": token})
        response.close()  # a streamed download keeps its request context until closed
        got: int | str = response.status_code
        if response.status_code in (301, 302, 303):
            location = response.headers["Location"]
            got = LOGIN if location.startswith("/login") else location
        if got != expected:
            failures.append(f"{method} {path} ({endpoint}) as {role}: expected {expected}, got {got}")
    assert not failures, "\n".join(failures)


def test_route_without_policy_is_refused(app, client, make_user):
    """Deny by default: a view nobody declared a policy for answers 403, even to an admin."""
    app.add_url_rule("/forgotten", "forgotten", lambda: "should never be served")
    assert client.get("/forgotten").status_code == 403
    admin = make_user(Role.ADMIN)
    login(client, admin.email)
    response = client.get("/forgotten")
    assert response.status_code == 403
    assert b"should never be served" not in response.data


def test_require_refuses_a_role_without_the_permission(app, client, make_user):
    @require(Permission.USERS_MANAGE)
    def admin_only():
        return "admin area"

    app.add_url_rule("/admin-only-probe", "admin_only_probe", admin_only)
    operator = make_user(Role.OPERATOR)
    login(client, operator.email)
    assert client.get("/admin-only-probe").status_code == 403
    other = app.test_client()
    admin = make_user(Role.ADMIN)
    login(other, admin.email)
    assert other.get("/admin-only-probe").get_data(as_text=True) == "admin area"


def test_public_endpoints_all_exist(app):
    """The explicit public list names only real endpoints (a stale name could hide a typo)."""
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert PUBLIC_ENDPOINTS <= endpoints, sorted(PUBLIC_ENDPOINTS - endpoints)


class FakeUser:
    def __init__(self, role, active=True, uid=1, verified=True):
        self.role, self.active, self.id = role, active, uid
        self.email_verified_at = "2026-01-01" if verified else None
        self.is_authenticated = True

    @property
    def is_active(self):
        return self.active


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("permission", list(Permission))
def test_can_follows_the_role_table(role, permission):
    assert can(FakeUser(role), permission) is (permission in ROLE_PERMISSIONS[role])


def test_can_refuses_inactive_anonymous_and_unknown_roles():
    assert not can(FakeUser(Role.ADMIN, active=False), Permission.SIGNED_IN)
    assert not can(None, Permission.SIGNED_IN)
    assert not can(FakeUser("superuser"), Permission.SIGNED_IN)


def test_an_unverified_requester_cannot_submit_a_request():
    assert can(FakeUser(Role.REQUESTER), Permission.REQUESTS_SUBMIT)
    assert not can(FakeUser(Role.REQUESTER, verified=False), Permission.REQUESTS_SUBMIT)
    assert can(FakeUser(Role.REQUESTER, verified=False), Permission.REQUESTS_OWN)


def test_operators_never_reach_records_requests():
    assert Permission.REQUESTS_QUEUE not in ROLE_PERMISSIONS[Role.OPERATOR]
    assert Permission.REQUESTS_OWN not in ROLE_PERMISSIONS[Role.OPERATOR]


def test_requesters_get_only_their_own_objects():
    class Request:
        def __init__(self, owner_id):
            self.owner_id = owner_id

    me = FakeUser(Role.REQUESTER, uid=7)
    assert can(me, Permission.REQUESTS_OWN, Request(owner_id=7))
    assert not can(me, Permission.REQUESTS_OWN, Request(owner_id=8))
    assert not can(me, Permission.CALLS_VIEW)
