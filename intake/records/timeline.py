"""A request's timeline in the reader's language.

A timeline entry stores what happened as a code (``EventCode``) with its parameters, never as
text: the staff page and the requester's page word it when they are drawn, each in its reader's
language, through ``describe``. So a Spanish requester never reads an English line between Spanish
ones because staff caused it, and staff read English (their pages are English only). What a
person typed (a message, a note, the reason given for an extension) stays as typed.

Parameters hold coded values (a file kind, a fee basis, a delivery method, a denial reason, an ISO
date, an amount in cents) worded at read time, and text a person typed (a reason, a recipient's or
a custodian's name): they are stored encrypted (``RequestEvent.params``).

Entries written before revision 0015 have no code: their text stays in ``body``, in the language it
was written in, and is shown as written (``docs/records-office.md``).

Letters are the exception: a letter is a document sent on a day in one language, so it keeps that
language and the page says which (``letter_language``).

To add a code: ``docs/development.md``, "Adding a timeline event code".
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from flask import Flask, current_app
from flask_babel import force_locale, format_date
from flask_babel import lazy_gettext as _l

from intake.i18n import current_language, format_money, supported
from intake.records import consents, letters
from intake.records.labels import (
    DELIVERY_METHOD_LABELS,
    FEE_BASIS_LABELS,
    FILE_KIND_LABELS,
    REVIEW_OUTCOME_LABELS,
)
from intake.records.models import (
    DeliveryMethod,
    EventCode,
    FeeBasis,
    FileKind,
    NoRecordsReason,
    RequestEvent,
    RequestStatus,
)
from intake.records.request_page import WITHDRAW_REASON_LABELS
from intake.records.workflow import WithdrawReason

Format = Callable[[Any], Any]


def _file_kind(value: Any) -> str:
    return str(FILE_KIND_LABELS[FileKind(value)])


def _fee_basis(value: Any) -> str:
    return str(FEE_BASIS_LABELS[FeeBasis(value)])


def _method(value: Any) -> str:
    return str(DELIVERY_METHOD_LABELS[DeliveryMethod(value)])


def _money(value: Any) -> str:
    return format_money(int(value))


def _withdraw_reason(value: Any) -> str:
    return str(WITHDRAW_REASON_LABELS[WithdrawReason(value)])


def _day(value: Any) -> str:
    return format_date(date.fromisoformat(str(value)))


@dataclass(frozen=True)
class Wording:
    """A code's words: a ``lazy_gettext`` text with ``%(name)s`` placeholders, and how each stored
    parameter is worded first (a code becomes its label in the reader's language)."""

    text: Any
    formats: Mapping[str, Format] = field(default_factory=dict)

    def render(self, params: Mapping[str, Any]) -> str:
        values = {name: self.formats.get(name, _as_is)(value) for name, value in params.items()}
        return str(self.text) % values


def _as_is(value: Any) -> Any:
    return value


# The codes worded by one text each. The English texts are the ones the code wrote before 0015, so
# their Spanish translations are the ones requesters already read.
CATALOGUE: dict[EventCode, Wording] = {
    EventCode.DOCUMENT_FROM_REQUESTER: Wording(_l("You sent us a document: %(kind)s."), {"kind": _file_kind}),
    EventCode.DOCUMENT_ADDED: Wording(_l("Document added: %(kind)s."), {"kind": _file_kind}),
    EventCode.DOCUMENT_RELEASED: Wording(
        _l("A document is ready for you to download from this page: %(kind)s. The link works for %(days)d days "
           "and %(n)d downloads."), {"kind": _file_kind, "days": int, "n": int}),
    EventCode.DOCUMENT_REVOKED: Wording(_l("A document is no longer available for download: %(kind)s."),
                                        {"kind": _file_kind}),
    EventCode.FEE_ESTIMATE: Wording(
        _l("Cost estimate: %(total)s (%(basis)s). We never hold back your records because a bill is unpaid."),
        {"total": _money, "basis": _fee_basis}),
    EventCode.PROFESSIONAL_DENIAL: Wording(
        _l("An outside licensed professional's decision on clinical grounds was recorded.")),
    EventCode.PROFESSIONAL_REVIEW: Wording(_l("The outside licensed professional's review was recorded.")),
    EventCode.PROFESSIONAL_DESIGNATED: Wording(
        _l("A licensed professional was designated to receive the records (Health & Safety Code §123115(b)).")),
    EventCode.CONSENT_SIGNED: Wording(_l("The requester signed a consent to disclose online.")),
    EventCode.CONSENT_PAPER: Wording(_l("A consent received on paper was entered.")),
    EventCode.CONSENT_REVOKED_ONLINE: Wording(_l("The requester revoked the consent to disclose.")),
    EventCode.CONSENT_REVOKED_IN_WRITING: Wording(
        _l("A revocation of the consent received in writing was recorded.")),
    EventCode.ACCOUNT_LINKED: Wording(_l("A requester's account was linked.")),
    # ``reason`` is the staff's words, as typed (45 CFR §164.524(b)(2)(iii): the requester reads it).
    EventCode.EXTENDED: Wording(
        _l("We need more time to complete your request. Reason: %(reason)s\n\nWe will complete it by %(day)s."),
        {"day": _day}),
    EventCode.ANSWERED_WITH_DOCUMENT: Wording(_l("My answer is the document I sent: %(kind)s."),
                                              {"kind": _file_kind}),
    EventCode.WITHDRAW_REASON: Wording(_l("Reason for withdrawing the request: %(reason)s."),
                                       {"reason": _withdraw_reason}),
    EventCode.FEE_ACCEPTED: Wording(_l("You accepted the cost estimate of %(total)s."), {"total": _money}),
    EventCode.FEE_DECLINED: Wording(
        _l("You declined the cost estimate of %(total)s. We will write to you about the other ways to get "
           "your records."), {"total": _money}),
    EventCode.DISCLOSED: Wording(_l("The records were sent to %(recipient)s (%(how)s)."), {"how": _method}),
}

DELIVERY_TEXTS = {
    DeliveryMethod.DOWNLOAD: _l("Your records are ready to download from this page."),
    DeliveryMethod.MAIL: _l("Your records were sent by post."),
    DeliveryMethod.PICKUP: _l("Your records were picked up."),
    DeliveryMethod.INSPECTION: _l("You inspected your records in person."),
    DeliveryMethod.FAX: _l("Your records were sent by fax."),
    DeliveryMethod.RECIPIENT_LINK: _l("A secure link to your records was sent by e-mail."),
}


def _delivered(params: Mapping[str, Any]) -> str:
    return str(DELIVERY_TEXTS[DeliveryMethod(params["method"])])


def _no_records(params: Mapping[str, Any]) -> str:
    return letters.no_records_letter(NoRecordsReason(params["reason"]), params.get("custodian"))


def _denied(params: Mapping[str, Any]) -> str:
    return letters.decision_letter(RequestStatus.DENIED, params["reason"])


def _partial(params: Mapping[str, Any]) -> str:
    return letters.decision_letter(RequestStatus.PARTIALLY_FULFILLED, params["reason"])


def _review_decided(params: Mapping[str, Any]) -> str:
    return str(REVIEW_OUTCOME_LABELS[params["outcome"]]) + "."


# The codes whose words depend on a parameter (a choice of texts, a letter's paragraphs): the same
# functions the letters use, called in the reader's language.
COMPOSED: dict[EventCode, Callable[[Mapping[str, Any]], str]] = {
    EventCode.DELIVERED: _delivered,
    EventCode.NO_RECORDS: _no_records,
    EventCode.DENIED: _denied,
    EventCode.PARTIAL: _partial,
    EventCode.REVIEW_DECIDED: _review_decided,
}


@dataclass(frozen=True)
class EventText:
    """What one timeline entry says to one reader: ``text`` in their language (None for an entry
    that says nothing beyond its kind), ``body`` as a person typed it (or, for an entry from before
    0015, as it was written)."""

    text: str | None
    body: str | None

    @property
    def full(self) -> str | None:
        """Both, the system's words first (what a plain-text copy of the entry says)."""
        return "\n\n".join(part for part in (self.text, self.body) if part) or None


def decode_params(stored: str | None) -> dict[str, Any]:
    """The parameters ``common.add_event`` stored (JSON in an encrypted column)."""
    if not stored:
        return {}
    try:
        value = json.loads(stored)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def wording(code: str, params: Mapping[str, Any]) -> str:
    """The words for ``code`` in the language in force now; ``KeyError``/``ValueError`` when the
    code or a parameter is unknown."""
    event_code = EventCode(code)
    if event_code in COMPOSED:
        return COMPOSED[event_code](params)
    return CATALOGUE[event_code].render(params)


def describe(event: RequestEvent, locale: str) -> EventText:
    """What ``event`` says, worded in ``locale`` (the reader's language). Pure: it reads only the
    event (and the facility's name from the settings, for a decision's complaint paragraph)."""
    if event.code is None:
        return EventText(None, event.body)
    code = supported(locale) or current_app.config["BABEL_DEFAULT_LOCALE"]
    with force_locale(code):
        try:
            text = wording(event.code, decode_params(event.params))
        except (KeyError, ValueError, TypeError):
            # A code or parameter this version does not know (written by a newer one): say nothing
            # rather than a wrong or half-English line; the entry's kind still shows.
            current_app.logger.warning("timeline: cannot word event code %r", event.code)
            text = None
    return EventText(text, event.body)


def describe_all(events: Iterable[RequestEvent], locale: str) -> list[tuple[RequestEvent, EventText]]:
    return [(event, describe(event, locale)) for event in events]


def describe_for_reader(event: RequestEvent) -> EventText:
    """``describe`` in the language of the page being drawn (the template global the shared
    timeline partial, ``templates/records/_timeline.html``, calls)."""
    return describe(event, current_language())


LETTER_LANGUAGES = {
    "en": _l("Letter sent in English"),
    "es": _l("Letter sent in Spanish"),
}


def init_app(app: Flask) -> None:
    app.jinja_env.globals.update(describe_event=describe_for_reader, letter_language=letter_language,
                                 disclosure_words=consents.disclosure_words)


def letter_language(code: str | None) -> str | None:
    """The words saying which language a letter was sent in (None when not known: an upload, or a
    letter stored before 0015)."""
    label = LETTER_LANGUAGES.get(code or "")
    return None if label is None else str(label)
