"""Follow-up forms: shape only. Consent and state rules are checked by ``intake.calls.followups``.

The assignee choices are filled in by the view (forms never query the database). The page shows
four of these forms at once, two of them with an ``outcome`` and two with a ``note``: each form's
ids start with its own prefix (``#attempt-outcome``, ``#close-outcome``), the names it posts do not.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, SelectField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional

from intake.calls.followups import NOTE_MAX_LENGTH
from intake.calls.models import AttemptOutcome, FollowUpStatus
from intake.forms import PrefixedIdsForm, strip

OUTCOME_LABELS = {
    AttemptOutcome.REACHED: _l("Reached the caller"),
    AttemptOutcome.NO_ANSWER: _l("No answer"),
    AttemptOutcome.LEFT_VOICEMAIL: _l("Left a voicemail"),
    AttemptOutcome.TEXT_SENT: _l("Sent a text message"),
    AttemptOutcome.WRONG_NUMBER: _l("Wrong number"),
    AttemptOutcome.NOT_SAFE_TO_TALK: _l("Not safe to talk"),
    AttemptOutcome.DECLINED: _l("Caller declined"),
}
RESOLUTION_LABELS = {
    FollowUpStatus.DONE: _l("Done"),
    FollowUpStatus.CANCELLED: _l("Cancelled"),
}


class AssignForm(PrefixedIdsForm):
    """Give the follow-up to me or to a chosen staff member; choices come from the view."""

    id_prefix = "assign"

    assignee = SelectField(_l("Assign to"), validators=[DataRequired(_l("Choose who takes this follow-up."))])
    submit = SubmitField(_l("Assign"))


class AttemptForm(PrefixedIdsForm):
    id_prefix = "attempt"
    outcome = SelectField(
        _l("Outcome"),
        choices=[SelectChoice("", _l("Choose an outcome"))]
        + [SelectChoice(o.value, label) for o, label in OUTCOME_LABELS.items()],
        validators=[DataRequired(_l("Choose an outcome."))],
    )
    note = TextAreaField(
        _l("Note (optional)"),
        filters=[strip],
        validators=[Optional(), Length(max=NOTE_MAX_LENGTH,
                                       message=_l("Notes are at most %(max)d characters.", max=NOTE_MAX_LENGTH))],
        render_kw={"rows": 3, "maxlength": NOTE_MAX_LENGTH},
    )
    submit = SubmitField(_l("Record attempt"))


class CloseForm(PrefixedIdsForm):
    id_prefix = "close"
    resolution = SelectField(
        _l("Close as"),
        choices=[SelectChoice("", _l("Choose done or cancelled"))]
        + [SelectChoice(s.value, label) for s, label in RESOLUTION_LABELS.items()],
        validators=[DataRequired(_l("Choose done or cancelled."))],
    )
    outcome = SelectField(
        _l("Final outcome (optional)"),
        choices=[SelectChoice("", _l("No new outcome"))]
        + [SelectChoice(o.value, label) for o, label in OUTCOME_LABELS.items()],
        validators=[Optional()],
    )
    submit = SubmitField(_l("Close follow-up"))


class CallbackForm(PrefixedIdsForm):
    """Record a callback and, for an outcome that ends it, close the follow-up: one form, one press.
    The pressed button's value is the outcome (``outcome``)."""

    id_prefix = "callback"

    outcome = SelectField(_l("Outcome"), choices=[SelectChoice(o.value, label) for o, label in OUTCOME_LABELS.items()],
                          validators=[DataRequired(_l("Choose an outcome."))])
    note = TextAreaField(
        _l("Note (optional)"),
        filters=[strip],
        validators=[Optional(), Length(max=NOTE_MAX_LENGTH,
                                       message=_l("Notes are at most %(max)d characters.", max=NOTE_MAX_LENGTH))],
        render_kw={"rows": 2, "maxlength": NOTE_MAX_LENGTH},
    )
    keep_open = BooleanField(_l("Keep the follow-up open even if this outcome would close it"))
