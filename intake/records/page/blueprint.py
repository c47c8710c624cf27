"""The records request page's two blueprints: the staff queue (``request_queue``, /queue/requests)
and the requester's portal (``my_requests``, /my/requests).

One request is one page for each side; its parts (documents, fees and letters, consent,
professionals, paper entry, a third party's secure link) are route modules of this package that
register on these two blueprints and compose the page from the public helpers of ``staff`` and
``portal``.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, request
from flask_login import current_user

from intake.records import documents

queue_bp = Blueprint("request_queue", __name__, url_prefix="/queue/requests")
portal_bp = Blueprint("my_requests", __name__, url_prefix="/my/requests")

# Routes that accept a file. Their body limit is the upload limit plus room for the form's other
# fields; every other route keeps the app's default (MAX_CONTENT_LENGTH).
UPLOAD_ENDPOINTS = frozenset({"my_requests.upload", "request_queue.upload", "request_queue.new",
                              "request_queue.record_decision"})
FORM_OVERHEAD = 64 * 1024


def _upload_limit(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Raise the body limit on the upload routes only. A URL value preprocessor runs before every
    ``before_request`` function, so before the CSRF check parses the form."""
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = documents.upload_limit() + FORM_OVERHEAD


def actor() -> Any:
    """The signed-in person making the change (the object, not Flask-Login's proxy): the one the
    services are given, on either side of the page."""
    return current_user._get_current_object()


queue_bp.url_value_preprocessor(_upload_limit)
portal_bp.url_value_preprocessor(_upload_limit)
