"""Pages anyone may read, and ``/healthz`` for load balancers and monitors."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify, render_template
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.wrappers import Response

from intake.extensions import db

bp = Blueprint("public", __name__)


@bp.route("/")
def index() -> str:
    """The closure notice, the helpline number, and where to go next."""
    return render_template("public/index.html")


@bp.route("/records")
def records_guide() -> str:
    """Plain-language guide to requesting a copy of one's records."""
    return render_template("public/records.html")


@bp.route("/healthz")
def healthz() -> tuple[Response, int]:
    """200 when the database answers a trivial query, 503 when it does not."""
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        current_app.logger.warning("health check: database unavailable")
        db.session.rollback()
        return jsonify(status="unavailable", database="down"), 503
    return jsonify(status="ok", database="up"), 200
