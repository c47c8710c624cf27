"""Site notices: the admin-written notices at the top of the public pages.

A notice shows from ``starts_on`` through ``ends_on`` (the facility's days; open-ended when
empty). Its body is the admin's text cleaned by ``clean_body`` (the input format and the cleaning
are in ``intake.admin.notice_text``), and is cleaned again whenever a page shows it.

Services check the meaning (dates, text left after cleaning), write the audit event with ids,
kind and dates only, and flush; the view commits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import case, or_, select

from intake.admin.models import NoticeKind, SiteNotice
from intake.admin.notice_text import body_source, clean_body, formatting_removed, has_text, notice_html
from intake.audit.services import record
from intake.db_types import utcnow
from intake.extensions import db
from intake.permissions import Permission, can
from intake.records.clocks import local_day

TITLE_MAX = 120
BODY_MAX = 4000  # characters as typed, before cleaning
YEARS_AHEAD = 10
EARLIEST = date(2000, 1, 1)
LIST_LIMIT = 50  # per section of the admin list
PUBLIC_LIMIT = 10  # a page with more notices than this has a different problem

KIND_ORDER = (NoticeKind.CLOSURE, NoticeKind.SAFETY, NoticeKind.INFORMATION)
KIND_LABELS = {
    NoticeKind.CLOSURE: _l("Closure notice"),
    NoticeKind.SAFETY: _l("Safety notice"),
    NoticeKind.INFORMATION: _l("Information"),
}


class NotAllowed(PermissionError):
    """The actor may not edit notices."""


class NoticeRefused(ValueError):
    """Input the notices refuse; ``field`` names the form field the message belongs next to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


# --- Rules --------------------------------------------------------------------------------------

def _require_editor(actor: Any) -> None:
    if not can(actor, Permission.NOTICES_EDIT):
        raise NotAllowed("notices.edit required")


def _text(value: Any) -> str | None:
    value = str(value).strip() if value is not None else ""
    return value or None


def latest_date(today: date) -> date:
    """The furthest a notice may be dated ahead of ``today``."""
    try:
        return today.replace(year=today.year + YEARS_AHEAD)
    except ValueError:  # 29 February
        return today.replace(year=today.year + YEARS_AHEAD, day=28)


def _checked_body(value: Any, field: str) -> str | None:
    text = _text(value)
    if text is None:
        return None
    if len(text) > BODY_MAX:
        raise NoticeRefused(field, _("At most %(max)d characters.", max=BODY_MAX))
    html = clean_body(text)
    if not has_text(html):
        raise NoticeRefused(field, _("No text is left once the formatting that is not allowed is removed. "
                                     "Write the notice as plain text."))
    return html


def check_notice(data: Mapping[str, Any], today: date) -> tuple[dict[str, Any], bool]:
    """The column values for ``data`` and whether formatting was removed from a body; or
    ``NoticeRefused`` naming the field. ``today`` is the facility's day."""
    try:
        kind = NoticeKind(data.get("kind") or "")
    except ValueError:
        raise NoticeRefused("kind", _("Choose the kind of notice.")) from None
    title, title_es = _text(data.get("title")), _text(data.get("title_es"))
    if title is None:
        raise NoticeRefused("title", _("Enter a title."))
    for field, value in (("title", title), ("title_es", title_es)):
        if value is not None and len(value) > TITLE_MAX:
            raise NoticeRefused(field, _("At most %(max)d characters.", max=TITLE_MAX))
    body = _checked_body(data.get("body"), "body")
    if body is None:
        raise NoticeRefused("body", _("Enter the text of the notice."))
    body_es = _checked_body(data.get("body_es"), "body_es")
    starts_on, ends_on = data.get("starts_on"), data.get("ends_on")
    if not isinstance(starts_on, date):
        raise NoticeRefused("starts_on", _("Enter the first day the notice shows."))
    latest = latest_date(today)
    if not EARLIEST <= starts_on <= latest:
        raise NoticeRefused("starts_on", _("Enter a date between %(first)s and %(last)s.",
                                           first=EARLIEST.isoformat(), last=latest.isoformat()))
    if ends_on is not None:
        if not isinstance(ends_on, date):
            raise NoticeRefused("ends_on", _("Enter the date as YYYY-MM-DD, for example 2026-01-31."))
        if ends_on < starts_on:
            raise NoticeRefused("ends_on", _("The last day is before the first day."))
        if ends_on > latest:
            raise NoticeRefused("ends_on", _("Enter a last day no later than %(last)s, or leave it empty to show "
                                             "the notice until it is ended.", last=latest.isoformat()))
    removed = formatting_removed(data.get("body")) or formatting_removed(data.get("body_es"))
    values = {"kind": kind, "title": title, "body": body, "title_es": title_es, "body_es": body_es,
              "starts_on": starts_on, "ends_on": ends_on}
    return values, removed


def _details(notice: SiteNotice, **extra: Any) -> dict[str, Any]:
    return {"kind": str(notice.kind), "starts_on": notice.starts_on.isoformat(),
            "ends_on": notice.ends_on.isoformat() if notice.ends_on else None, **extra}


def create_notice(data: Mapping[str, Any], actor: Any, today: date) -> tuple[SiteNotice, bool]:
    """Add a notice; also says whether formatting was removed from its text."""
    _require_editor(actor)
    values, removed = check_notice(data, today)
    notice = SiteNotice(**values, created_by_id=actor.id, updated_by_id=actor.id)
    db.session.add(notice)
    db.session.flush()
    record("notice.created", actor=actor, object_type="notice", object_id=notice.id, details=_details(notice))
    return notice, removed


def update_notice(notice: SiteNotice, data: Mapping[str, Any], actor: Any, today: date) -> tuple[list[str], bool]:
    """Apply ``data``; the names of the fields that changed (empty: nothing written) and whether
    formatting was removed."""
    _require_editor(actor)
    values, removed = check_notice(data, today)
    changed = [field for field, value in values.items() if getattr(notice, field) != value]
    if changed:
        for field in changed:
            setattr(notice, field, values[field])
        notice.updated_by_id = actor.id
        db.session.flush()
        record("notice.updated", actor=actor, object_type="notice", object_id=notice.id,
               details=_details(notice, fields=changed))
    return changed, removed


def end_notice(notice: SiteNotice, actor: Any, today: date) -> None:
    """Stop showing a current notice now: its last day becomes yesterday. A notice that started
    today or is still to come has no yesterday to end on; it is deleted instead."""
    _require_editor(actor)
    if status(notice, today) != "current":
        raise NoticeRefused("", _("Only a notice showing today can be ended."))
    if notice.starts_on >= today:
        raise NoticeRefused("", _("This notice started today: delete it instead."))
    notice.ends_on = today - timedelta(days=1)
    notice.updated_by_id = actor.id
    db.session.flush()
    record("notice.ended", actor=actor, object_type="notice", object_id=notice.id, details=_details(notice))


def delete_notice(notice: SiteNotice, actor: Any) -> None:
    """Remove a notice for good (the audit trail keeps its id, kind and dates)."""
    _require_editor(actor)
    details = _details(notice)
    notice_id = notice.id
    db.session.delete(notice)
    db.session.flush()
    record("notice.deleted", actor=actor, object_type="notice", object_id=notice_id, details=details)


# --- Reading ------------------------------------------------------------------------------------

def status(notice: SiteNotice, today: date) -> str:
    """``current``, ``scheduled`` or ``ended``, on the facility's day ``today``."""
    if notice.starts_on > today:
        return "scheduled"
    if notice.ends_on is not None and notice.ends_on < today:
        return "ended"
    return "current"


_KIND_RANK = case({kind.value: rank for rank, kind in enumerate(KIND_ORDER)}, value=SiteNotice.kind, else_=9)


def current_notices(today: date, limit: int = PUBLIC_LIMIT) -> Sequence[SiteNotice]:
    """The notices showing on ``today``: closure first, then safety, then information, newest
    first within a kind. One query over the ``(starts_on, ends_on)`` index."""
    return db.session.execute(
        select(SiteNotice)
        .where(SiteNotice.starts_on <= today, or_(SiteNotice.ends_on.is_(None), SiteNotice.ends_on >= today))
        .order_by(_KIND_RANK, SiteNotice.starts_on.desc(), SiteNotice.id.desc()).limit(limit)
    ).scalars().all()


def scheduled_notices(today: date, limit: int = LIST_LIMIT) -> Sequence[SiteNotice]:
    """Notices still to come, soonest first."""
    return db.session.execute(
        select(SiteNotice).where(SiteNotice.starts_on > today)
        .order_by(SiteNotice.starts_on, SiteNotice.id).limit(limit)
    ).scalars().all()


def ended_notices(today: date, limit: int = LIST_LIMIT) -> Sequence[SiteNotice]:
    """Notices no longer shown, the most recently ended first."""
    return db.session.execute(
        select(SiteNotice).where(SiteNotice.ends_on < today)
        .order_by(SiteNotice.ends_on.desc(), SiteNotice.id.desc()).limit(limit)
    ).scalars().all()


@dataclass(frozen=True)
class ShownNotice:
    """A notice as a page shows it, in the visitor's language where the admin wrote one."""

    kind: NoticeKind
    title: str
    body: Markup
    title_lang: str  # "es" for the Spanish text, "en" for the English one
    body_lang: str

    @property
    def label(self) -> str:
        return str(KIND_LABELS[self.kind])


def shown(notice: SiteNotice, locale: str | None) -> ShownNotice:
    """``notice`` for a visitor reading ``locale``: each Spanish field where the locale is Spanish
    and the field is filled in, the English one otherwise; the body cleaned again."""
    spanish = (locale or "").lower().replace("-", "_").split("_")[0] == "es"
    title_es = spanish and bool(notice.title_es)
    body_es = spanish and bool(notice.body_es and has_text(notice.body_es))
    return ShownNotice(kind=notice.kind, title=notice.title_es if spanish and notice.title_es else notice.title,
                       body=notice_html(notice.body_es if body_es else notice.body),
                       title_lang="es" if title_es else "en", body_lang="es" if body_es else "en")


def notices_for_today(locale: str | None, timezone: str, now: datetime | None = None) -> list[ShownNotice]:
    """The notices for a public page: those showing on the facility's current day, in ``locale``."""
    today = local_day(now or utcnow(), timezone)
    return [shown(notice, locale) for notice in current_notices(today)]


def form_data(notice: SiteNotice) -> dict[str, Any]:
    """A notice's values in the shape the edit form takes (bodies back in the input format)."""
    return {"kind": notice.kind.value, "title": notice.title, "body": body_source(notice.body),
            "title_es": notice.title_es or "", "body_es": body_source(notice.body_es),
            "starts_on": notice.starts_on, "ends_on": notice.ends_on}
