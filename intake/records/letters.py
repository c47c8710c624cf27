"""Records requests: printable letters, rendered from templates and stored on the request.

Each letter is a self-contained HTML page (``templates/records/letters/<kind>.html``: its own
print stylesheet, no external resources, autoescaped) stored as a ``RequestDocument`` of kind
``LETTER`` that the requester can read and print from their page. Letters are never e-mailed:
the e-mail only says there is news.

The plain-language wording of denials and "no records" answers lives in
``intake.records.services`` (``decision_letter``, ``no_records_letter``) and is reused here, so the
timeline and the letter say the same thing.

Letters to the requester are in their language (their account's, or the one staff chose for a
request received on paper). The letter records travel with when they go to a third party or a
designated professional (``disclosure``) is in the language chosen for the recipient, English by
default: it carries the 42 CFR §2.32 statement in force (``consents.notice_in_force``) with the
consent's scope (§2.32(b)), and the addenda accepted for the record (H&S 123111(b)).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import current_app
from flask_babel import format_date
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config import setting_lines
from intake.extensions import db
from intake.i18n import current_language, format_iso_date
from intake.records import common, consents, deadlines, professionals
from intake.records.labels import (
    DELIVERY_METHOD_LABELS,
    DENIAL_LABELS,
    KIND_LABELS,
    PARTIAL_LABELS,
    SCOPE_LABELS,
    TYPE_LABELS,
)
from intake.records.models import (
    FileKind,
    NoRecordsReason,
    RecordsRequest,
    RequestDocument,
    RequestStatus,
    RequestType,
    Scope,
    Visibility,
)
from intake.records.workflow import REVIEWABLE_REASONS

CONTENT_TYPE = "text/html; charset=utf-8"

TITLES = {
    "acknowledgment": _l("We received your request"),
    "extension": _l("Notice: we need more time"),
    "information_request": _l("We need more information"),
    "denial": _l("Our decision on your request"),
    "no_records": _l("We do not hold these records"),
    "fulfilment": _l("Your records"),
    "disclosure": _l("Records sent to you"),
}
KINDS = frozenset(TITLES)

# Which letter a move of the workflow leaves on the request.
TRANSITION_LETTERS = {
    RequestStatus.AWAITING_REQUESTER: "information_request",
    RequestStatus.DENIED: "denial",
    RequestStatus.NO_RECORDS: "no_records",
    RequestStatus.FULFILLED: "fulfilment",
    RequestStatus.PARTIALLY_FULFILLED: "fulfilment",
}

class UnknownLetter(ValueError):
    """There is no letter of that kind."""


def _paragraphs(text: str | None) -> list[str]:
    """Text split at blank lines (each paragraph's own line breaks are kept by the template)."""
    return [part.strip() for part in (text or "").split("\n\n") if part.strip()]


def _lines(text: str | None) -> list[str]:
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def _long(day: date) -> str:
    return format_date(day, "long")


def _scope(req: RecordsRequest) -> str:
    label = str(SCOPE_LABELS[req.scope])
    if req.scope == Scope.DATES:
        return f"{label}: {format_iso_date(req.scope_from) or '…'} – {format_iso_date(req.scope_to) or '…'}"
    if req.scope == Scope.KINDS:
        return f"{label}: " + ", ".join(str(KIND_LABELS.get(k, k)) for k in req.kinds)
    return label


def _released_names(req: RecordsRequest) -> list[str]:
    docs = db.session.execute(select(RequestDocument).where(
        RequestDocument.request_id == req.id, RequestDocument.kind == FileKind.RELEASED_RECORD,
        RequestDocument.released_at.is_not(None), RequestDocument.revoked_at.is_(None))
        .order_by(RequestDocument.id)).scalars()
    return [doc.filename for doc in docs]


def _facts(kind: str, req: RecordsRequest, context: dict[str, Any]) -> dict[str, Any]:
    """What each kind of letter says beyond the letterhead."""
    if kind == "acknowledgment":
        return {"asked": str(TYPE_LABELS[req.request_type]), "scope": _scope(req),
                "received_on": _long(deadlines.facility_day(req.received_at)), "due_on": _long(req.due_on),
                "rule_lines": [str(line) for line in deadlines.explain_due(req)],
                "has_account": req.owner_id is not None}
    if kind == "extension":
        return {"reason": _paragraphs(context.get("reason") or req.extension_reason),
                "due_on": _long(req.due_on), "days": req.extended_days, "has_account": req.owner_id is not None}
    if kind == "information_request":
        return {"message": _paragraphs(context.get("message")), "due_on": _long(req.due_on),
                "has_account": req.owner_id is not None}
    if kind == "denial":
        text = decision_letter(RequestStatus.DENIED, req.decision_reason)
        return {"text": _paragraphs(text)}
    if kind == "no_records":
        if req.no_records_reason is None:
            raise ValueError("a no-records letter needs the request's no-records reason")
        return {"text": _paragraphs(no_records_letter(req.no_records_reason, req.no_records_custodian))}
    if kind == "disclosure":
        return _disclosure_facts(req, context)
    # fulfilment
    partial = None
    if req.status == RequestStatus.PARTIALLY_FULFILLED and req.decision_reason:
        partial = _paragraphs(decision_letter(RequestStatus.PARTIALLY_FULFILLED, req.decision_reason))
    third_party = req.request_type == RequestType.THIRD_PARTY
    recipient = context.get("recipient") or (req.recipient_name if third_party else None)
    if recipient is None and professionals.clinical_denial_stands(req):
        designated = professionals.designated(req)
        recipient = designated.name if designated is not None else None
    return {"method": str(DELIVERY_METHOD_LABELS[req.delivery_method]) if req.delivery_method else None,
            "delivered_on": _long(deadlines.facility_day(req.delivered_at)) if req.delivered_at else None,
            "enclosed": _released_names(req), "partial": partial, "third_party": third_party,
            "sent_to": recipient}


def _disclosure_facts(req: RecordsRequest, context: dict[str, Any]) -> dict[str, Any]:
    """The letter the records travel with: what is enclosed, the §2.32 statement and the consent's
    scope (a consent disclosure), and every addendum accepted for the record (H&S 123111(b))."""
    disclosure = context["disclosure"]
    consent = context.get("consent")
    notice = context.get("notice")
    scope = None
    if consent is not None:
        expiry = " · ".join(part for part in (
            _long(consent.expires_on) if consent.expires_on else None, consent.expiry_event) if part)
        scope = [(str(consents.ELEMENT_LABELS["patient_name"]), consent.patient_name),
                 (str(consents.ELEMENT_LABELS["disclosing_program"]), consent.disclosing_program),
                 (str(consents.ELEMENT_LABELS["information"]), consent.information),
                 (str(consents.ELEMENT_LABELS["recipient_name"]), consent.recipient_name),
                 (str(consents.ELEMENT_LABELS["purpose"]), consent.purpose),
                 (str(consents.ELEMENT_LABELS["expiry"]), expiry),
                 (str(consents.ELEMENT_LABELS["signed_on"]),
                  _long(consent.signed_on) if consent.signed_on else None)]
    return {"designated": consent is None, "description": disclosure.description,
            "enclosed": _released_names(req),
            "method": str(DELIVERY_METHOD_LABELS.get(disclosure.channel, disclosure.channel)),
            "notice_lines": consents.notice_text(notice, current_language()) if notice is not None else [],
            "notice_citation": notice.citation if notice is not None else None, "scope": scope,
            "addenda": [(_long(deadlines.facility_day(a.received_at)), _paragraphs(a.addendum_text))
                        for a in context.get("addenda") or []]}


def privacy_contact(config: Any) -> dict[str, str | None] | None:
    """The privacy contact every letter names (settings ``PRIVACY_CONTACT_*``; the e-mail falls back
    to ``PRIVACY_OFFICER_EMAIL``), or None when none of it is set."""
    contact = {"name": config.get("PRIVACY_CONTACT_NAME"), "title": config.get("PRIVACY_CONTACT_TITLE"),
               "phone": config.get("PRIVACY_CONTACT_PHONE"),
               "email": config.get("PRIVACY_CONTACT_EMAIL") or config.get("PRIVACY_OFFICER_EMAIL")}
    if contact["title"] and contact["title"] == contact["name"]:
        contact["title"] = None  # a role title given as the name: said once
    return contact if any(contact.values()) else None


def inspection(config: Any) -> dict[str, Any]:
    """Where and how an inspection happens, for a facility whose building is gone: the settings'
    address and appointment instructions, or (``arranged`` false) the statement that it is
    arranged by appointment or replaced by a secure electronic copy (``flask security-check`` warns)."""
    address = setting_lines(config.get("INSPECTION_ADDRESS"))
    instructions = _paragraphs(str(config.get("INSPECTION_INSTRUCTIONS") or "").replace("\\n", "\n"))
    return {"address_lines": address, "instructions": instructions, "arranged": bool(address and instructions)}


def _about_inspection(kind: str, req: RecordsRequest) -> bool:
    """The letters that tell a requester who asked to inspect where and how: the acknowledgment,
    a request for information and a notice of more time (the fulfilment comes after it happened)."""
    return req.request_type == RequestType.INSPECTION and kind in ("acknowledgment", "information_request",
                                                                   "extension")


def render_letter(kind: str, req: RecordsRequest, **context: Any) -> str:
    """The letter as a complete, printable HTML page, in the language of the requester who made
    the request (also when staff or a CLI job cause it). ``context`` carries what only the caller
    knows (``message`` for a request for information, ``reason`` for an extension)."""
    if kind not in KINDS:
        raise UnknownLetter(kind)
    locale = common.recipient_language(req) if kind == "disclosure" else common.letter_locale(req)
    with locale:
        return _render_letter(kind, req, context)


def _render_letter(kind: str, req: RecordsRequest, context: dict[str, Any]) -> str:
    config = current_app.config
    if kind == "disclosure":
        disclosure = context["disclosure"]
        addressee, address = disclosure.recipient_name, disclosure.recipient_address
    else:
        addressee, address = req.requester_name or req.patient_name, req.mail_address
    values = {
        "kind": kind, "lang": current_language(), "title": str(TITLES[kind]), "facility": config["FACILITY_NAME"],
        "records_email": config.get("RECORDS_EMAIL"), "helpline": config.get("HELPLINE_NUMBER"),
        "return_lines": setting_lines(config.get("FACILITY_RETURN_ADDRESS")), "privacy": privacy_contact(config),
        "letter_date": _long(deadlines.today()), "human_ref": req.human_ref, "patient_name": req.patient_name,
        "addressee": addressee, "address_lines": _lines(address), "requester_name": req.requester_name,
        "inspection": inspection(config) if _about_inspection(kind, req) else None,
        **_facts(kind, req, context),
    }
    template = current_app.jinja_env.get_template(f"records/letters/{kind}.html")
    return template.render(**values)


def store_letter(req: RecordsRequest, kind: str, actor: Any, visibility: Visibility = Visibility.REQUESTER,
                 **context: Any) -> RequestDocument:
    """Render the letter and keep it on the request to read and print (the requester's letters on
    their page; the letter records travel with stays with staff, who print and enclose it)."""
    # Imported here: documents builds on services, and services calls this module.
    from intake.records.documents import store_document

    html = render_letter(kind, req, **context)
    filename = f"{kind}-{req.human_ref}-{deadlines.today().isoformat()}.html"
    doc = store_document(req, FileKind.LETTER, filename, html.encode("utf-8"), actor, visibility,
                         content_type=CONTENT_TYPE)
    doc.language = letter_language_of(kind, req)  # a letter keeps the language it was sent in
    return doc


def letter_language_of(kind: str, req: RecordsRequest) -> str:
    """The language ``render_letter`` writes the letter ``kind`` in, for this request."""
    with common.recipient_language(req) if kind == "disclosure" else common.letter_locale(req) as code:
        return code


def store_transition_letter(req: RecordsRequest, target: RequestStatus, actor: Any,
                            message: str | None = None, recipient: str | None = None) -> RequestDocument | None:
    """The letter a move leaves on the request, if it leaves one (called by ``services.transition``
    once the request holds the move's facts)."""
    kind = TRANSITION_LETTERS.get(target)
    if kind is None:
        return None
    return store_letter(req, kind, actor, message=message, recipient=recipient)


def kind_of(doc: RequestDocument) -> str | None:
    """The kind of a stored letter, from its file name ("acknowledgment-RR-...html"), if known."""
    kind = (doc.filename or "").split("-", 1)[0]
    return kind if kind in KINDS else None


def title_of(doc: RequestDocument) -> str | None:
    """The title of a stored letter, from the kind its file name starts with."""
    kind = kind_of(doc)
    return str(TITLES[kind]) if kind is not None else None


def no_records_letter(reason: NoRecordsReason, custodian: str | None) -> str:
    """What the requester reads when there is nothing to release, and where to turn instead."""
    if reason == NoRecordsReason.HELD_ELSEWHERE:
        return _("We do not hold these records. They are held by %(custodian)s; please send your request "
                 "to them.", custodian=custodian)
    if reason == NoRecordsReason.DESTROYED:
        return _("We no longer have these records: they were destroyed, either in the fire that closed the "
                 "facility or at the end of the period the law requires records to be kept.")
    return _("We could not find records for the person named in this request. If you think we should have "
             "them, reply with any other names or dates that might help, or start a new request.")


def decision_letter(target: RequestStatus, reason: str | None) -> str:
    """The plain-language part of a denial or partial release the requester reads: the reason,
    the right to a review where the law gives one, and how to complain."""
    facility = current_app.config["FACILITY_NAME"]
    if reason is None:
        raise ValueError("a denial or a partial release states its reason (workflow.TRANSITIONS requires one)")
    if target == RequestStatus.PARTIALLY_FULFILLED:
        return _("We could provide only part of the records. %(reason)s", reason=PARTIAL_LABELS[reason])
    lines = [_("We cannot provide the records you asked for. %(reason)s", reason=DENIAL_LABELS[reason])]
    if reason in REVIEWABLE_REASONS:
        lines.append(_("You have the right to have this decision reviewed by a licensed health professional who "
                       "did not take part in it. To ask for a review, write to us quoting your request's reference "
                       "or, if you have an account, ask for it on your request's page in the records portal."))
    lines.append(_("If you believe your rights have been violated, you can complain to %(facility)s's privacy "
                   "officer, and to the U.S. Department of Health and Human Services, Office for Civil Rights "
                   "(hhs.gov/ocr/complaints). We will not hold a complaint against you.", facility=facility))
    return "\n\n".join(str(line) for line in lines)
