"""One clock for people: every time a person reads or types is the facility's wall-clock time.

Storage is UTC (``intake.db_types.UTCDateTime``). Pages, e-mails and export headers show a moment
through ``local_time`` (the ``|local_time`` filter in templates): the facility's zone
(``FACILITY_TIMEZONE``, America/Los_Angeles by default), labelled with the zone's abbreviation
(PST or PDT, whichever was in force at that moment), never with seconds, never "UTC" or a bare
offset. Times people type (a follow-up due at 10:00) are read by ``local_to_utc`` / ``parse_local``
as the facility's wall clock, whatever the browser's or the server's own zone.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from flask import Flask, current_app, has_app_context
from flask_babel import format_date, format_time, get_locale

DEFAULT_ZONE = "America/Los_Angeles"
COMPACT = "compact"  # "2026-12-07 10:00 PST": tables and lists
MEDIUM = "medium"  # "Dec 7, 2026, 10:00 AM PST" in the reader's language: prose
_TYPED = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})[T ](\d{1,2}):(\d{2})\s*$")


def zone(name: str | None = None) -> ZoneInfo:
    """The facility's zone (from the configuration when an app is running)."""
    if name is None:
        name = current_app.config.get("FACILITY_TIMEZONE", DEFAULT_ZONE) if has_app_context() else DEFAULT_ZONE
    return ZoneInfo(name)


def zone_label(moment: datetime, tz: ZoneInfo | None = None) -> str:
    """The zone's abbreviation at ``moment`` ("PST", "PDT"); the zone's name where the database has
    only a bare offset for it ("+04"), so a reader never sees an offset alone."""
    tz = tz or zone()
    return _label(moment.astimezone(tz).tzname(), tz)


def _label(name: str | None, tz: ZoneInfo) -> str:
    label = name or ""
    return tz.key if not label or label[0] in "+-" or label[0].isdigit() else label


def to_local(moment: datetime, tz: ZoneInfo | None = None) -> datetime:
    """An aware moment as the facility's wall clock (aware, in the facility's zone)."""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no known moment; store and pass aware UTC")
    return moment.astimezone(tz or zone())


def local_time(moment: datetime | None, style: str = COMPACT, empty: str = "—", tz: ZoneInfo | None = None) -> str:
    """A moment as people read it: the facility's date and time to the minute, with the zone's label.

    ``compact`` ("2026-12-07 10:00 PST") for tables; ``medium`` ("Dec 7, 2026, 10:00 AM PST",
    "7 dic 2026, 10:00 PST") for prose, in the reader's language. ``tz``: the facility's zone when
    the caller has it already (a table's rows: ``zone()`` once, not per row).
    """
    if moment is None:
        return empty
    tz = tz or zone()
    local = to_local(moment, tz)
    label = _label(local.tzname(), tz)  # zone_label's, from the moment already moved (a list calls this per row)
    if style == MEDIUM and has_app_context():
        return _medium(local.replace(second=0, microsecond=0, tzinfo=None), label, str(get_locale() or ""))
    return "%04d-%02d-%02d %02d:%02d %s" % (local.year, local.month, local.day, local.hour, local.minute, label)


_MEDIUM_KEPT = 20_000  # a panel of 50 events a page; minutes of the last months in two languages
_medium_texts: dict[tuple[datetime, str, str], str] = {}


def _medium(wall: datetime, label: str, locale: str) -> str:
    """The ``medium`` text of a wall-clock minute in a language (Babel's formatting: tens of
    microseconds), kept per (minute, zone label, language): a viewers panel writes fifty."""
    key = (wall, label, locale)
    text = _medium_texts.get(key)
    if text is None:
        if len(_medium_texts) >= _MEDIUM_KEPT:
            _medium_texts.clear()
        text = _medium_texts[key] = f"{format_date(wall.date(), 'medium')}, {format_time(wall.time(), 'short')} {label}"
    return text


def local_clock(moment: datetime | None, empty: str = "—") -> str:
    """Only the time of day, to the minute, labelled: "10:00 PST" (an autosave, a live note)."""
    if moment is None:
        return empty
    tz = zone()
    return f"{to_local(moment, tz):%H:%M} {zone_label(moment, tz)}"


def local_date(moment: datetime | date | None, empty: str = "—") -> str:
    """The facility's calendar day of a moment ("2026-12-07"); a plain date is shown as it is."""
    if moment is None:
        return empty
    if isinstance(moment, datetime):
        return f"{to_local(moment):%Y-%m-%d}"
    return moment.isoformat()


def machine_time(moment: datetime | None) -> str:
    """A moment for a ``<time datetime>`` attribute: UTC to the second, "2026-12-07T18:00:00Z".

    HTML allows at most three digits of a second's fraction (the Nu checker refuses Python's six), and
    nobody needs them; a reader sees ``local_time`` beside it."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no known moment; store and pass aware UTC")
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def local_input(moment: datetime | None, tz: ZoneInfo | None = None) -> str:
    """The value a ``datetime-local`` input shows for a stored moment ("2026-12-07T10:00")."""
    return "" if moment is None else f"{to_local(moment, tz):%Y-%m-%dT%H:%M}"


def local_to_utc(wall_clock: datetime | None, tz: ZoneInfo | None = None) -> datetime | None:
    """A wall-clock time typed at the facility (naive) as an aware UTC moment.

    An aware value is only converted. In the autumn's repeated hour the first (daylight) reading is
    taken; a time in the spring's skipped hour is read as if the clock had not moved (10 past 2
    becomes 10 past 3 daylight time), as ``zoneinfo`` does.
    """
    if wall_clock is None:
        return None
    if wall_clock.tzinfo is not None:
        return wall_clock.astimezone(UTC)
    return wall_clock.replace(tzinfo=tz or zone()).astimezone(UTC)


def parse_local(text: str | None, tz: ZoneInfo | None = None) -> datetime | None:
    """The one parser for a date and time people type: "2026-12-07T10:00" (what a ``datetime-local``
    input sends) or "2026-12-07 10:00", read as the facility's wall clock; None when empty or not
    a real time. Seconds, offsets and zone names are refused: a person types the facility's time."""
    if not text:
        return None
    match = _TYPED.match(text)
    if not match:
        return None
    try:
        year, month, day, hour, minute = (int(part) for part in match.groups())
        wall = datetime(year, month, day, hour, minute)
    except ValueError:
        return None
    return local_to_utc(wall, tz)


def init_app(app: Flask) -> None:
    """The template filters: ``|local_time``, ``|local_time('medium')``, ``|local_clock``, ``|local_date``,
    ``|machine_time`` (a ``<time datetime>`` attribute)."""
    app.add_template_filter(local_time, "local_time")
    app.add_template_filter(local_clock, "local_clock")
    app.add_template_filter(local_date, "local_date")
    app.add_template_filter(machine_time, "machine_time")
    app.jinja_env.globals.update(facility_zone_label=lambda: zone_label(datetime.now(UTC)))
