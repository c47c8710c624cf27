"""Security headers on every route, error pages, and the health check."""

from __future__ import annotations

import re

import pytest

from intake.permissions import Permission, require
from intake.records import letter_pdf
from intake.users.models import Role
from tests.conftest import FULL_ADMIN, csrf_token, login, make_app
from tests.test_authorization import all_rules

HTML_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
CSP_PARTS = (
    "default-src 'self'",
    "style-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "frame-ancestors 'none'",
    "form-action 'self'",
)


def assert_security_headers(response, *, static: bool = False) -> None:
    for name, value in HTML_HEADERS.items():
        if static and name == "Cache-Control":
            continue
        assert response.headers.get(name) == value, f"{name} on {response.request.path}"
    csp = response.headers["Content-Security-Policy"]
    for part in CSP_PARTS:
        assert part in csp, f"CSP lacks {part!r}"
    assert re.search(r"script-src 'self' 'nonce-[A-Za-z0-9_-]{16,}'", csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    if static:
        assert "no-store" not in response.headers.get("Cache-Control", "")


@pytest.mark.parametrize("role", ["anonymous", Role.REQUESTER, Role.OPERATOR, Role.ADMIN])
def test_headers_on_every_get_route(app, client, make_user, role):
    if role != "anonymous":
        login(client, make_user(role).email)
    for endpoint, method, path in all_rules(app):
        if method != "GET":
            continue
        response = client.get(path)
        response.close()  # a streamed download keeps its request context (and its user) until closed
        assert_security_headers(response, static=endpoint in ("static", "bootstrap.static"))


def test_html_pages_get_a_fresh_nonce_and_no_inline_script(client):
    first = client.get("/").headers["Content-Security-Policy"]
    second = client.get("/").headers["Content-Security-Policy"]
    assert first != second
    html = client.get("/").get_data(as_text=True)
    assert "<script>" not in html and " style=" not in html
    assert 'lang="en"' in html
    assert 'href="#main"' in html  # skip link


def test_error_responses_carry_the_headers_too(client):
    response = client.get("/no-such-page")
    assert response.status_code == 404
    assert_security_headers(response)


def test_hsts_only_in_production_settings(app, tmp_path):
    assert "Strict-Transport-Security" not in app.test_client().get("/").headers
    secure = make_app(f"sqlite:///{tmp_path / 'x.sqlite3'}", tmp_path / "i", HSTS_ENABLED=True)
    hsts = secure.test_client().get("/").headers["Strict-Transport-Security"]
    assert hsts.startswith("max-age=") and int(hsts.split("=")[1].split(";")[0]) >= 31536000


def test_404_page_shows_a_reference_and_no_internals(client):
    response = client.get("/calls/../../etc/passwd")
    body = response.get_data(as_text=True)
    assert response.status_code == 404
    reference = response.headers["X-Request-Id"]
    assert reference in body
    assert "Page not found" in body
    assert "Traceback" not in body and "werkzeug" not in body.lower()


def test_500_page_shows_a_reference_and_no_stack_trace(app, client, make_user, caplog):
    @require(Permission.SIGNED_IN)
    def explode():
        raise RuntimeError("secret internal detail 8f3a")

    app.add_url_rule("/explode", "explode", explode)
    login(client, make_user(FULL_ADMIN).email)
    response = client.get("/explode")
    body = response.get_data(as_text=True)
    assert response.status_code == 500
    assert response.headers["X-Request-Id"] in body
    assert "secret internal detail" not in body and "Traceback" not in body
    assert "Something went wrong" in body
    # The log has the trace and the same reference, so support can find it.
    assert response.headers["X-Request-Id"] in caplog.text


def test_403_page(app, client, make_user):
    @require(Permission.USERS_MANAGE)
    def admins():
        return "x"

    app.add_url_rule("/admins-probe", "admins_probe", admins)
    login(client, make_user(Role.REQUESTER).email)
    response = client.get("/admins-probe")
    assert response.status_code == 403
    assert "You do not have access" in response.get_data(as_text=True)
    assert response.headers["X-Request-Id"] in response.get_data(as_text=True)


def test_405_and_abort_codes_render_friendly_pages(app, client):
    response = client.delete("/")
    assert response.status_code == 405
    assert "GET" in response.headers["Allow"]
    assert "not allowed" in response.get_data(as_text=True)


@pytest.mark.parametrize("disposition", ["form-data", 'form-data; filename="a.pdf"'])
def test_a_multipart_part_without_a_name_is_a_400_not_a_500(app, client, disposition):
    """Found by the fuzz (tests/fuzz): an unnamed part became a ``None`` form key and the CSRF
    check raised on it."""
    body = (f"--b0undary\r\nContent-Disposition: {disposition}\r\n\r\nvalue\r\n--b0undary--\r\n").encode()
    response = client.post("/login", data=body, content_type="multipart/form-data; boundary=b0undary")
    assert response.status_code == 400
    assert "Traceback" not in response.get_data(as_text=True)


def test_healthz_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_ok(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready", "checks": {
        "database": "up", "schema": "current", "redis": "not configured", "translations": "compiled",
        "letter_pdf": "available" if letter_pdf.available() else "unavailable"}}


def test_readyz_503_and_friendly_page_when_the_database_is_down(tmp_path):
    broken = make_app(f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite3'}", tmp_path / "inst")
    client = broken.test_client()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["status"] == "unavailable"
    assert response.get_json()["checks"]["database"] == "down"
    # The process itself is alive: liveness does not depend on the database.
    assert client.get("/healthz").status_code == 200
    # A page that needs the database: a clear 503 page, no stack trace.
    token = csrf_token(client)
    page = client.post("/login", data={"email": "a@example.org", "password": "whatever-long", "csrf_token": token})
    body = page.get_data(as_text=True)
    assert page.status_code == 503
    assert "temporarily unavailable" in body
    assert "Traceback" not in body and "OperationalError" not in body


def test_database_recovers_without_restart(tmp_path, app):
    """The same app object answers 503 while its database is unreachable and 200 once it is back."""
    db_dir = tmp_path / "later"
    flaky = make_app(f"sqlite:///{db_dir / 'db.sqlite3'}", tmp_path / "inst2")
    client = flaky.test_client()
    assert client.get("/readyz").get_json()["checks"]["database"] == "down"
    db_dir.mkdir()
    assert client.get("/readyz").get_json()["checks"]["database"] == "up"

