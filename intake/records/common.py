"""What every records-request module shares: limits, errors, the timeline entry, the notice to
the requester, the version check and the words for a move that is not possible. It depends on
no other records module but the models, labels and workflow, so each of them can build on it."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from flask import current_app
from flask_babel import force_locale
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm.exc import StaleDataError

from intake.audit.models import AuditEvent
from intake.extensions import db
from intake.i18n import recipient_locale, supported
from intake.notify.mail import send_mail
from intake.notify.services import public_url
from intake.records.models import EventCode, EventKind, RecordsRequest, RequestEvent, RequestStatus, Visibility
from intake.records.workflow import Email
from intake.users.models import User

NAME_MAX = 200
ADDRESS_MAX = 500
TEXT_MAX = 2_000  # details, purpose, reasons
MESSAGE_MAX = 5_000
ADDENDUM_MAX_WORDS = 250  # Health & Safety Code §123111(a): the limit is counted in words
# Only against abuse (the app-wide body limit stands behind it): 200 characters a word is no text anyone writes.
ADDENDUM_MAX_CHARS = 50_000
OBJECT_TYPE = "records_request"


class RequestInvalid(ValueError):
    """The input breaks a rule; ``errors`` maps field names to messages."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("records request input is not valid: " + ", ".join(sorted(errors)))
        self.errors = dict(errors)


class RequestRefused(PermissionError):
    """This person may not do this to this request."""


class VersionConflict(RuntimeError):
    """Someone else saved the request since this person loaded it."""


# --- Loading -----------------------------------------------------------------------------------

def owner_of(req: RecordsRequest) -> User | None:
    """The requester's account, or None for a request entered from paper with no account linked."""
    return db.session.get(User, req.owner_id) if req.owner_id is not None else None


@contextmanager
def letter_locale(req: RecordsRequest) -> Iterator[str]:
    """Write to the requester in their language: their account's choice, or, for a request entered
    from paper without an account, the language staff chose for its letters."""
    owner = owner_of(req)
    if owner is not None:
        with recipient_locale(owner) as code:
            yield code
        return
    code = supported(req.requester_language) or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(code):
        yield code


@contextmanager
def recipient_language(req: RecordsRequest) -> Iterator[str]:
    """Write to a third party (or a designated professional) in the language chosen on the request:
    English unless someone chose otherwise; never the patient's language by default."""
    code = supported(req.recipient_language) or "en"
    with force_locale(code):
        yield code


def add_event(req: RecordsRequest, kind: EventKind, visibility: Visibility, actor: Any, body: str | None = None,
              from_status: RequestStatus | None = None, to_status: RequestStatus | None = None,
              code: EventCode | None = None, params: Mapping[str, Any] | None = None) -> RequestEvent:
    """A timeline entry. What the system says is a ``code`` with its ``params`` (coded values and
    typed text, never words in the writer's language: ``intake.records.timeline`` words it for each
    reader); ``body`` is only what a person typed (a message, a note)."""
    stored = None
    if params:
        stored = json.dumps({name: value for name, value in params.items() if value is not None},
                            sort_keys=True, ensure_ascii=False)
    event = RequestEvent(request_id=req.id, kind=kind, visibility=visibility,
                         actor_id=getattr(actor, "id", None), body=body,
                         code=None if code is None else EventCode(code).value, params=stored,
                         from_status=None if from_status is None else from_status.value,
                         to_status=None if to_status is None else to_status.value)
    db.session.add(event)
    return event


def notify_requester(req: RecordsRequest, owner: User | None, kind: Email) -> None:
    """Queue the notice for the requester: the reference and a link, never what the request is about.
    One e-mail template per ``Email`` kind; the outbox kind is ``records_<kind>``."""
    owner = owner or owner_of(req)
    if owner is None or not owner.email:  # no account (a paper request): letters go by post
        return
    # templates/email/records_<kind>.txt, in the requester's language (their account's choice),
    # also when staff or a CLI job cause it; queued in the caller's transaction, sent and retried
    # by the outbox.
    send_mail(f"records_{kind.value}", owner, ref=req.human_ref,
              link=public_url("my_requests.detail", reference=req.reference))


RELEASED = "document.released"
MOVED = "request.transition"


def ready_told(req: RecordsRequest) -> bool:
    """Whether the requester was told "ready" since the request's last move: a document was released
    to them after it (each release is audited, in order, in this same transaction)."""
    last = db.session.execute(
        select(AuditEvent.action).where(AuditEvent.object_type == OBJECT_TYPE, AuditEvent.object_id == str(req.id),
                                        AuditEvent.action.in_((RELEASED, MOVED)))
        .order_by(AuditEvent.seq.desc()).limit(1)).scalar_one_or_none()
    return last == RELEASED


def check_version(req: RecordsRequest, expected: int | None) -> None:
    """Refuse a change made on a stale copy of the request."""
    if expected is not None and int(expected) != req.version:
        raise VersionConflict(req.reference)


def flush_or_conflict() -> None:
    try:
        db.session.flush()
    except StaleDataError as exc:  # saved by someone else between our read and our write
        raise VersionConflict("stale") from exc


STATUS_PROBLEMS = {
    "not_verified": lambda: _("The requester's identity has not been verified yet."),
    "not_reviewable": lambda: _("This denial's reason is not one a review can reconsider."),
    "same_reviewer": lambda: _("A denial must be reviewed by someone other than the person who made it."),
    "needs_licensed": lambda: _("A denial on clinical grounds is made by a licensed health care professional "
                                "(45 CFR 164.524(a)(3); H&S 123115(b)). Your account carries no such licence: "
                                "record the outside professional's written decision first, with the same reason."),
    "reviewer_unlicensed": lambda: _("The review is decided by a licensed health care professional who did not take "
                                     "part in the denial (45 CFR 164.524(d)(4)). Your account carries no such "
                                     "licence: record the outside professional's review, with their written "
                                     "decision, first."),
    "external_outcome": lambda: _("Record the outcome the outside professional decided."),
    "wrong_return": lambda: _("The request goes back to the step it was waiting at."),
    "not_delivered": lambda: _("Nothing has been delivered yet: release the records for download, or record "
                               "the mailing, pick-up or inspection first."),
    # A release to a third party under its consent (42 CFR §2.31; codes from ``consents.release_problem``).
    "consent_missing": lambda: _("There is no signed consent to disclose to the recipient. The requester signs one "
                                 "on their page, or enter a consent received on paper."),
    "consent_incomplete": lambda: _("The consent lacks an element 42 CFR §2.31 requires; the consent section "
                                    "lists what is missing. A new, complete consent is needed."),
    "consent_expired": lambda: _("The consent has expired. A new consent is needed before the records can be "
                                 "sent."),
    "consent_revoked": lambda: _("The requester revoked the consent. The records cannot be sent unless they sign "
                                 "a new one."),
    # The disclosure gate (``intake.records.gate``).
    "consent_mismatch": lambda: _("The consent does not match this request (42 CFR 2.31): the differences are "
                                  "named in the consent section. A consent that names this patient, recipient and "
                                  "purpose is needed."),
    "consent_unconfirmed": lambda: _("Read the consent and the request side by side and confirm that they match "
                                     "and that the consent covers the records sent (42 CFR 2.31)."),
    "to_recipient_only": lambda: _("Records for a third party go to the recipient the consent names, by post, fax "
                                   "or hand-over, with the 42 CFR 2.32 notice; not to the requester's download or "
                                   "an inspection."),
    "clinical_denial": lambda: _("A licensed professional denied access on clinical grounds (45 CFR 164.524(a)(3); "
                                 "H&S 123115(b)). The records may go only to a licensed professional the patient "
                                 "designates, unless a review overturns the denial."),
    "to_designated_only": lambda: _("The records go to the licensed professional the patient designated (by post, "
                                    "fax, hand-over or an inspection by that professional), not to the requester's "
                                    "download (H&S 123115(b))."),
    "emergency_incomplete": lambda: _("A medical-emergency disclosure is documented with every part 42 CFR 2.51(c) "
                                      "asks for: who received it and their facility, who made it, when, and the "
                                      "nature of the emergency."),
}


def blocked_reason(code: str) -> str:
    """Why a move is not available now, in words (codes from ``workflow.missing``)."""
    return STATUS_PROBLEMS[code]()


def check_length(field: str, value: str | None, limit: int) -> None:
    if value is not None and len(value) > limit:
        raise RequestInvalid({field: _("Please keep this under %(n)d characters.", n=limit)})
