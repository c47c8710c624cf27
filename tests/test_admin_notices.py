"""Site notices: cleaning of the admin's text (nh3), the dates that decide what the public pages
show, the admin pages (create, preview, edit, end, delete, each audited), hostile and bad input,
Spanish text, and who may do what."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import event, func, select

from intake.admin import notices
from intake.admin.models import NoticeKind, SiteNotice
from intake.admin.notice_text import body_source, clean_body, formatting_removed, notice_html
from intake.admin.notices import BODY_MAX, NoticeRefused, check_notice, current_notices, shown
from intake.audit.models import AuditEvent
from intake.db_types import utcnow
from intake.extensions import db
from intake.records.clocks import local_day
from intake.users.models import Role
from tests.conftest import FULL_ADMIN, csrf_token, login, make_app

HOSTILE = (
    '<script>alert("owned")</script>Boil water before drinking.'
    '<style>body{display:none}</style>'
    '<img src=x onerror="alert(\'img\')">'
    '\n\n<a href="javascript:alert(\'js\')">click me</a> '
    '<iframe src="https://evil.example/frame">framed text</iframe>'
    '<strong onmouseover="alert(\'hover\')">Stay indoors</strong>'
)
HOSTILE_MARKERS = ("<script", "alert(", "<style", "display:none", "onerror", "javascript:", "<iframe",
                   "evil.example", "framed text", "onmouseover", "<img")


def today_of(app) -> date:
    return local_day(utcnow(), app.config["FACILITY_TIMEZONE"])


def add_notice(app, *, kind=NoticeKind.SAFETY, title="Wildfire smoke", body="<p>Stay indoors.</p>",
               starts_on=None, ends_on=None, **fields) -> int:
    """A notice straight into the database (as any writer could); returns its id."""
    with app.app_context():
        notice = SiteNotice(kind=kind, title=title, body=body, starts_on=starts_on or today_of(app),
                            ends_on=ends_on, **fields)
        db.session.add(notice)
        db.session.commit()
        return notice.id


def fetch(app, notice_id) -> SiteNotice | None:
    with app.app_context():
        notice = db.session.get(SiteNotice, notice_id)
        if notice is not None:
            db.session.expunge(notice)
        return notice


def notice_count(app) -> int:
    with app.app_context():
        return db.session.execute(select(func.count()).select_from(SiteNotice)).scalar_one()


def audit_rows(app, action) -> list[AuditEvent]:
    with app.app_context():
        rows = db.session.execute(select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.seq)).scalars().all()
        db.session.expunge_all()
        return rows


def form(app, **overrides) -> dict:
    data = {"kind": "safety", "title": "Wildfire smoke advisory",
            "body": "The air is unhealthy today.\nKeep windows closed.\n\nCall us if you need help.",
            "title_es": "", "body_es": "", "starts_on": today_of(app).isoformat(), "ends_on": "", "save": "Save"}
    data.update(overrides)
    return data


def post(client, path, data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, "/admin/notices/new")})


def action(client, path):
    return client.post(path, data={"csrf_token": csrf_token(client, "/admin/notices/")})


@pytest.fixture()
def admin(client, login_as):
    return login_as(FULL_ADMIN)


# --- Cleaning the body --------------------------------------------------------------------------

def test_plain_text_becomes_paragraphs_and_line_breaks():
    assert clean_body("First line\nsecond line\n\n\nNew paragraph") == (
        "<p>First line<br>\nsecond line</p>\n<p>New paragraph</p>")
    assert clean_body("a\r\nb\r\n\r\nc") == "<p>a<br>\nb</p>\n<p>c</p>"
    assert clean_body("") == "" and clean_body(None) == ""


def test_allowed_formatting_survives():
    html = clean_body('<b>Bold</b>, <strong>strong</strong>, <i>it</i>, <em>em</em>, '
                      '<a href="https://example.org/a?b=1&c=2">site</a>, '
                      '<a href="mailto:records@example.org">mail</a>, <a href="tel:+18005550100">phone</a>\n'
                      '<ul>\n<li>one</li>\n<li>two</li>\n</ul>\n<ol><li>x</li></ol>')
    assert "<strong>Bold</strong>" in html and "<strong>strong</strong>" in html
    assert "<em>it</em>" in html and "<em>em</em>" in html
    assert '<a href="https://example.org/a?b=1&amp;c=2" rel="noopener noreferrer">site</a>' in html
    assert '<a href="mailto:records@example.org" rel="noopener noreferrer">mail</a>' in html
    assert '<a href="tel:+18005550100" rel="noopener noreferrer">phone</a>' in html
    assert "<ul>\n<li>one</li>\n<li>two</li>\n</ul>" in html and "<ol><li>x</li></ol>" in html
    assert not formatting_removed('<b>x</b> <a href="https://example.org">y</a><ul><li>z</li></ul>')


@pytest.mark.parametrize("text, kept, gone", [
    ("<script>alert(1)</script>Safe", "<p>Safe</p>", "alert"),
    ("<style>p{color:red}</style>Safe", "<p>Safe</p>", "color"),
    ("x<img src=x onerror=alert(1)>y", "<p>xy</p>", "onerror"),
    ('<a href="javascript:alert(1)">link</a>', "<p>link</p>", "javascript"),
    ('<a href="JaVaScRiPt:alert(1)">link</a>', "<p>link</p>", "alert"),
    ('<a href="data:text/html,<script>alert(1)</script>">d</a>', "<p>d</p>", "data:"),
    ('<a href="http://plain.example">h</a>', "<p>h</p>", "plain.example"),
    ('<a href="/relative">r</a>', "<p>r</p>", "relative"),
    ("<iframe src=https://evil.example>inner</iframe>after", "<p>after</p>", "inner"),
    ("<svg onload=alert(1)><circle/></svg>ok", "<p>ok</p>", "svg"),
    ('<strong onclick="alert(1)" class="x">s</strong>', "<p><strong>s</strong></p>", "onclick"),
    ('<a href="https://ok.example" target="_blank" onclick="x">t</a>',
     '<p><a href="https://ok.example" rel="noopener noreferrer">t</a></p>', "target"),
    ("<!-- hidden <ul> -->text", "<p>text</p>", "hidden"),
    ("<scr<script>ipt>alert(1)</script>", "<p>ipt&gt;alert(1)</p>", "<script"),
    ("<script>\n\nalert(1)\n\n</script>after", "<p>after</p>", "alert"),
    ("<textarea><script>alert(1)</script></textarea>t", "<p>t</p>", "alert"),
])
def test_hostile_markup_is_removed_and_reported(text, kept, gone):
    html = clean_body(text)
    assert html == kept
    assert gone not in html
    assert formatting_removed(text)


def test_literal_angle_brackets_and_ampersands_are_text():
    html = clean_body("Tom & Jerry: 3 < 4 > 2 and &lt;script&gt;")
    assert html == "<p>Tom &amp; Jerry: 3 &lt; 4 &gt; 2 and &lt;script&gt;</p>"
    assert not formatting_removed("Tom & Jerry: 3 < 4 > 2")


@pytest.mark.parametrize("text", [
    "Plain", "a\nb\n\nc", "Intro\n<ul>\n<li>one</li>\n</ul>\nafter", "<ul><li>a<ul><li>b</li></ul></li></ul>\n\nend",
    '<b>x</b> & <a href="https://e.org/?a=1&b=2">y</a>', "</ul>stray\n\n</p>more", "<ul><li>unclosed",
    "3 < 4 &lt;b&gt; &amp;lt;", HOSTILE,
    "<b><ul>", "<li>\r0", "<b>bold across\n\nparagraphs</b>", "<ul><li>a<br>b</li></ul>", "<p>a\n\nb</p>",
])
def test_cleaning_is_idempotent_and_the_edit_source_round_trips(text):
    html = clean_body(text)
    assert clean_body(html) == html  # so the display-time cleaning never changes a stored body
    source = body_source(html)
    assert clean_body(source) == html
    assert not formatting_removed(source)  # re-saving an untouched notice warns about nothing


_FRAGMENTS = st.sampled_from([
    "<script>", "</script>", "<style>", "<p>", "</p>", "<ul>", "</ul>", "<li>", "<b>", "</i>", "<a href=", "</a>",
    "javascript:", "https://x.org", " onerror=", "alert(1)", "<img src=x", "<iframe>", "<!--", "-->", "\n", "\n\n",
    "<", ">", "&", "&lt;", '"', "'", "<svg/onload=", "<math>", "<br>", "text", "é", "\t", "<strong>", "</em>",
    "</li>", "<div>", "<textarea>", "<P>", "\r",
])


@settings(max_examples=300, deadline=None)
@given(st.lists(_FRAGMENTS | st.text(max_size=8), max_size=30).map("".join))
def test_any_mix_of_fragments_comes_out_safe_and_stable(text):
    html = clean_body(text)
    tags = {tag.lower() for tag in re.findall(r"<\s*/?\s*([a-zA-Z0-9]+)", html)}
    assert tags <= {"p", "br", "strong", "em", "a", "ul", "ol", "li"}
    assert not re.search(r"<[^>]*\son\w+\s*=", html, re.IGNORECASE)
    assert not re.search(r'href="(?!https:|mailto:|tel:)', html)
    assert clean_body(html) == html
    assert clean_body(body_source(html)) == html


def test_display_cleans_again_whatever_is_in_the_column():
    raw = '<p>ok</p><script>alert(1)</script><p onclick="x">p</p><a href="javascript:x">j</a>'
    assert str(notice_html(raw)) == "<p>ok</p>\n<p>p</p>\n<p>j</p>"


# --- Rules --------------------------------------------------------------------------------------

def values(**overrides):
    data = {"kind": "closure", "title": "Closed", "body": "Text", "title_es": "", "body_es": "",
            "starts_on": date(2026, 3, 1), "ends_on": None}
    data.update(overrides)
    return data


@pytest.mark.parametrize("overrides, field", [
    ({"kind": "evil"}, "kind"),
    ({"kind": None}, "kind"),
    ({"title": "  "}, "title"),
    ({"title": "x" * 121}, "title"),
    ({"title_es": "x" * 121}, "title_es"),
    ({"body": ""}, "body"),
    ({"body": "<script>alert(1)</script><style>x</style>"}, "body"),
    ({"body": "<img src=x>"}, "body"),
    ({"body": "x" * (BODY_MAX + 1)}, "body"),
    ({"body_es": "<iframe>x</iframe>"}, "body_es"),
    ({"starts_on": None}, "starts_on"),
    ({"starts_on": "2026-03-01"}, "starts_on"),
    ({"starts_on": date(1999, 12, 31)}, "starts_on"),
    ({"starts_on": date(2036, 3, 2)}, "starts_on"),
    ({"ends_on": date(2026, 2, 28)}, "ends_on"),
    ({"ends_on": date(2036, 3, 2)}, "ends_on"),
])
def test_check_notice_refuses_with_the_field(ctx, overrides, field):
    with pytest.raises(NoticeRefused) as refused:
        check_notice(values(**overrides), today=date(2026, 3, 1))
    assert refused.value.field == field


def test_check_notice_accepts_open_ended_past_start_and_same_day(ctx):
    today = date(2026, 3, 1)
    for starts, ends in ((date(2020, 1, 1), None), (today, today), (today, date(2036, 3, 1))):
        cleaned, removed = check_notice(values(starts_on=starts, ends_on=ends, body="<b>x</b>"), today)
        assert (cleaned["starts_on"], cleaned["ends_on"], cleaned["body"], removed) == (
            starts, ends, "<p><strong>x</strong></p>", False)
    assert check_notice(values(body="x<img src=y>"), today)[1] is True
    assert notices.latest_date(date(2028, 2, 29)) == date(2038, 2, 28)


def test_current_notices_order_and_dates(app):
    today = today_of(app)
    day = timedelta(days=1)
    info = add_notice(app, kind=NoticeKind.INFORMATION, starts_on=today - 5 * day)
    safety_old = add_notice(app, kind=NoticeKind.SAFETY, starts_on=today - 9 * day, ends_on=today)
    safety_new = add_notice(app, kind=NoticeKind.SAFETY, starts_on=today - day)
    closure = add_notice(app, kind=NoticeKind.CLOSURE, starts_on=today)
    future = add_notice(app, title="future", starts_on=today + day)
    add_notice(app, title="ended", starts_on=today - 9 * day, ends_on=today - day)
    with app.app_context():
        assert [n.id for n in current_notices(today)] == [closure, safety_new, safety_old, info]
        assert [n.title for n in notices.scheduled_notices(today)] == ["future"]
        assert [n.title for n in notices.ended_notices(today)] == ["ended"]
        assert [n.id for n in current_notices(today + day)] == [closure, future, safety_new, info]


def test_spanish_fields_are_chosen_one_by_one(app):
    both = SiteNotice(kind=NoticeKind.CLOSURE, title="Closed", body="<p>English</p>", title_es="Cerrado",
                      body_es="<p>Español</p>", starts_on=date(2026, 1, 1))
    title_only = SiteNotice(kind=NoticeKind.CLOSURE, title="Closed", body="<p>English</p>", title_es="Cerrado",
                            body_es=None, starts_on=date(2026, 1, 1))
    for locale in ("es", "es_MX", "es-419"):
        seen = shown(both, locale)
        assert (seen.title, str(seen.body), seen.title_lang, seen.body_lang) == (
            "Cerrado", "<p>Español</p>", "es", "es")
    seen = shown(title_only, "es")
    assert (seen.title, str(seen.body), seen.title_lang, seen.body_lang) == ("Cerrado", "<p>English</p>", "es", "en")
    for locale in ("en", None, "", "fr"):
        seen = shown(both, locale)
        assert (seen.title, str(seen.body), seen.body_lang) == ("Closed", "<p>English</p>", "en")


# --- Admin pages ----------------------------------------------------------------------------

def test_create_through_the_form_shows_on_both_public_pages(app, client, admin):
    response = post(client, "/admin/notices/new", form(app))
    assert response.status_code == 302 and response.headers["Location"] == "/admin/notices/"
    with app.app_context():
        notice = db.session.execute(select(SiteNotice)).scalar_one()
        assert notice.body == ("<p>The air is unhealthy today.<br>\nKeep windows closed.</p>\n"
                               "<p>Call us if you need help.</p>")
        assert (notice.kind, notice.created_by_id, notice.updated_by_id) == (NoticeKind.SAFETY, admin.id, admin.id)
        notice_id = notice.id
    [event] = audit_rows(app, "notice.created")
    assert (event.actor_id, event.object_type, event.object_id) == (admin.id, "notice", str(notice_id))
    assert json.loads(event.details) == {"kind": "safety", "starts_on": today_of(app).isoformat(), "ends_on": None}
    assert "Wildfire" not in event.details  # ids, kind and dates only
    listing = client.get("/admin/notices/").get_data(as_text=True)
    assert "Wildfire smoke advisory" in listing and "Showing today" in listing
    for path in ("/", "/records"):
        page = app.test_client().get(path).get_data(as_text=True)
        assert 'role="region" aria-label="Notices"' in page
        assert "Wildfire smoke advisory" in page
        assert "The air is unhealthy today.<br>\nKeep windows closed." in page
        assert "alert-danger site-notice" in page and "Safety notice" in page
    assert "We are not accepting patients" in app.test_client().get("/").get_data(as_text=True)


def test_public_pages_show_neither_future_nor_ended_notices(app):
    today = today_of(app)
    add_notice(app, title="Tomorrow's notice", starts_on=today + timedelta(days=1))
    add_notice(app, title="Yesterday's notice", starts_on=today - timedelta(days=3), ends_on=today - timedelta(days=1))
    add_notice(app, kind=NoticeKind.CLOSURE, title="Last day today", starts_on=today - timedelta(days=3), ends_on=today)
    page = app.test_client().get("/").get_data(as_text=True)
    assert "Last day today" in page and "alert-warning site-notice" in page
    assert "Tomorrow" not in page and "Yesterday" not in page


def test_a_public_page_asks_for_its_notices_in_one_query(app):
    for kind in NoticeKind:
        add_notice(app, kind=kind, title=f"{kind} notice")
    statements = []
    with app.app_context():
        listener = lambda *args: statements.append(args[2])  # noqa: E731 - (conn, cursor, statement, ...)
        event.listen(db.engine, "before_cursor_execute", listener)
        try:
            page = app.test_client().get("/").get_data(as_text=True)
        finally:
            event.remove(db.engine, "before_cursor_execute", listener)
    assert [s for s in statements if "site_notices" in s] and len([s for s in statements if "site_notices" in s]) == 1
    assert page.index("closure notice") < page.index("safety notice") < page.index("information notice")


def test_no_notice_no_region(app):
    page = app.test_client().get("/records").get_data(as_text=True)
    assert "site-notices" not in page


def test_the_facility_day_decides_not_utc(app):
    # 07:30 UTC on 1 March is 23:30 on 28 February in Los Angeles; an hour later it is 1 March there.
    add_notice(app, title="March notice", starts_on=date(2026, 3, 1))
    client = app.test_client()
    with time_machine.travel(datetime(2026, 3, 1, 7, 30, tzinfo=UTC), tick=False):
        assert "March notice" not in client.get("/").get_data(as_text=True)
    with time_machine.travel(datetime(2026, 3, 1, 8, 30, tzinfo=UTC), tick=False):
        assert "March notice" in client.get("/").get_data(as_text=True)


def test_hostile_text_is_cleaned_saved_with_a_warning_and_never_reaches_the_public_page(app, client, admin):
    response = post(client, "/admin/notices/new", form(app, body=HOSTILE, body_es=HOSTILE, title_es="<b>Aviso</b>"))
    assert response.status_code == 302
    notice_id = fetch_only_id(app)
    assert response.headers["Location"] == f"/admin/notices/{notice_id}"
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Some formatting was removed" in page
    stored = fetch(app, notice_id)
    for marker in HOSTILE_MARKERS:
        assert marker not in stored.body and marker not in stored.body_es
    assert "<strong>Stay indoors</strong>" in stored.body and "click me" in stored.body
    for headers in ({}, {"Accept-Language": "es"}):
        public = app.test_client().get("/", headers=headers).get_data(as_text=True)
        assert "Boil water before drinking." in public and "<strong>Stay indoors</strong>" in public
        for marker in HOSTILE_MARKERS:
            assert marker not in public, marker
    # The title is plain text: escaped, never markup.
    spanish = app.test_client().get("/", headers={"Accept-Language": "es"}).get_data(as_text=True)
    assert "&lt;b&gt;Aviso&lt;/b&gt;" in spanish and "<b>Aviso" not in spanish


def fetch_only_id(app) -> int:
    with app.app_context():
        return db.session.execute(select(SiteNotice.id)).scalar_one()


def test_a_row_written_around_the_form_is_still_cleaned_on_the_public_page(app):
    add_notice(app, title="Raw", body='<p>shown</p><script>alert("raw")</script><img src=x onerror=alert(2)>'
                                      '<a href="javascript:alert(3)">j</a><iframe src="https://evil.example"></iframe>')
    page = app.test_client().get("/records").get_data(as_text=True)
    assert "<p>shown</p>" in page
    for marker in HOSTILE_MARKERS:
        assert marker not in page, marker


def test_preview_shows_the_cleaned_notice_and_saves_nothing(app, client, admin):
    data = form(app, body="Keep <em>calm</em><script>alert(1)</script>", title_es="Humo", body_es="Quédese adentro")
    data.pop("save")
    response = post(client, "/admin/notices/new", {**data, "preview": "Preview"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "Preview (not saved yet)" in page and "Some formatting was removed" in page
    assert "<p>Keep <em>calm</em></p>" in page and "alert(1)" not in page.split('id="body"')[0]
    assert '<h2 id="site-notice-2" class="h5 alert-heading" lang="es">Humo</h2>' in page
    assert notice_count(app) == 0
    # The form keeps what was typed, script included (escaped), so nothing is lost.
    assert "Keep &lt;em&gt;calm&lt;/em&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_edit_through_the_form(app, client, admin):
    today = today_of(app)
    notice_id = add_notice(app, title="Old title", body="<p>Old</p>", starts_on=today - timedelta(days=2))
    page = client.get(f"/admin/notices/{notice_id}").get_data(as_text=True)
    assert 'value="Old title"' in page and ">\r\nOld</textarea>" in page and "As the public pages show it" in page
    response = post(client, f"/admin/notices/{notice_id}", form(
        app, kind="information", title="New title", body="New <a href='https://example.org'>text</a>",
        starts_on=(today - timedelta(days=2)).isoformat(), ends_on=(today + timedelta(days=7)).isoformat()))
    assert response.status_code == 302 and response.headers["Location"] == "/admin/notices/"
    notice = fetch(app, notice_id)
    assert (notice.kind, notice.title, notice.ends_on, notice.updated_by_id) == (
        NoticeKind.INFORMATION, "New title", today + timedelta(days=7), admin.id)
    assert notice.body == '<p>New <a href="https://example.org" rel="noopener noreferrer">text</a></p>'
    [event] = audit_rows(app, "notice.updated")
    details = json.loads(event.details)
    assert details["kind"] == "information" and sorted(details["fields"]) == ["body", "ends_on", "kind", "title"]
    # Saving the edit page untouched: nothing changes, no warning (the link's rel is not "removed").
    page = client.get(f"/admin/notices/{notice_id}").get_data(as_text=True)
    assert "New &lt;a href=&#34;https://example.org&#34;&gt;text&lt;/a&gt;</textarea>" in page
    response = post(client, f"/admin/notices/{notice_id}", form(
        app, kind="information", title="New title", body=body_source(notice.body),
        starts_on=(today - timedelta(days=2)).isoformat(), ends_on=(today + timedelta(days=7)).isoformat()))
    assert response.headers["Location"] == "/admin/notices/"
    assert "Nothing changed." in client.get("/admin/notices/").get_data(as_text=True)
    assert len(audit_rows(app, "notice.updated")) == 1


def test_end_now_stops_showing_from_today(app, client, admin):
    today = today_of(app)
    notice_id = add_notice(app, title="Ending soon", starts_on=today - timedelta(days=3))
    assert "Ending soon" in app.test_client().get("/").get_data(as_text=True)
    assert f'action="/admin/notices/{notice_id}/end"' in client.get("/admin/notices/").get_data(as_text=True)
    response = action(client, f"/admin/notices/{notice_id}/end")
    assert response.status_code == 302
    assert fetch(app, notice_id).ends_on == today - timedelta(days=1)
    assert "Ending soon" not in app.test_client().get("/").get_data(as_text=True)
    [event] = audit_rows(app, "notice.ended")
    assert json.loads(event.details)["ends_on"] == (today - timedelta(days=1)).isoformat()
    # Ending it again: refused with a message, nothing written.
    action(client, f"/admin/notices/{notice_id}/end")
    assert "Only a notice showing today can be ended." in client.get("/admin/notices/").get_data(as_text=True)
    assert len(audit_rows(app, "notice.ended")) == 1


def test_a_notice_that_started_today_is_deleted_not_ended(app, client, admin):
    notice_id = add_notice(app, title="Today only", starts_on=today_of(app))
    assert f'action="/admin/notices/{notice_id}/end"' not in client.get("/admin/notices/").get_data(as_text=True)
    action(client, f"/admin/notices/{notice_id}/end")
    assert "delete it instead" in client.get("/admin/notices/").get_data(as_text=True)
    assert fetch(app, notice_id).ends_on is None
    response = action(client, f"/admin/notices/{notice_id}/delete")
    assert response.status_code == 302
    assert fetch(app, notice_id) is None
    [event] = audit_rows(app, "notice.deleted")
    assert event.object_id == str(notice_id) and json.loads(event.details)["kind"] == "safety"
    assert "Today only" not in app.test_client().get("/").get_data(as_text=True)


def test_unknown_notice_is_404_for_admins(client, admin):
    assert client.get("/admin/notices/999").status_code == 404
    assert action(client, "/admin/notices/999/end").status_code == 404
    assert action(client, "/admin/notices/999/delete").status_code == 404


# --- Bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("overrides, field, message", [
    ({"ends_on": "2020-01-01", "starts_on": "2020-01-05"}, "ends_on", "The last day is before the first day."),
    ({"title": "x" * 121}, "title", "At most 120 characters."),
    ({"title": ""}, "title", "Enter a title."),
    ({"title": "Bad\x00title"}, "title", "Remove the invisible control characters."),
    ({"body": ""}, "body", "Enter the text of the notice."),
    ({"body": "   \n\n  "}, "body", "Enter the text of the notice."),
    ({"body": "x" * (BODY_MAX + 1)}, "body", "At most 4000 characters."),
    ({"body": "<script>alert(1)</script>"}, "body", "No text is left once the formatting"),
    ({"body": "text\x1bescape"}, "body", "Remove the invisible control characters."),
    ({"body_es": "<style>x</style>"}, "body_es", "No text is left once the formatting"),
    ({"kind": "emergency"}, "kind", "Choose the kind of notice."),
    ({"kind": ""}, "kind", "Choose the kind of notice."),
    ({"starts_on": ""}, "starts_on", "Enter the first day the notice shows."),
    ({"starts_on": "31/01/2026"}, "starts_on", "Enter the date as YYYY-MM-DD"),
    ({"starts_on": "<script>"}, "starts_on", "Enter the date as YYYY-MM-DD"),
    ({"ends_on": "2026-02-30"}, "ends_on", "Enter the date as YYYY-MM-DD"),
    ({"ends_on": "9999-12-31"}, "ends_on", "Enter a last day no later than"),
    ({"starts_on": "1900-01-01"}, "starts_on", "Enter a date between 2000-01-01 and"),
])
def test_bad_input_is_a_400_with_the_message_by_the_field_and_the_input_kept(app, client, admin, overrides,
                                                                            field, message):
    data = form(app, title="Kept title <i>", **{k: v for k, v in overrides.items() if k != "title"})
    if "title" in overrides:
        data["title"] = overrides["title"]
    response = post(client, "/admin/notices/new", data)
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    error = page.split(f'id="{field}-error"', 1)[1].split("</div>", 1)[0]
    assert message in error
    assert notice_count(app) == 0
    if "title" not in overrides:
        assert 'value="Kept title &lt;i&gt;"' in page
    for name in ("starts_on", "ends_on"):
        if name in overrides and "\x00" not in overrides[name]:
            assert f'value="{overrides[name].replace("<", "&lt;").replace(">", "&gt;")}"' in page


def test_the_edit_form_refuses_bad_input_too(app, client, admin):
    notice_id = add_notice(app, title="Unchanged")
    response = post(client, f"/admin/notices/{notice_id}", form(app, ends_on="2000-01-01"))
    assert response.status_code == 400 and "The last day is before the first day." in response.get_data(as_text=True)
    assert fetch(app, notice_id).title == "Unchanged" and not audit_rows(app, "notice.updated")


def test_a_post_without_a_csrf_token_is_refused(app, client, admin):
    response = client.post("/admin/notices/new", data=form(app))
    assert response.status_code == 400 and notice_count(app) == 0


# --- Who may do what ----------------------------------------------------------------------------

@pytest.mark.parametrize("role", [Role.OPERATOR, Role.REQUESTER])
def test_operators_and_requesters_get_403(app, make_user, role):
    notice_id = add_notice(app)
    user = make_user(role)
    client = app.test_client()
    assert login(client, user.email).status_code == 302
    token = csrf_token(client, "/account")
    for path in ("/admin/notices/", "/admin/notices/new", f"/admin/notices/{notice_id}"):
        assert client.get(path).status_code == 403
    for path in ("/admin/notices/new", f"/admin/notices/{notice_id}", f"/admin/notices/{notice_id}/end",
                 f"/admin/notices/{notice_id}/delete"):
        assert client.post(path, data={**form(app), "csrf_token": token}).status_code == 403
    assert notice_count(app) == 1 and fetch(app, notice_id).ends_on is None


def test_anonymous_visitors_are_sent_to_sign_in(app):
    response = app.test_client().get("/admin/notices/")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_services_refuse_an_actor_without_the_permission(app, make_user):
    operator = make_user(Role.OPERATOR)
    with app.app_context():
        with pytest.raises(notices.NotAllowed):
            notices.create_notice(values(), operator, date(2026, 3, 1))
        assert db.session.execute(select(func.count()).select_from(SiteNotice)).scalar_one() == 0


# --- Spanish and availability -------------------------------------------------------------------

def test_spanish_visitors_see_the_spanish_text(app):
    add_notice(app, kind=NoticeKind.CLOSURE, title="We are closed", body="<p>English body</p>",
               title_es="Estamos cerrados", body_es="<p>Texto en español</p>")
    add_notice(app, kind=NoticeKind.INFORMATION, title="English only", body="<p>Only English</p>")
    spanish = app.test_client().get("/", headers={"Accept-Language": "es-MX,es;q=0.9"}).get_data(as_text=True)
    assert 'lang="es">Estamos cerrados</h2>' in spanish
    assert '<div class="site-notice-body" lang="es"><p>Texto en español</p>' in spanish
    assert "We are closed" not in spanish
    # No Spanish text: the English one, marked as English for screen readers.
    assert 'lang="en">English only</h2>' in spanish and 'lang="en"><p>Only English</p>' in spanish
    english = app.test_client().get("/", headers={"Accept-Language": "en-US"}).get_data(as_text=True)
    assert "We are closed" in english and "Estamos cerrados" not in english
    assert english.index("We are closed") < english.index("English only")  # closure first


def test_the_home_page_shows_without_notices_when_the_database_is_down(tmp_path):
    broken = make_app(f"sqlite:///{tmp_path / 'missing-dir' / 'db.sqlite3'}", tmp_path / "inst")
    response = broken.test_client().get("/")
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert broken.config["HELPLINE_NUMBER"] in page and "site-notices" not in page
