"""Forms for a recipient's secure link: shape only (``intake.records.recipient`` decides).

Staff send the link (the recipient's e-mail, how the code reaches them, the consent read beside the
request), withdraw it or send a new one; the recipient types the access code. Choice fields skip
WTForms' own choice check so that a forged value gets our message."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import BooleanField, RadioField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from intake.forms import strip
from intake.records.queue_forms import VersionedForm
from intake.records.recipient import CHANNEL_LABELS, EMAIL_MAX


class SendLinkForm(VersionedForm):
    email = StringField("Recipient's e-mail address (as on the consent, or confirmed with the recipient by "
                        "telephone)", filters=[strip],
                        validators=[DataRequired("Enter the recipient's e-mail address, like name@example.org."),
                                    Length(max=EMAIL_MAX, message="That address is too long.")],
                        render_kw={"autocomplete": "off", "maxlength": EMAIL_MAX, "type": "email"})
    code_channel = RadioField("How does the access code reach the recipient?", validate_choice=False,
                              validators=[DataRequired("Choose how the access code reaches the recipient.")])
    consent_confirmed = BooleanField("I read the consent beside this request: same patient, recipient and "
                                     "purpose, and the consent covers the records sent.")


class ResendLinkForm(VersionedForm):
    code_channel = RadioField("How does the new access code reach the recipient?", validate_choice=False,
                              validators=[DataRequired("Choose how the access code reaches the recipient.")])


class RevokeLinkForm(VersionedForm):
    """Withdraw one link (named by the URL)."""


class AccessCodeForm(FlaskForm):
    code = StringField(_l("Access code"), filters=[strip],
                       validators=[DataRequired(_l("Enter the access code the records office gave you.")),
                                   Length(max=32, message=_l("Enter the access code the records office gave you."))],
                       render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false",
                                  "maxlength": 32})


def _channels(form: SendLinkForm | ResendLinkForm) -> None:
    form.code_channel.choices = [SelectChoice(code.value, label) for code, label in CHANNEL_LABELS.items()]


def send_link_form(version: int | None = None, posted: bool = False) -> SendLinkForm:
    form = SendLinkForm(prefix="recipient") if posted else SendLinkForm(prefix="recipient", formdata=None,
                                                                        version=version, code_channel="phone")
    _channels(form)
    return form


def resend_link_form(version: int | None = None, posted: bool = False) -> ResendLinkForm:
    form = ResendLinkForm(prefix="resend") if posted else ResendLinkForm(prefix="resend", formdata=None,
                                                                         version=version, code_channel="phone")
    _channels(form)
    return form
