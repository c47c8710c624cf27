"""``/admin/notices/``: the notices shown on the public pages (``NOTICES_EDIT``, admins).

The form has two buttons: Preview shows the notice as the public pages will, after cleaning,
and saves nothing; Save stores it. Either way, when the cleaning removed some of the formatting
the admin typed, they are told so and shown the result. Authorization comes first (the
decorator), then the lookup, so an unknown id is a 404 only to those allowed to ask.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user
from werkzeug.wrappers import Response

from intake.admin import notices as services
from intake.admin.models import SiteNotice
from intake.admin.notice_forms import NoticeForm
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, require
from intake.records.clocks import local_day

bp = Blueprint("admin_notices", __name__, url_prefix="/admin/notices")


@bp.context_processor
def _helpers() -> dict[str, Any]:
    return {"kind_label": lambda kind: services.KIND_LABELS[kind], "notice_status": services.status}


def _today() -> date:
    """The facility's day: a notice dated "today" shows from midnight there."""
    return local_day(utcnow(), str(current_app.config["FACILITY_TIMEZONE"]))


def _actor() -> Any:
    return current_user._get_current_object()


def _load(notice_id: int) -> SiteNotice:
    return db.get_or_404(SiteNotice, notice_id)


def _removed_message() -> str:
    return _("Some formatting was removed: only bold, italic, links (https, mailto and tel) and lists are kept. "
             "Check the notice as shown below.")


@bp.route("/")
@require(Permission.NOTICES_EDIT)
def index() -> str:
    """Notices showing today, those still to come, and the most recently ended (each list bounded)."""
    today = _today()
    return render_template("admin/notices/index.html", today=today, limit=services.LIST_LIMIT,
                           current=services.current_notices(today, limit=services.LIST_LIMIT),
                           scheduled=services.scheduled_notices(today), ended=services.ended_notices(today))


def _preview(form: NoticeForm, today: date) -> tuple[list[services.ShownNotice], bool]:
    """The notice as the public pages would show it (English, and Spanish when written), unsaved."""
    values, removed = services.check_notice(form.data, today)
    return _shown(SiteNotice(**values)), removed


def _shown(notice: SiteNotice) -> list[services.ShownNotice]:
    shown = [services.shown(notice, "en")]
    if notice.title_es or notice.body_es:
        shown.append(services.shown(notice, "es"))
    return shown


def _save(form: NoticeForm, notice: SiteNotice | None, today: date) -> Response:
    """Create or update, commit, and go back to the list; or to the notice when formatting was removed."""
    if notice is None:
        notice, removed = services.create_notice(form.data, _actor(), today)
        db.session.commit()
        flash(_("Notice #%(id)d added.", id=notice.id), "success")
    else:
        changed, removed = services.update_notice(notice, form.data, _actor(), today)
        db.session.commit()
        flash(_("Notice #%(id)d saved.", id=notice.id) if changed else _("Nothing changed."),
              "success" if changed else "info")
    if removed:
        flash(_removed_message(), "warning")
        return redirect(url_for("admin_notices.edit", notice_id=notice.id))
    return redirect(url_for("admin_notices.index"))


def _render(form: NoticeForm, notice: SiteNotice | None, today: date,
            preview: list[services.ShownNotice], removed: bool = False) -> str:
    return render_template("admin/notices/form.html", form=form, notice=notice, preview=preview,
                           removed_message=_removed_message() if removed else None, today=today,
                           latest=services.latest_date(today))


def _form_page(form: NoticeForm, notice: SiteNotice | None) -> Response | str | tuple[str, int]:
    """A GET or POST of the notice form: the preview, the save, or the form again with its errors (400)."""
    today = _today()
    if form.validate_on_submit():
        try:
            if form.preview.data:
                return _render(form, notice, today, *_preview(form, today))
            return _save(form, notice, today)
        except services.NoticeRefused as exc:  # raised before anything changed
            getattr(form, exc.field).errors.append(str(exc))
    if request.method == "POST":
        return _render(form, notice, today, []), 400
    return _render(form, notice, today, _shown(notice) if notice is not None else [])


@bp.route("/new", methods=["GET", "POST"])
@require(Permission.NOTICES_EDIT)
def new() -> Response | str | tuple[str, int]:
    """Write a notice: Preview shows it cleaned, Save stores it."""
    form = NoticeForm(data={"starts_on": _today()} if request.method == "GET" else None)
    return _form_page(form, None)


@bp.route("/<int(max=2147483647):notice_id>", methods=["GET", "POST"])
@require(Permission.NOTICES_EDIT)
def edit(notice_id: int) -> Response | str | tuple[str, int]:
    """Change a notice; the page shows it as the public sees it."""
    notice = _load(notice_id)
    form = NoticeForm(data=services.form_data(notice) if request.method == "GET" else None)
    return _form_page(form, notice)


@bp.route("/<int(max=2147483647):notice_id>/end", methods=["POST"])
@require(Permission.NOTICES_EDIT)
def end(notice_id: int) -> Response:
    """Stop showing a current notice now (its last day becomes yesterday)."""
    notice = _load(notice_id)
    try:
        services.end_notice(notice, _actor(), _today())
    except services.NoticeRefused as exc:
        flash(str(exc), "warning")
    else:
        db.session.commit()
        flash(_("Notice #%(id)d ended. It no longer shows on the public pages.", id=notice.id), "success")
    return redirect(url_for("admin_notices.index"))


@bp.route("/<int(max=2147483647):notice_id>/delete", methods=["POST"])
@require(Permission.NOTICES_EDIT)
def delete(notice_id: int) -> Response:
    """Delete a notice for good."""
    notice = _load(notice_id)
    notice_id = notice.id
    services.delete_notice(notice, _actor())
    db.session.commit()
    flash(_("Notice #%(id)d deleted.", id=notice_id), "success")
    return redirect(url_for("admin_notices.index"))
