"""One way to write an e-mail: ``send_mail(template, to, **context)``.

Each e-mail is a text template, ``templates/email/<template>.txt``: its first paragraph is the
subject (one line), the rest is the body. The template is rendered in the recipient's language
(``recipient_locale``: the account's choice, whoever caused the e-mail) and queued in the caller's
transaction (``queue_email``). ``facility`` is always in the context. E-mails never carry health
information or a name: they say "sign in to read it" (``queue_email``'s rule).
"""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from flask import current_app

from intake.i18n import recipient_locale
from intake.notify.models import OutboxMessage
from intake.notify.services import queue_email


class MailTemplateError(ValueError):
    """A mail template without its subject line, or with a subject of several lines."""


def compose(template: str, **context: Any) -> tuple[str, str]:
    """(subject, body) of ``templates/email/<template>.txt`` in the language in force now."""
    text = current_app.jinja_env.get_template(f"email/{template}.txt").render(
        facility=current_app.config["FACILITY_NAME"], **context)
    subject, separator, body = text.strip("\n").partition("\n\n")
    if not separator or not subject.strip() or "\n" in subject:
        raise MailTemplateError(f"email/{template}.txt: the first paragraph must be the subject, one line")
    return subject.strip(), body.strip("\n") + "\n"


def send_mail(template: str, to: Any, *, kind: str | None = None, **context: Any) -> OutboxMessage:
    """Queue the e-mail ``template`` to ``to``: an account (written in its language) or an address
    (written in the language in force: the reader's during a request, else the default).
    ``kind`` names the message in the outbox (the template's name unless given)."""
    address = to if isinstance(to, str) else str(to.email)
    with nullcontext() if isinstance(to, str) else recipient_locale(to):
        subject, body = compose(template, **context)
    return queue_email(address, kind or template, subject, body)
