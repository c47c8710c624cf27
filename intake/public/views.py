"""Pages anyone may read, and ``/healthz`` and ``/readyz`` for load balancers and monitors."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template
from flask_babel import get_locale
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from intake import readiness
from intake.admin.notices import ShownNotice, notices_for_today
from intake.extensions import db

bp = Blueprint("public", __name__)


def _notices() -> list[ShownNotice]:
    """The site notices showing today, in the visitor's language where one was written.

    With the database down the page still shows, without notices: the helpline number on it
    matters more than they do.
    """
    try:
        return notices_for_today(str(get_locale() or ""), str(current_app.config["FACILITY_TIMEZONE"]))
    except SQLAlchemyError:
        current_app.logger.warning("site notices unavailable: database error")
        db.session.rollback()
        return []


@bp.route("/")
def index() -> str:
    """The closure notice, the helpline number, and where to go next."""
    return render_template("public/index.html", notices=_notices())


@bp.route("/records")
def records_guide() -> str:
    """Plain-language guide to requesting a copy of one's records."""
    return render_template("public/records.html", notices=_notices())


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """Liveness: the process answers requests. Touches nothing else (a database outage must not
    make an orchestrator restart every healthy instance); readiness is ``/readyz``."""
    return jsonify(status="ok"), 200


@bp.route("/readyz")
def readyz() -> tuple[Response, int]:
    """Readiness: 200 when the database answers at the migrations' head, Redis answers (when
    configured) and the translation catalogues are compiled; 503 naming the check that failed."""
    result = readiness.check()
    return jsonify(status="ready" if result.ready else "unavailable", checks=result.checks), \
        200 if result.ready else 503
