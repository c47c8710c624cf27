"""The staff form for a request received on paper, by fax, in person or after a call: shape only.

It is the requester's form (every field of it) plus when the request arrived, how, the scanned
request and the language of the letters; ``submission.entry_problems`` checks the meaning. The
receipt time is typed as the facility's wall clock and read by ``intake.clock.parse_local``.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import BooleanField, RadioField, StringField
from wtforms.fields.choices import SelectChoice

from intake.forms import email_field, strip
from intake.records.document_forms import ACCEPT
from intake.records.labels import CHANNEL_LABELS
from intake.records.models import Channel
from intake.records.portal_forms import RequestForm, name_field, one_of
from intake.records.queue_forms import VersionedForm

LANGUAGE_CHOICES = [SelectChoice("en", "English"), SelectChoice("es", "Español")]
PAPER = [c for c in Channel if c != Channel.PORTAL]


class StaffRequestForm(RequestForm):
    """A written request entered by records staff (every field listed; nothing else is read)."""

    received_at = StringField(_l("Received on (date and time, facility time)"), filters=[strip],
                              render_kw={"type": "datetime-local", "autocomplete": "off"})
    channel = RadioField(
        _l("How the request arrived"), choices=[SelectChoice(c.value, CHANNEL_LABELS[c]) for c in PAPER],
        validate_choice=False, validators=[one_of([c.value for c in PAPER], _l("Choose how the request arrived."))])
    requester_language = RadioField(
        _l("Language of the letters to the requester"), choices=LANGUAGE_CHOICES, default="en",
        validate_choice=False, validators=[one_of(("en", "es"), _l("Choose the language of the letters."))])
    scan = FileField(_l("The scanned request (PDF, PNG or JPEG)"), render_kw={"accept": ACCEPT})
    attest = BooleanField(_l("The written request is signed by the requester"))
    attestation_name = name_field(_l("The name as signed on the request"), autocomplete="off")

    def submission(self) -> dict[str, Any]:
        data = super().submission()
        for name in ("received_at", "scan"):
            data.pop(name, None)
        return data


class LinkAccountForm(VersionedForm):
    """Link the requester's account to a request entered from paper."""

    email = email_field(_l("The requester's account e-mail address"), required=_l("Enter the e-mail address."),
                        autocomplete="off", autofocus=False)
