"""The catalogue found once per request (intake/translating.py): it follows every change of the
locale in force (``force_locale`` for a recipient's e-mail, ``refresh``), the templates' gettext
keeps Jinja's newstyle behaviour (escaped variables, "%%", plurals), and the kept date texts are
those Flask-Babel writes. No timing here: ``make profile`` shows the speed."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import render_template_string
from flask_babel import force_locale, format_date, get_translations, gettext, lazy_gettext, ngettext, refresh

from intake import translating

SENTENCE = "Medical records"  # in base.html's menu, translated


def test_a_request_finds_the_catalogue_once_and_follows_force_locale(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        assert gettext(SENTENCE) == SENTENCE
        first = translating.current_translations()
        assert translating.current_translations() is first  # kept for the request
        with force_locale("es"):
            spanish = gettext(SENTENCE)
            assert spanish != SENTENCE
            assert translating.current_translations() is get_translations()
            assert str(lazy_gettext(SENTENCE)) == spanish
            assert render_template_string("{{ _(s) }}", s=SENTENCE) == spanish
        assert gettext(SENTENCE) == SENTENCE  # back to English when force_locale ends
        assert render_template_string("{{ _(s) }}", s=SENTENCE) == SENTENCE


def test_refresh_drops_the_kept_catalogue(app):
    with app.test_request_context("/", headers={"Accept-Language": "es"}):
        spanish = gettext(SENTENCE)
        assert spanish != SENTENCE
        refresh()
        with force_locale("en"):
            assert gettext(SENTENCE) == SENTENCE
        assert gettext(SENTENCE) == spanish


def test_outside_a_request_strings_are_english(app):
    with app.app_context():
        assert gettext(SENTENCE) == SENTENCE
    assert translating.current_translations() is not None  # no app context at all: null translations


def test_the_templates_gettext_escapes_variables_formats_and_counts(app):
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        html = render_template_string("{{ _('Call #%(id)s marked as reviewed.', id='<b>') }}")
        assert html == "Call #&lt;b&gt; marked as reviewed."
        assert render_template_string("{{ _('100%% sure') }}") == "100% sure"
        plural = "{{ ngettext('%(num)d day', '%(num)d days', n) }}"
        assert render_template_string(plural, n=1) == "1 day"
        assert render_template_string(plural, n=3) == "3 days"
        assert render_template_string("{{ gettext('Medical records') }}") == SENTENCE
        assert render_template_string("{{ pgettext('menu', 'Calls') }}") == "Calls"
        assert render_template_string("{{ npgettext('menu', '%(num)d call', '%(num)d calls', 2) }}") == "2 calls"
        with force_locale("es"):
            assert render_template_string("{{ ngettext('%(num)d day', '%(num)d days', 3) }}") == \
                ngettext("%(num)d day", "%(num)d days", 3)


def test_kept_dates_are_flask_babels_in_each_language(app):
    day = date(2026, 12, 7)
    with app.test_request_context("/", headers={"Accept-Language": "en"}):
        gettext(SENTENCE)  # the locale is known
        assert translating.date_format(day) == format_date(day)
        assert translating.date_format(day, "long") == format_date(day, "long")
        with force_locale("es"):
            assert translating.date_format(day, "long") == format_date(day, "long")
            assert translating.date_format(day, "long") != translating._dates[("en", day, "long")]
        moment = datetime(2026, 12, 7, 7, 30, tzinfo=UTC)  # a moment is moved to the facility's day first
        assert translating.date_format(moment) == format_date(moment)
        assert render_template_string("{{ d|dateformat('long') }}", d=day) == "December 7, 2026"


def test_kept_medium_times_are_babels_in_each_language_and_minute(app):
    from flask_babel import format_time

    from intake.clock import MEDIUM, local_time

    with app.test_request_context("/"):
        for moment in (datetime(2026, 12, 7, 18, 5, 59, tzinfo=UTC), datetime(2026, 7, 1, 0, 0, tzinfo=UTC),
                       datetime(2026, 12, 7, 18, 6, tzinfo=UTC)):
            for language in ("en", "es", "en"):
                with force_locale(language):
                    wall = moment.astimezone(ZoneInfo("America/Los_Angeles"))
                    label = wall.tzname()
                    expected = (f"{format_date(wall.replace(tzinfo=None).date(), 'medium')}, "
                                f"{format_time(wall.replace(tzinfo=None).time(), 'short')} {label}")
                    assert local_time(moment, MEDIUM) == expected
                    assert local_time(moment, MEDIUM) == expected  # the kept text
