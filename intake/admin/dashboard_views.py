"""``/admin/dashboard``: calls and records requests in figures, for a range of the facility's days.

The only inputs are two dates (GET). Bad input answers 400 with the reason next to the form and
no figures: a reversed or too long range, an unreadable date, or any other parameter (the page
has no other filter, and silently ignoring one would show figures the viewer did not ask for).

Viewing is not audited: the page holds counts over coded fields only, never a call, a request or
a person, so there is nothing confidential whose viewing the trail must record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flask import Blueprint, current_app, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from intake.admin.dashboard import Dashboard, build_dashboard, requests_due
from intake.admin.export_views import RangeForm, day_field
from intake.admin.exports import MAX_DAYS, DateRange, ExportRangeError, check_range, default_range
from intake.calls import escalation
from intake.calls.forms import REFERRAL_STATUS_LABELS
from intake.calls.list_forms import CALL_TYPE_LABELS, RISK_LABELS, SUBSTANCE_LABELS
from intake.db_types import utcnow
from intake.ops.attention import attention
from intake.permissions import Permission, can, require
from intake.records import deadlines, queue
from intake.records.clocks import local_day
from intake.records.labels import STAFF_STATUS_LABELS
from intake.records.workflow import DenialReason
from intake.resources.labels import KIND_LABELS
from intake.translating import date_format

bp = Blueprint("admin_dashboard", __name__, url_prefix="/admin/dashboard")

PARAMETERS = frozenset({"date_from", "date_to"})

# Short names for the denial grounds (the letters use the long, plain-language ones).
DENIAL_SHORT: dict[str, Any] = {
    DenialReason.ENDANGERMENT: _l("Endangers someone's life or safety"),
    DenialReason.REFERENCES_OTHER_PERSON: _l("Harm to another person named"),
    DenialReason.REPRESENTATIVE_HARM: _l("Harm from access by the representative"),
    DenialReason.PSYCHOTHERAPY_NOTES: _l("Psychotherapy notes"),
    DenialReason.LEGAL_PROCEEDINGS: _l("Compiled for legal proceedings"),
    DenialReason.CONFIDENTIAL_SOURCE: _l("Confidential source"),
    DenialReason.IDENTITY_NOT_VERIFIED: _l("Identity not verified"),
    DenialReason.AUTHORITY_NOT_SHOWN: _l("Authority not shown"),
}


class DashboardForm(RangeForm):
    date_from = day_field(_l("From"), "dashboard-date-from")
    date_to = day_field(_l("To (inclusive)"), "dashboard-date-to")


@dataclass(frozen=True)
class Row:
    label: str
    value: int  # what the chart draws; the table's last column
    parts: tuple[int, ...] = ()  # the table's columns before it, when the value is a sum
    tick: str | None = None  # a shorter label under a column


@dataclass(frozen=True)
class Chart:
    """One figure: drawn as SVG and given again as a table with the same numbers."""

    key: str  # unique on the page: the ids of the SVG title and the table derive from it
    title: str
    label_header: str
    value_header: str
    rows: list[Row]
    part_headers: tuple[str, ...] = ()

    def state(self) -> tuple[Any, ...]:
        """Everything the chart's macros draw from: the chart is drawn once per state and kept
        (``kept_frame``, intake/frame.py): its SVG and table were a quarter of the page's time."""
        return (self.key, str(self.title), str(self.label_header), str(self.value_header), tuple(self.rows),
                tuple(str(header) for header in self.part_headers))


def _timezone() -> str:
    return str(current_app.config["FACILITY_TIMEZONE"])


def _coded(key: str, title: str, label_header: str, counts: dict, labels: dict) -> Chart:
    return Chart(key, title, label_header, _("Calls"),
                 [Row(str(labels.get(code, code)), n) for code, n in counts.items()])


def _age_label(first: int, last: int | None) -> str:
    if last is None:
        return _("%(first)d days or more", first=first)
    return _("%(first)d to %(last)d days", first=first, last=last)


def helpline_charts(board: Dashboard) -> list[Chart]:
    """The helpline's figures, labelled for the page."""
    volume, followups = board.volume, board.followups
    statuses = tuple(REFERRAL_STATUS_LABELS)
    return [
        Chart("calls-per-day", _("Calls per day"), _("Day"), _("All calls"),
              # date_format: Babel's text of a day kept per language (62 Babel calls: 6 % of the profiled view).
              [Row(date_format(d.day, "medium"), d.total, (d.data, d.other), tick=date_format(d.day, "MMM d"))
               for d in volume.days],
              (_("Data calls"), _("Other calls"))),
        Chart("calls-per-hour", _("Calls by hour of the day (facility time)"), _("Hour"), _("Calls"),
              [Row(f"{hour:02d}:00–{hour:02d}:59", n, tick=f"{hour:02d}") for hour, n in enumerate(volume.hours)]),
        _coded("call-types", _("Calls by type: data and non-data calls"), _("Type"), board.call_types,
               CALL_TYPE_LABELS),
        _coded("risk-levels", _("Data calls by risk level"), _("Risk level"), board.risk_levels, RISK_LABELS),
        _coded("substances", _("Calls naming each substance"), _("Substance"), board.substances, SUBSTANCE_LABELS),
        Chart("referrals", _("Referrals by kind of service (where they stand now)"), _("Kind of service"),
              _("All referrals"),
              [Row(str(KIND_LABELS.get(kind, kind)), sum(by_status.values()),
                   tuple(by_status.get(s, 0) for s in statuses)) for kind, by_status in board.referrals.items()],
              tuple(str(REFERRAL_STATUS_LABELS[s]) for s in statuses)),
        Chart("followups", _("Open follow-ups now"), _("When due"), _("Follow-ups"), [
            Row(_("Overdue (due time passed)"), followups.overdue),
            Row(_("Due within %(days)d days", days=followups.horizon_days), followups.due_soon),
            Row(_("Due later"), followups.later),
        ]),
    ]


def records_charts(board: Dashboard) -> list[Chart]:
    """The records requests' figures, labelled for the page."""
    return [
        Chart("open-requests", _("Open requests now, by state"), _("State"), _("Requests"),
              [Row(str(STAFF_STATUS_LABELS.get(code, code)), n) for code, n in board.open_requests.items()]),
        Chart("request-ages", _("Open requests now, by days since received"), _("Age"), _("Requests"),
              [Row(_age_label(*bounds), n) for bounds, n in board.ages]),
        Chart("denials", _("Denials in the range, by reason"), _("Reason"), _("Requests"),
              [Row(str(DENIAL_SHORT.get(code, code or _("No reason recorded"))), n)
               for code, n in board.denials.items()]),
    ]


def _period(form: DashboardForm) -> DateRange | None:
    """The range the form asks for, or None with the reason left on the form."""
    if set(request.args) - PARAMETERS:
        form.range_error = _("This page takes only a start date and an end date: remove the other "
                             "parameters from the address.")
        return None
    if not form.validate():
        return None
    try:
        return check_range(form.date_from.data, form.date_to.data,
                           too_long=_("Choose at most %(days)d days at once.", days=MAX_DAYS))
    except ExportRangeError as exc:
        form.range_error = str(exc)
        return None


@dataclass(frozen=True)
class ActionItem:
    """One line of "Needs action now": what, how many, where to act (None: no page the viewer may open)."""

    label: str
    count: int
    url: str | None
    urgent: bool


def needs_action(viewer: Any, board: Dashboard | None) -> list[ActionItem]:
    """What needs someone now, whatever the date range: requests overdue and due today, urgent calls
    waiting for a supervisor, overdue follow-ups, e-mails that could not be delivered. Each line only
    for those whose work it is; counts only, never a name."""
    items: list[ActionItem] = []
    if can(viewer, Permission.REQUESTS_VIEW):
        overdue, due_today = requests_due(deadlines.today())
        for tab, label, count in ((queue.Tab.OVERDUE, _("Records requests overdue"), overdue),
                                  (queue.Tab.DUE_TODAY, _("Records requests due today"), due_today)):
            items.append(ActionItem(label, count, url_for("request_queue.index", tab=tab.value), True))
    if can(viewer, Permission.CALLS_URGENT_QUEUE):
        items.append(ActionItem(_("Urgent calls waiting for a supervisor"), escalation.waiting_count(),
                                url_for("calls.urgent"), True))
    if board is not None and can(viewer, Permission.FOLLOWUPS_WORK):
        items.append(ActionItem(_("Follow-ups overdue"), board.followups.overdue, url_for("followups.index"), True))
    failed = attention().failed_message_count
    items.append(ActionItem(_("E-mails that could not be delivered (last 7 days)"), failed,
                            url_for("admin.index") if can(viewer, Permission.USERS_MANAGE) else None, False))
    return items


@bp.route("", strict_slashes=False)
@require(Permission.DASHBOARD_HELPLINE, Permission.DASHBOARD_RECORDS)
def index() -> str | tuple[str, int]:
    """The figures for the range asked for (the last 30 days by default), or the form and a 400.
    The helpline's section needs ``DASHBOARD_HELPLINE``, the records office's ``DASHBOARD_RECORDS``."""
    now: datetime = utcnow()
    timezone = _timezone()
    if request.args:
        form = DashboardForm(request.args)
        period = _period(form)
    else:
        period = default_range(local_day(now, timezone))
        form = DashboardForm(formdata=None, date_from=period.first, date_to=period.last)
    viewer = current_user._get_current_object()
    if period is None:
        return render_template("admin/dashboard/index.html", form=form, board=None, max_days=MAX_DAYS,
                               actions=needs_action(viewer, None)), 400
    board = build_dashboard(period, timezone, now)
    return render_template(
        "admin/dashboard/index.html", form=form, board=board, max_days=MAX_DAYS, actions=needs_action(viewer, board),
        helpline=helpline_charts(board) if can(viewer, Permission.DASHBOARD_HELPLINE) else None,
        records=records_charts(board) if can(viewer, Permission.DASHBOARD_RECORDS) else None)
