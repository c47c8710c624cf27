"""Forms for documents and delivery: shape only. What a file is (by its content), how large it
may be, who may send which kind, and whether a release or a delivery is possible are decided by
``intake.records.documents`` and ``intake.records.services``.

Choice fields skip WTForms' own choice check so that a forged value gets our message; staff forms
carry the version of the request the page was drawn with.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, RadioField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from intake.forms import strip
from intake.records.common import TEXT_MAX
from intake.records.labels import DELIVERY_METHOD_LABELS, FILE_KIND_LABELS
from intake.records.models import DeliveryMethod, FileKind
from intake.records.queue_forms import VersionedForm

REQUESTER_CHOICES = (FileKind.PHOTO_ID, FileKind.PROOF_OF_AUTHORITY, FileKind.REQUESTER_OTHER)
STAFF_CHOICES = (FileKind.RELEASED_RECORD, FileKind.INTERNAL)
ACCEPT = "application/pdf,image/png,image/jpeg,.pdf,.png,.jpg,.jpeg"


def _choices(kinds: tuple[FileKind, ...]) -> list[SelectChoice]:
    return [SelectChoice(kind.value, FILE_KIND_LABELS[kind]) for kind in kinds]


class _Upload:
    kind = RadioField(_l("What is this document?"), validate_choice=False,
                      validators=[DataRequired(_l("Choose what kind of document this is."))])
    file = FileField(_l("File (PDF, PNG or JPEG)"), render_kw={"accept": ACCEPT})


class RequesterUploadForm(_Upload, FlaskForm):
    """The requester sends a photo ID, proof of authority, or a document the office asked for."""


class StaffUploadForm(_Upload, VersionedForm):
    """Staff add released records or internal working papers."""


def requester_upload_form(posted: bool = False) -> RequesterUploadForm:
    kwargs = {} if posted else {"formdata": None}
    form = RequesterUploadForm(prefix="upload", **kwargs)
    form.kind.choices = _choices(REQUESTER_CHOICES)
    return form


def staff_upload_form(version: int | None = None, posted: bool = False) -> StaffUploadForm:
    kwargs = {} if posted else {"formdata": None, "version": version}
    form = StaffUploadForm(prefix="upload", **kwargs)
    form.kind.choices = _choices(STAFF_CHOICES)
    return form


class DocumentActionForm(VersionedForm):
    """Release or withdraw one document (the document is named by the URL). Drawn once per
    document, so the page writes its two hidden inputs itself (no repeated element ids)."""


class DeliveryForm(VersionedForm):
    method = RadioField(_l("How were the records delivered?"), validate_choice=False,
                        validators=[DataRequired(_l("Choose how the records were delivered."))])
    # A release to a third party: staff read the consent beside the request (42 CFR 2.31).
    consent_confirmed = BooleanField(_l("I read the consent beside this request: same patient, recipient and "
                                        "purpose, and the consent covers the records sent."))
    note = TextAreaField(_l("Note (optional): tracking number, who picked them up; staff only"), filters=[strip],
                         validators=[Optional(), Length(max=TEXT_MAX, message=_l(
                             "Please keep this under %(n)d characters.", n=TEXT_MAX))],
                         render_kw={"rows": 2, "maxlength": TEXT_MAX})


def delivery_form(version: int | None = None, posted: bool = False) -> DeliveryForm:
    kwargs = {} if posted else {"formdata": None, "version": version}
    form = DeliveryForm(prefix="delivery", **kwargs)
    # A secure link to the recipient is sent from its own form (``recipient_forms``), which makes the link.
    form.method.choices = [SelectChoice(code.value, label) for code, label in DELIVERY_METHOD_LABELS.items()
                           if code != DeliveryMethod.RECIPIENT_LINK]
    return form

