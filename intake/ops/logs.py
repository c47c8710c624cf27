"""Logs: one JSON object a line with the request id, and optional error reports through Sentry.

``LOG_FORMAT=json`` (the default in production) writes every record of the app (and of the
libraries it uses) to standard error as one JSON object (python-json-logger): ``time``, ``level``,
``logger``, ``message``, ``request_id`` (the ``X-Request-Id`` of the answer and the reference on
an error page, so an operator can find the lines of one request), ``endpoint`` and, for an error,
``exc_info``. ``text`` is the same for people reading a terminal. Nothing about the visitor is added:
no address, no path (it can hold a token), no query string, no user. What the code logs is kept
free of confidential text by rule; the redaction filter (intake/security/log_redaction.py) goes on
every handler as a second line (the call site below). Tests and the development server (``flask
run --debug``) keep Flask's and pytest's handlers.

``SENTRY_DSN`` turns on error reports (sentry-sdk, Flask integration). ``scrub_event`` removes
from every event what could carry personal or health data: the request's body, form data, cookies,
headers, query string and URL, the user, local variables, exception messages and breadcrumb data.
What is left is the exception's type and stack, the endpoint, the request id and the release.
"""

from __future__ import annotations

import logging
import sys
from typing import IO, Any

from flask import Flask, has_request_context, request
from pythonjsonlogger.json import JsonFormatter

from intake.errors import request_id
from intake.security import log_redaction

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
JSON_FIELDS = "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s %(endpoint)s"
_HANDLER_MARK = "intake_log_handler"
REMOVED = "[removed]"


class RequestFields(logging.Filter):
    """Adds ``request_id`` and ``endpoint`` to every record (``-`` outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = "-"
        record.endpoint = "-"
        if has_request_context():
            record.request_id = request_id()
            record.endpoint = request.endpoint or "-"
        return True


class RedactedJsonFormatter(JsonFormatter):
    """python-json-logger formats ``exc_info`` itself when a record has one, which would bypass the
    redacted ``exc_text`` the redaction filter left; this one writes that text instead."""

    def format(self, record: logging.LogRecord) -> str:
        if record.exc_info and record.exc_text:
            kept, record.exc_info = record.exc_info, None
            try:
                return super().format(record)
            finally:
                record.exc_info = kept
        return super().format(record)


def json_formatter() -> logging.Formatter:
    return RedactedJsonFormatter(JSON_FIELDS, rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                         timestamp=False, json_ensure_ascii=False)


def log_format(app: Flask) -> str:
    chosen = (app.config.get("LOG_FORMAT") or ("json" if app.config["ENV_NAME"] == "production" else "text")).lower()
    if chosen not in ("json", "text"):
        raise ValueError(f"LOG_FORMAT must be json or text, not {chosen!r}")
    return chosen


def configure_logging(app: Flask, stream: IO[str] | None = None) -> logging.Handler:
    """Put one handler (JSON or text) on the root logger, replacing the one an earlier app put there."""
    handler = logging.StreamHandler(stream or sys.stderr)
    setattr(handler, _HANDLER_MARK, True)
    handler.addFilter(RequestFields())
    handler.setFormatter(json_formatter() if log_format(app) == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _HANDLER_MARK, False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(str(app.config.get("LOG_LEVEL") or "INFO").upper())
    # Flask's app.logger passes its records to the root's handler (it adds its own only when none is there).
    app.logger.handlers.clear()
    app.logger.propagate = True
    return handler


def init_app(app: Flask) -> None:
    if not app.debug and not app.testing:
        configure_logging(app)
    # The redacting filter on every handler (tokens, sensitive query values, control characters),
    # after the handlers exist, in tests and development too.
    log_redaction.install(app)
    init_sentry(app)


# --- Sentry ---------------------------------------------------------------------------------------

def scrub_event(event: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    """Sentry's ``before_send``: keep what finds the bug, drop what could hold personal data."""
    request_data = event.get("request") or {}
    event["request"] = {"method": request_data.get("method")} if request_data.get("method") else {}
    event.pop("user", None)
    event.pop("extra", None)
    event.pop("server_name", None)  # the host is in the release and deployment, not per event
    for exception in (event.get("exception") or {}).get("values") or []:
        if exception.get("value"):
            exception["value"] = REMOVED
        for frame in (exception.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    for thread in (event.get("threads") or {}).get("values") or []:
        for frame in (thread.get("stacktrace") or {}).get("frames") or []:
            frame.pop("vars", None)
    # A log record's template stays (our messages name no one); its arguments and the text made from them go.
    logentry = event.get("logentry")
    if isinstance(logentry, dict):
        logentry.pop("params", None)
        logentry.pop("formatted", None)
    if isinstance(event.get("message"), str):
        event["message"] = logentry.get("message", REMOVED) if isinstance(logentry, dict) else REMOVED
    if has_request_context():
        event.setdefault("tags", {})["request_id"] = request_id()
    breadcrumbs = event.get("breadcrumbs")
    for crumb in (breadcrumbs.get("values") if isinstance(breadcrumbs, dict) else breadcrumbs) or []:
        crumb.pop("data", None)
    return event


def scrub_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any] | None = None) -> dict[str, Any]:
    crumb.pop("data", None)  # HTTP breadcrumbs carry URLs, SQL ones statements
    return crumb


def init_sentry(app: Flask, transport: Any = None) -> bool:
    """Start sentry-sdk when ``SENTRY_DSN`` is set; return whether it was started."""
    dsn = app.config.get("SENTRY_DSN")
    if not dsn:
        return False
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    options: dict[str, Any] = {
        "dsn": dsn,
        "environment": app.config.get("SENTRY_ENVIRONMENT") or app.config["ENV_NAME"],
        "integrations": [FlaskIntegration(transaction_style="endpoint")],
        "include_local_variables": False,
        "max_request_body_size": "never",
        "before_send": scrub_event,
        "before_breadcrumb": scrub_breadcrumb,
        "traces_sample_rate": 0.0,
    }
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(**options)
    return True
