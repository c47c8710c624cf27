"""``/admin/review/``: the supervisors' quality-review queue and the rubric page.

Everything here needs ``QUALITY_REVIEW``. The queue and the review page show coded columns only
(call number, dates, account numbers, risk level, substances); the call's own page, one link
away, is where its text is read, and that view is audited there. Opening a review page is
audited too: it shows the feedback written about an operator's work.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Response

from intake.audit.services import record
from intake.calls.list_forms import CHANNEL_LABELS, DISPOSITION_LABELS, RISK_LABELS, SUBSTANCE_LABELS
from intake.extensions import db
from intake.forms import ConfirmForm
from intake.permissions import Permission, require
from intake.review import queries
from intake.review.forms import FEEDBACK_LABELS, QueueFilterForm, ReviewForm
from intake.review.models import CallReview, ReviewReason, ReviewStatus
from intake.review.services import (
    ITEMS,
    OBJECT_TYPE,
    ReviewInvalid,
    ReviewRefused,
    draw_weekly_sample,
    last_full_week,
    may_review,
    submit_review,
)
from intake.users.models import Role
from intake.users.services import names_by_id, staff_accounts

bp = Blueprint("admin_review", __name__, url_prefix="/admin/review")

FILTER_KEYS = ("tab", "reason", "operator")
LABELS = {"risk": RISK_LABELS, "substance": SUBSTANCE_LABELS, "disposition": DISPOSITION_LABELS,
          "channel": CHANNEL_LABELS, **FEEDBACK_LABELS}


def _viewer() -> Any:
    return current_user._get_current_object()


@bp.route("/")
@require(Permission.QUALITY_REVIEW)
def index() -> tuple[str, int]:
    """The queue: open reviews oldest first or done ones newest first, 50 a page (``?after=``),
    filtered by reason and operator account number."""
    # A blank value (spaces, a line break) is "any", as Optional() reads it: dropped before the form.
    args = MultiDict((k, v) for k, v in request.args.items(multi=True) if k in FILTER_KEYS and v.strip())
    form = QueueFilterForm(args)
    form.operator.choices = [("", _("Any"))] + [(str(u.id), u.name) for u in staff_accounts(
        active_only=False, roles=[Role.OPERATOR, Role.SUPERVISOR])]
    problem = None
    after = None
    if request.args.get("after"):
        try:
            after = queries.Cursor.decode(request.args["after"])
        except queries.BadCursor:
            problem = _("That page link is not valid. Start again from the first page.")
    if args and not form.validate():
        problem = problem or _("Some filters are not valid. Correct them and filter again.")
    tab = form.tab.data if form.tab.data in ("open", "done") else "open"
    filter_args = queries.as_args(tab=tab, reason=form.reason.data, operator=form.operator.data)
    common = {"form": form, "tab": tab, "filter_args": filter_args, "labels": LABELS,
              "sample_form": ConfirmForm(), "sample_size": current_app.config["REVIEW_SAMPLE_SIZE"],
              "last_week": last_full_week()}
    if problem:
        return render_template("admin/review/index.html", rows=[], names={}, next_after=None, first_page=False,
                               problem=problem, **common), 400
    filters = queries.QueueFilters(status=ReviewStatus(tab),
                                   reason=ReviewReason(form.reason.data) if form.reason.data else None,
                                   operator_id=form.operator_id())
    rows, following = queries.list_queue(filters, after, page_size=queries.PAGE_SIZE)
    names = names_by_id([r.operator_id for r in rows] + [r.reviewer_id for r in rows])
    return render_template("admin/review/index.html", rows=rows, next_after=following.encode() if following else None,
                           first_page=after is None, problem=None, names=names, **common), 200


@bp.route("/sample", methods=["POST"])
@require(Permission.QUALITY_REVIEW)
def sample() -> Response:
    """Draw last week's random sample now (what ``flask review sample`` does from a timer)."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    size = current_app.config["REVIEW_SAMPLE_SIZE"]
    monday = last_full_week()
    if size == 0:
        flash(_("The weekly sample is turned off (REVIEW_SAMPLE_SIZE is 0); nothing was drawn."), "info")
        return redirect(url_for("admin_review.index"))
    result = draw_weekly_sample(monday, size, actor=_viewer())
    db.session.commit()
    flash(_("Week of %(monday)s: %(added)d call(s) added to the queue for %(operators)d operator(s).",
            monday=monday.isoformat(), added=result.total_added, operators=len(result.added)), "success")
    return redirect(url_for("admin_review.index"))


def _render(review: CallReview, form: ReviewForm, *, problem: str | None = None, status: int = 200) -> tuple[str, int]:
    facts = queries.call_facts(review.call_id)
    if facts is None:
        abort(404)
    names = names_by_id([facts.operator_id, review.reviewer_id])
    return render_template("admin/review/detail.html", review=review, facts=facts, form=form, items=ITEMS, names=names,
                           labels=LABELS, may_review=may_review(_viewer(), review), problem=problem), status


@bp.route("/<int(max=2147483647):review_id>", methods=["GET", "POST"])
@require(Permission.QUALITY_REVIEW)
def detail(review_id: int) -> tuple[str, int] | Response:
    """One review: the call's coded facts, a link to the full call, the rubric and the feedback.
    A reviewer may not score their own call (the page says so; a post is refused with 403)."""
    review = db.get_or_404(CallReview, review_id)
    if request.method == "GET":
        form = ReviewForm(formdata=None)
        form.fill_from(review)
        record("review.viewed", actor=_viewer(), object_type=OBJECT_TYPE, object_id=review.id,
               details={"call_id": review.call_id})
        html = _render(review, form)
        db.session.commit()
        return html
    form = ReviewForm()
    if not may_review(_viewer(), review):
        return _render(review, form, problem=_("You cannot review your own call."), status=403)
    if not form.validate():
        return _render(review, form, problem=_("The review was not saved. Correct the items marked below."),
                       status=400)
    was_done = review.status == ReviewStatus.DONE
    try:
        submit_review(review, form.scores(), form.feedback.data, _viewer())
    except ReviewRefused:
        abort(403)
    except ReviewInvalid as exc:  # raised before anything changed
        for name, message in exc.errors.items():
            form[name].errors = [*form[name].errors, message]
        return _render(review, form, problem=_("The review was not saved. Correct the items marked below."),
                       status=400)
    db.session.commit()
    flash(_("Review of call #%(id)d updated.", id=review.call_id) if was_done
          else _("Review of call #%(id)d saved; the operator will see the feedback on the call's page.",
                 id=review.call_id), "success")
    return redirect(url_for("admin_review.index"))
