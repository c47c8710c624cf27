"""Structured logs (intake/ops/logs.py): one JSON object a line with the request id, no planted
canary anywhere in them; Sentry's events scrubbed of bodies, cookies, headers and form data."""

from __future__ import annotations

import io
import json
import logging

import pytest
from flask import Flask

from intake.ops import logs
from intake.users.models import Role
from tests.conftest import csrf_token, login, make_app

# Values a person types that must never reach a log line.
CANARIES = {
    "name": "Quillon Farnsworth-Vasquez",
    "phone": "(415) 555-0187",
    "phone_digits": "4155550187",
    "note": "canary-note-c4f1 took twelve Klonopin",
    "email": "canary.person.c4f1@example.org",
    "password": "canary-password-c4f1-long",
    "patient": "Ottoline Canarybird",
}
# Built, not written out, so the source lines Sentry quotes around a frame never contain it.
COOKIE = "-".join(("secret", "cookie", "c4f1"))


@pytest.fixture()
def json_log(app: Flask):
    """The app's logs as JSON lines in a buffer, at DEBUG (everything any code logs)."""
    app.config["LOG_FORMAT"] = "json"
    app.config["LOG_LEVEL"] = "DEBUG"
    stream = io.StringIO()
    handler = logs.configure_logging(app, stream)
    yield stream
    logging.getLogger().removeHandler(handler)
    logging.getLogger().setLevel(logging.WARNING)


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_each_line_is_a_json_object_with_the_request_id(app, client, json_log):
    response = client.post("/login", data={"email": "a@example.org", "password": "x"})  # no CSRF token: logged
    assert response.status_code == 400
    records = lines(json_log)
    assert records, "nothing was logged"
    line = next(r for r in records if "CSRF check failed" in r["message"])
    assert set(line) >= {"time", "level", "logger", "message", "request_id", "endpoint"}
    assert line["level"] == "INFO" and line["logger"] == app.logger.name
    assert line["request_id"] == response.headers["X-Request-Id"] and line["endpoint"] == "auth.login"


def test_outside_a_request_the_fields_are_there_too(app, json_log):
    logging.getLogger("intake.test").warning("a job said %s", "hello")
    (line,) = [r for r in lines(json_log) if r["logger"] == "intake.test"]
    assert line["message"] == "a job said hello" and line["request_id"] == "-" and line["endpoint"] == "-"


def test_configuring_again_replaces_the_handler(app):
    first = logs.configure_logging(app, io.StringIO())
    second = logs.configure_logging(app, io.StringIO())
    try:
        root = logging.getLogger()
        assert second in root.handlers and first not in root.handlers
    finally:
        logging.getLogger().removeHandler(second)


def test_the_format_follows_the_configuration(app, tmp_path):
    assert logs.log_format(app) == "text"  # testing and development read text
    app.config["ENV_NAME"] = "production"
    assert logs.log_format(app) == "json"
    app.config["LOG_FORMAT"] = "xml"
    with pytest.raises(ValueError, match="LOG_FORMAT must be json or text"):
        logs.log_format(app)


def test_a_trusted_proxy_names_the_request_and_a_visitor_cannot(app, client, tmp_path):
    nginx_id = "0f" * 16
    assert client.get("/healthz", headers={"X-Request-Id": nginx_id}).headers["X-Request-Id"] != nginx_id
    behind = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "b", TRUSTED_PROXY_COUNT=1).test_client()
    assert behind.get("/healthz", headers={"X-Request-Id": nginx_id}).headers["X-Request-Id"] == nginx_id
    for forged in ("<script>", "a" * 65, "short", "x; Set-Cookie: a=b"):
        assert behind.get("/healthz", headers={"X-Request-Id": forged}).headers["X-Request-Id"] != forged


def test_no_planted_canary_reaches_the_logs(app, client, json_log, make_user, make_request):
    """Canaries typed into sign-in, registration, reset, a call and a records request, through
    failures, lockouts and errors: none of them is in any log line, at any level."""
    # Sign-in failures with a canary address and password, up to a lockout.
    victim = make_user(Role.OPERATOR, email=CANARIES["email"])
    for _ in range(11):
        client.post("/login", data={"email": CANARIES["email"], "password": CANARIES["password"],
                                    "csrf_token": csrf_token(client)})
    client.post("/login", data={"email": "nobody." + CANARIES["email"], "password": CANARIES["password"],
                                "csrf_token": csrf_token(client)})
    # Registration and a password reset for canary addresses.
    client.post("/register", data={"email": "new." + CANARIES["email"], "password": CANARIES["password"],
                                   "confirm": CANARIES["password"], "csrf_token": csrf_token(client, "/register")})
    client.post("/reset", data={"email": CANARIES["email"], "csrf_token": csrf_token(client, "/reset")})
    # A call with the caller's name, phone and a note; then a records request naming the patient.
    operator = make_user(Role.OPERATOR)
    assert login(client, operator.email).status_code == 302
    started = client.post("/calls/new", data={"csrf_token": csrf_token(client, "/calls/new"), "channel": "phone"})
    call_path = started.headers["Location"]
    client.post(call_path, data={
        "csrf_token": csrf_token(client, call_path), "channel": "phone", "relationship_to_person": "self",
        "caller_name": CANARIES["name"], "caller_phone": CANARIES["phone"], "notes": CANARIES["note"],
        "suicidal_thoughts": "no", "medical_danger": "no", "disposition": "information_given", "action": "draft"})
    client.post(call_path, data={"csrf_token": "forged", "caller_name": CANARIES["name"]})  # a CSRF failure
    requester = make_user(Role.REQUESTER)
    make_request(requester, patient_name=CANARIES["patient"])
    assert victim.id

    text = json_log.getvalue()
    assert len(lines(json_log)) >= 2  # the test saw logging happen (the CSRF failure at least)
    for what, canary in CANARIES.items():
        assert canary not in text, f"the {what} canary is in the logs"


# --- Sentry -----------------------------------------------------------------------------------------

def sample_event() -> dict:
    """An event as sentry-sdk's Flask and logging integrations build it, full of what must go."""
    return {
        "request": {"method": "POST", "url": f"https://records.example.org/reset/{CANARIES['password']}",
                    "query_string": f"name={CANARIES['name']}", "data": {"caller_name": CANARIES["name"]},
                    "cookies": {"__Host-intake_session": "secret-cookie"},
                    "headers": {"Cookie": "secret-cookie", "Authorization": "Bearer secret"},
                    "env": {"REMOTE_ADDR": "203.0.113.9"}},
        "user": {"email": CANARIES["email"], "ip_address": "203.0.113.9"},
        "exception": {"values": [{"type": "ValueError", "value": f"bad phone {CANARIES['phone']}",
                                  "stacktrace": {"frames": [{"function": "save", "lineno": 3,
                                                             "vars": {"note": CANARIES["note"]}}]}}]},
        "logentry": {"message": "call %s saved", "params": [CANARIES["note"]],
                     "formatted": f"call {CANARIES['note']} saved"},
        "message": f"call {CANARIES['note']} saved",
        "breadcrumbs": {"values": [{"category": "query", "message": "SELECT", "data": {"p": CANARIES["patient"]}}]},
        "extra": {"sys.argv": ["flask", CANARIES["email"]]},
        "server_name": "app1",
    }


def test_the_scrubber_removes_bodies_cookies_headers_and_form_data():
    scrubbed = json.dumps(logs.scrub_event(sample_event(), {}))
    for secret in [*CANARIES.values(), "secret-cookie", "Bearer secret", "203.0.113.9"]:
        assert secret not in scrubbed, secret
    event = json.loads(scrubbed)
    assert event["request"] == {"method": "POST"}
    assert event["exception"]["values"][0]["type"] == "ValueError"  # what finds the bug stays
    assert event["exception"]["values"][0]["stacktrace"]["frames"][0]["function"] == "save"
    assert event["logentry"] == {"message": "call %s saved"}


def test_a_500_reaches_sentry_scrubbed(app, tmp_path):
    """sentry-sdk for real (a transport that keeps events instead of sending them): a view that
    fails while a form full of canaries is posted with a session cookie."""
    sentry_sdk = pytest.importorskip("sentry_sdk")
    from sentry_sdk.transport import Transport

    sent: list[dict] = []

    class Keep(Transport):
        def capture_envelope(self, envelope):
            for item in envelope.items:
                if item.payload.json:
                    sent.append(item.payload.json)

    failing = make_app(app.config["SQLALCHEMY_DATABASE_URI"], tmp_path / "s", SENTRY_DSN="https://k@example.invalid/1",
                       WTF_CSRF_ENABLED=False)
    assert logs.init_sentry(failing, transport=Keep)

    def boom():
        raise RuntimeError(f"failed for {CANARIES['name']}")

    failing.view_functions["public.records_guide"] = boom  # a known public endpoint that now fails
    client = failing.test_client()
    client.set_cookie("intake_session", COOKIE)
    response = client.post("/records?name=" + CANARIES["patient"], data={"caller_name": CANARIES["name"],
                                                                          "notes": CANARIES["note"]})
    assert response.status_code in (405, 500)
    client.get("/records?name=" + CANARIES["patient"], headers={"Cookie": "intake_session=" + COOKIE})
    sentry_sdk.flush()
    try:
        assert sent, "no event reached the transport"
        text = json.dumps(sent)
        for secret in [*CANARIES.values(), COOKIE]:
            assert secret not in text, secret
        assert "RuntimeError" in text
    finally:
        sentry_sdk.init(dsn=None)  # off again for the rest of the run
