"""Consent forms: shape only (lengths, dates, control characters). Whether the consent holds every
element 42 CFR §2.31 asks for, and whether its dates make sense, is decided by
``intake.records.consents``; the views show those messages next to the same fields.

The requester signs online (``ConsentForm``: the date signed is the server's); staff enter a consent
received on paper (``PaperConsentForm``, with the date written on it and the request's version).
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms.validators import DataRequired

from intake.records.common import ADDRESS_MAX, TEXT_MAX
from intake.records.portal_forms import IsoDateField, name_field, text_field
from intake.records.queue_forms import VersionedForm

CONSENT_FIELDS = ("patient_name", "disclosing_program", "information", "recipient_name", "recipient_address",
                  "purpose", "revocation_acknowledged", "expires_on", "expiry_event", "signed_name",
                  "signer_authority")


class ConsentForm(FlaskForm):
    """The requester's consent to disclose, signed online (every field listed; nothing else is read)."""

    # The patient is most often the person signing: their browser may fill in their name (WCAG 1.3.5).
    patient_name = name_field(_l("The patient's full name"), autocomplete="name")
    disclosing_program = name_field(_l("Who may disclose the records"))
    information = text_field(_l("How much and what kind of information may be disclosed"), TEXT_MAX)
    recipient_name = name_field(_l("Recipient: the person or organisation that will receive the records"),
                           autocomplete="off")  # someone else's: never the signer's own
    recipient_address = text_field(_l("The recipient's address"), ADDRESS_MAX, autocomplete="off")
    purpose = text_field(_l("Why the records are being disclosed (the purpose)"), TEXT_MAX)
    revocation_acknowledged = BooleanField(_l(
        "I understand that I can revoke this consent at any time, except for what has already been disclosed "
        "under it, by using “Revoke this consent” on the request's page or by writing to the records office."))
    expires_on = IsoDateField(_l("This consent ends on (date)"))
    expiry_event = text_field(_l("…or it ends when this event happens"), TEXT_MAX, rows=2)
    signed_name = name_field(_l("Signature: type your full name"), autocomplete="name")
    signer_authority = text_field(_l("If you sign for the patient: what gives you the authority (for example "
                                "power of attorney, guardianship, executor)"), TEXT_MAX, rows=2)

    def values(self) -> dict[str, Any]:
        """The typed consent, for the service."""
        return {name: getattr(self, name).data for name in CONSENT_FIELDS}


class PaperConsentForm(ConsentForm, VersionedForm):
    """A consent received on paper, entered by staff as written (gaps are recorded, and block the release)."""

    signed_on = IsoDateField(_l("Date signed (as written on the paper)"))
    # Staff type someone else's names: the browser must not offer their own.
    patient_name = name_field(_l("The patient's full name"), autocomplete="off")
    signed_name = name_field(_l("Signature: type your full name"), autocomplete="off")

    def values(self) -> dict[str, Any]:
        return {**super().values(), "signed_on": self.signed_on.data}


class RevokeForm(FlaskForm):
    """Revoke the consent in force (the box must be ticked)."""

    confirm = BooleanField(_l("I revoke my consent: do not disclose any more records under it."),
                           validators=[DataRequired(_l("Tick the box to confirm you want to revoke the consent."))])



class StaffRevokeForm(VersionedForm):
    """Staff record a revocation received in writing (the box must be ticked)."""

    confirm = BooleanField(_l("The requester revoked this consent in writing (the letter is on file)."),
                           validators=[DataRequired(_l("Tick the box to confirm the revocation."))])
